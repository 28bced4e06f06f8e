"""The Keras side of the comparison: each shipped model's architecture rebuilt from its card.

Trained Keras weights live only in training/checkpoints/ on the machine that
trained (git-ignored), so the Keras model here has the shipped model's
architecture and class count with fresh (untrained) weights: the same
operations and sizes, so the same speed, but not its answers. The int8 and
float `.tflite` files are converted from that Keras model by
training.convert, as the shipped file was. All are cached in
bench/artifacts/ (TensorFlow's conversion takes a while).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench import ARTIFACTS, MODELS_DIR, ROOT


def card(name: str) -> dict:
    return json.loads((MODELS_DIR / f"{name}.json").read_text())


def _stem(name: str) -> Path:
    """Cache name: the model, its architecture and class count, and the version of training/model.py that builds it."""
    info = card(name)
    builder = hashlib.sha256((ROOT / "training" / "model.py").read_bytes()).hexdigest()[:10]
    return ARTIFACTS / f"{name}-{info['training']['recipe']['architecture']}-{len(info['labels'])}-{builder}"


def keras_file(name: str) -> Path:
    """A `.keras` file of the model's architecture, built (and cached) on first use."""
    path = _stem(name).with_suffix(".keras")
    if not path.is_file():
        from training.model import build_model

        info = card(name)
        model = build_model(info["training"]["recipe"]["architecture"], len(info["labels"]))
        _write(path, lambda partial: model.save(partial))
    return path


def converted_tflite(name: str, int8: bool) -> Path:
    """A `.tflite` converted from the Keras model by training.convert.to_tflite, int8 or float."""
    path = _stem(name).with_name(_stem(name).name + ("-int8" if int8 else "-float") + ".tflite")
    if not path.is_file():
        import keras

        from bench.samples import digit_images
        from training.convert import to_tflite

        model = keras.models.load_model(keras_file(name))
        data = to_tflite(model, digit_images(200), int8=int8)  # calibration images: only int8 reads them
        _write(path, lambda partial: partial.write_bytes(data))
    return path


def _write(path: Path, save) -> None:
    """Save via a temporary name, so an interrupted run leaves no half file in the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("partial-" + path.name)
    save(partial)
    partial.replace(path)
