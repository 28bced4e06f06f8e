"""Training end to end on a small subset: the net learns, converts to int8, calibrates and loads with LiteRT."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA_DIR, ROOT, needs_data
from recognizer.inference import load_model
from training.data import load_emnist
from training.served import as_served
from training.store import write_atomically

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TensorFlow is not installed (training only: make .venv/.train-installed)",
)
# 4,000 MNIST images (+ 800 negatives and 400 digit pairs), 30 plain epochs and 1 served: about 1,150 steps. Fewer do not show
# learning: batch normalization's moving variance starts at 1 and forgets it at 1 % a step, while the first
# layer's true variance is far below 1 (its moving variance read 0.165 after 180 steps, nearly all of it the
# starting 1 decayed), so the net answers one class in inference mode until about 700 steps (measured:
# 8 epochs, t10k 11.4 %; 30 epochs, validation jumps at epoch 18 and t10k ends at 98.09 %).
SHORT_RUN = ["--limit", "4000", "--epochs", "30", "--augment", "0", "--clean-epochs", "0", "--served-epochs", "1"]
LEARNED_FLOOR = 0.97  # held-out t10k after the short run, measured 0.9809 (chance: 0.1)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One short digits run (SHORT_RUN), shared by the tests below."""
    out = tmp_path_factory.mktemp("short-run")
    command = [sys.executable, "-m", "training.train", "digits", "--data-dir", str(DATA_DIR), "--out", str(out)]
    result = subprocess.run(
        [*command, *SHORT_RUN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@needs_tensorflow
@needs_data
def test_a_short_run_gives_a_calibrated_int8_model_with_a_reject_output(short_run):
    out, result = short_run
    assert sorted(p.name for p in out.iterdir()) == ["digits.json", "digits.tflite"]
    card = json.loads((out / "digits.json").read_text())
    assert card["labels"] == list("0123456789") and card["preprocessing"] == "mnist"
    assert card["training"]["train_images"] + card["training"]["validation_images"] > 4000  # + the negatives
    assert "Epoch 31/31" in result.stdout  # the served epoch ran after the plain ones
    assert card["output"]["shape"] == [1, 11] and card["rejection"]["output_index"] == 10
    assert card["calibration"]["temperature"] > 0
    model = load_model(out / "digits.tflite")
    probabilities, rejected = model.predict(np.zeros((3, 28, 28), np.float32))
    assert probabilities.shape == (3, 10) and rejected.shape == (3,)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


@needs_tensorflow
@needs_data
def test_a_short_run_learns(short_run):
    card = json.loads((short_run[0] / "digits.json").read_text())
    print(f"held-out accuracy after the short run: {card['accuracy']['tflite']:.4f}")
    assert card["accuracy"]["tflite"] >= LEARNED_FLOOR


@needs_data
def test_served_images_are_the_functions_view_of_the_originals():
    images = load_emnist(DATA_DIR, "balanced-heldout").images[:200]
    served = as_served(images, "emnist", seed=0)
    changed = np.any(served != images, axis=(1, 2))
    assert 0.3 < changed.mean() < 0.7  # about half, the rest kept as they are
    # Upscaled and preprocessed by the function, an EMNIST image comes back close to itself (median 0.96).
    similarity = [
        np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(images[changed], served[changed], strict=True)
    ]
    assert np.median(similarity) > 0.93


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "digits.tflite"
    write_atomically(target, b"old")

    def crash(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["digits.tflite"]
