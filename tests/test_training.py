"""Training end to end on a small subset: train, convert to int8, load with LiteRT, predict."""

from __future__ import annotations

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
from training.train import write_atomically


@needs_data
def test_one_epoch_smoke_run_gives_a_loadable_int8_model(tmp_path):
    command = [sys.executable, "-m", "training.train", "digits", "--data-dir", str(DATA_DIR), "--out", str(tmp_path)]
    result = subprocess.run(
        [*command, "--limit", "3000", "--epochs", "1", "--clean-epochs", "1", "--served-epochs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.json", "digits.tflite"]
    model = load_model(tmp_path / "digits.tflite")
    card = json.loads((tmp_path / "digits.json").read_text())
    assert card["labels"] == list("0123456789") and card["preprocessing"] == "mnist"
    assert card["training"]["train_images"] + card["training"]["validation_images"] == 3000
    assert "Epoch 3/3" in result.stdout  # the clean and the served epoch ran after the augmented one
    probabilities = model.probabilities(np.zeros((3, 28, 28), np.float32))
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=0.05)


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
