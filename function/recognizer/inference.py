"""Run a shipped `.tflite` model with the LiteRT interpreter (never TensorFlow).

What serving needs beyond the `.tflite` file itself (labels, preprocessing
profile, whether the output is logits) comes from the model card beside it;
input size, dtype and quantization come from the interpreter. So serving
knows nothing about how the model was trained.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from .cards import find_models
from .preprocess import PROFILES

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # older installs ship only the predecessor package
    from tflite_runtime.interpreter import Interpreter


def quantize(images: np.ndarray, detail: dict) -> np.ndarray:
    """Float images in [0, 1] -> an interpreter input's dtype, using that input's quantization (`detail`)."""
    scale, zero_point = detail["quantization"]
    dtype = detail["dtype"]
    if scale == 0:  # a float input
        return images.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


class ModelFileError(Exception):
    """A model or its card is missing or unreadable; the message says what to do."""


class Model:
    """One loaded model: call `predict` (or `probabilities`) with upright 28x28 float images in [0, 1].

    What the card says is applied here, the one implementation for serving,
    evaluation and tests:
    - `calibration.temperature` T: probabilities are softmax(logits / T) in float,
      fitted so that a reported probability is the share of answers right
      (1 when the card has no calibration);
    - `rejection`: `extra_class` models have one output after the real classes;
      an input is rejected when its probability (same softmax) is at least
      `threshold`. `max_logit` / `energy` reject when the highest logit / the
      logsumexp of the logits is below `threshold`. No `rejection`: never rejected.
    The interpreter is not thread-safe, so one lock guards it; an invoke takes
    about 0.1 ms (bench/RESULTS.md), far less than decoding a request.
    """

    def __init__(self, model: Path | bytes, card: dict) -> None:
        self.card = card
        self.name: str = card["name"]
        self.labels: list[str] = card["labels"]
        self.profile: str = card["preprocessing"]
        self.version: str = card["version"]
        # A card whose output says "logits" (training/convert.py) gets its softmax here, in float.
        self._logits = card.get("output", {}).get("values") == "logits"
        self.temperature = float(card.get("calibration", {}).get("temperature", 1.0))
        rejection = card.get("rejection") or {}
        self.rejection_method: str | None = rejection.get("method")
        self.rejection_reason: str | None = rejection.get("reason")
        self._reject_threshold = float(rejection.get("threshold", 0.0))
        self._reject_index = rejection.get("output_index") if self.rejection_method == "extra_class" else None
        outputs = len(self.labels) + (self._reject_index is not None)
        if self.profile not in PROFILES:
            raise ValueError(f"unknown preprocessing {self.profile!r} in the card; use one of {', '.join(PROFILES)}")
        if self.rejection_method not in (None, "extra_class", "max_logit", "energy"):
            raise ValueError(f"unknown rejection method {self.rejection_method!r} in the card")
        if self._reject_index is not None and self._reject_index != len(self.labels):
            raise ValueError(f"the reject output must follow the labels: {len(self.labels)}, not {self._reject_index}")
        if (self.rejection_method or self.temperature != 1.0) and not self._logits:
            raise ValueError("rejection and calibration need a model whose output values are logits")
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        self._interpreter = Interpreter(**source, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if self._output["shape"][-1] != outputs:
            raise ValueError(f"the card describes {outputs} outputs for the model's {self._output['shape'][-1]}")
        self._lock = threading.Lock()

    def quantize(self, images: np.ndarray) -> np.ndarray:
        """Float images in [0, 1] -> the model's input dtype, using its quantization."""
        return quantize(images, self._input)

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) float images -> (n, outputs) float raw outputs (logits for a logits card), dequantized."""
        quantized = self.quantize(images).reshape((len(images), *self._input["shape"][1:]))
        scale, zero_point = self._output["quantization"]
        out = np.empty((len(images), self._output["shape"][-1]), np.float32)
        with self._lock:
            for i, image in enumerate(quantized):
                self._interpreter.set_tensor(self._input["index"], image[None])
                self._interpreter.invoke()
                out[i] = self._interpreter.get_tensor(self._output["index"])[0]
        if scale:
            out = (out - zero_point) * scale
        return out

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 28, 28) float images -> ((n, len(labels)) calibrated probabilities, (n,) bool rejected).

        The real classes' probabilities are renormalized to sum to 1: they say
        which class it is if it is one of them, and the temperature is fitted
        on exactly these numbers. Whether it is one of them at all is `rejected`.
        """
        return self.decide(self.outputs(images))

    def decide(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`predict` from the raw outputs (`outputs`), for callers that keep the logits."""
        n = len(self.labels)
        rejected = np.zeros(len(outputs), bool)
        if not self._logits:
            return outputs[:, :n], rejected
        if self.rejection_method == "max_logit":
            rejected = outputs[:, :n].max(axis=1) < self._reject_threshold
        elif self.rejection_method == "energy":
            rejected = _logsumexp(outputs[:, :n]) < self._reject_threshold
        if self._reject_index is not None:
            rejected = self.reject_probability(outputs) >= self._reject_threshold
        return _softmax(outputs[:, :n] / self.temperature), rejected

    def reject_probability(self, outputs: np.ndarray) -> np.ndarray | None:
        """P("none of these") for each row of raw outputs, from a reject output; None for other rules.

        The reader weighs candidate pieces by it: a fragment of a character is what that output was trained on.
        """
        if self._reject_index is None:
            return None
        return _softmax(outputs / self.temperature)[:, self._reject_index]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) float images -> (n, len(labels)) calibrated float probabilities (rejection ignored)."""
        return self.predict(images)[0]


def _softmax(logits: np.ndarray) -> np.ndarray:
    out = np.exp(logits - logits.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1)
    return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))


def load_model(tflite_path: Path) -> Model:
    """Load `name.tflite` with its card `name.json` from the same folder, refusing a file that is not the card's.

    The card's `version` is the sha256 of the `.tflite` it was written for, so
    a file changed on disk (a bad copy, a partial upload, tampering) is never
    served with a card that no longer describes it.
    """
    tflite_path = Path(tflite_path)
    card_path = tflite_path.with_suffix(".json")
    for path in (tflite_path, card_path):
        if not path.is_file():
            raise ModelFileError(f"model file {path} is missing; run `make train` or restore models/ from git")
    try:
        card = json.loads(card_path.read_text())
        data = tflite_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != card["version"]:
            raise ModelFileError(
                f"{tflite_path} has sha256 {digest[:12]}..., but its card {card_path.name} was written for "
                f"{card['version'][:12]}...; restore models/ from git or run `make train`"
            )
        return Model(data, card)  # the bytes checked, not the file again: it may change on disk meanwhile
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelFileError(
            f"cannot load {tflite_path} ({exc}); restore models/ from git or run `make train`"
        ) from exc


class ModelRegistry:
    """The models in a folder, found from their cards, loaded on first use and kept for the instance's life.

    A model that fails to load (missing, corrupt, changed) is unavailable on
    its own: the others keep serving.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.names = tuple(find_models(self.folder))
        self._models: dict[str, Model | ModelFileError] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Model:
        """The loaded model; a file that failed once keeps failing (no re-reading it on every request)."""
        with self._lock:
            if name not in self._models:
                try:
                    self._models[name] = load_model(self.folder / f"{name}.tflite")
                except ModelFileError as error:
                    self._models[name] = error
            model = self._models[name]
        if isinstance(model, ModelFileError):
            raise ModelFileError(str(model))  # a new one: re-raising the stored one would grow its traceback
        return model
