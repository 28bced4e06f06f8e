"""Run a shipped `.tflite` model with the LiteRT interpreter (never TensorFlow).

What serving needs beyond the `.tflite` file itself (labels, preprocessing
profile, whether the output is logits) comes from the model card beside it;
input size, dtype and quantization come from the interpreter. So serving
knows nothing about how the model was trained.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # older installs ship only the predecessor package
    from tflite_runtime.interpreter import Interpreter


class ModelFileError(Exception):
    """A model or its card is missing or unreadable; the message says what to do."""


class Model:
    """One loaded model: call `probabilities` with upright 28x28 float images in [0, 1].

    The interpreter is not thread-safe, so one lock guards it; an invoke takes
    a few tens of microseconds, far less than decoding a request.
    """

    def __init__(self, tflite_path: Path, card: dict) -> None:
        self.card = card
        self.name: str = card["name"]
        self.labels: list[str] = card["labels"]
        self.profile: str = card["preprocessing"]
        self.version: str = card["version"]
        # A card whose output says "logits" (training/convert.py) gets its softmax here, in float.
        self._logits = card.get("output", {}).get("values") == "logits"
        self._interpreter = Interpreter(model_path=str(tflite_path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if self._output["shape"][-1] != len(self.labels):
            raise ValueError(f"the card lists {len(self.labels)} labels for {self._output['shape'][-1]} outputs")
        self._lock = threading.Lock()

    def quantize(self, images: np.ndarray) -> np.ndarray:
        """Float images in [0, 1] -> the model's input dtype, using its quantization."""
        scale, zero_point = self._input["quantization"]
        dtype = self._input["dtype"]
        if scale == 0:  # a float input
            return images.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) float images -> (n, classes) float probabilities."""
        quantized = self.quantize(images).reshape((len(images), *self._input["shape"][1:]))
        scale, zero_point = self._output["quantization"]
        out = np.empty((len(images), len(self.labels)), np.float32)
        with self._lock:
            for i, image in enumerate(quantized):
                self._interpreter.set_tensor(self._input["index"], image[None])
                self._interpreter.invoke()
                out[i] = self._interpreter.get_tensor(self._output["index"])[0]
        if scale:
            out = (out - zero_point) * scale
        if self._logits:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out


def load_model(tflite_path: Path) -> Model:
    """Load `name.tflite` with its card `name.json` from the same folder."""
    tflite_path = Path(tflite_path)
    card_path = tflite_path.with_suffix(".json")
    for path in (tflite_path, card_path):
        if not path.is_file():
            raise ModelFileError(f"model file {path} is missing; run `make train` or restore models/ from git")
    try:
        card = json.loads(card_path.read_text())
        return Model(tflite_path, card)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelFileError(
            f"cannot load {tflite_path} ({exc}); restore models/ from git or run `make train`"
        ) from exc


class ModelRegistry:
    """The models in a folder, loaded on first use and kept for the life of the instance."""

    def __init__(self, folder: Path, names: tuple[str, ...]) -> None:
        self.folder = Path(folder)
        self.names = names
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Model:
        with self._lock:
            if name not in self._models:
                self._models[name] = load_model(self.folder / f"{name}.tflite")
            return self._models[name]
