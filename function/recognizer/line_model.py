"""A model that reads a whole line of digits at once, to weigh the reader's readings of it.

The reader (reader.py) cuts a line into candidate characters and reads each
with the digits model; where digits touch, the cut it needs may not be among
its candidates, or two readings differ by a cut the digits model cannot
judge. The line model sees the whole line as one strip
(preprocess.line_strip) and gives, for each column step, the probabilities of
each digit and of "no new digit here" (a CTC output: Graves et al. 2006).
From those come its own best reading, which the reader adds to its
readings, and how likely each reading is, which the reader adds to its
own score (reader.Weights.line).

Its card (`name.json` beside `name.tflite`) has `alphabet` rather than
`labels`, so it is never listed as a model a request can name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inference import Interpreter, ModelFileError, quantize
from .preprocess import line_strip

LINE_MODELS = {"digits": "digit-lines"}  # the classifier whose text mode each line model weighs


class LineModel:
    """One loaded line model: `read(ink)` for a line. The interpreter is resized to each strip's width."""

    def __init__(self, model: bytes, card: dict) -> None:
        self.name: str = card["name"]
        self.version: str = card["version"]
        self.alphabet: list[str] = card["alphabet"]
        self.blank = len(self.alphabet)  # the output after the symbols: no new symbol at this step
        self._interpreter = Interpreter(model_content=model, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._width = None
        self._lock = threading.Lock()

    def log_probabilities(self, strip: np.ndarray) -> np.ndarray:
        """A (28, width) strip -> (width / 4, symbols + 1) log-probabilities per column step."""
        image = quantize(strip, self._input)[None, :, :, None]
        with self._lock:
            if self._width != strip.shape[1]:
                self._interpreter.resize_tensor_input(self._input["index"], list(image.shape))
                self._interpreter.allocate_tensors()
                self._width = strip.shape[1]
            self._interpreter.set_tensor(self._input["index"], image)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"]).reshape(-1, self.blank + 1)
        scale, zero_point = self._output["quantization"]
        logits = (raw.astype(np.float64) - zero_point) * scale if scale else raw.astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))

    def read(self, ink: np.ndarray) -> LineReading:
        """What the model makes of a line of ink (one model call)."""
        return LineReading(self.log_probabilities(line_strip(ink)), self.alphabet)


@dataclass(frozen=True)
class LineReading:
    """The line model's output for one line: its own best reading, and how likely it finds any other."""

    log_probabilities: np.ndarray  # (steps, symbols + 1), the blank last
    alphabet: list[str]

    @property
    def best(self) -> str:
        """The best path's reading: each step's likeliest output, repeats merged, blanks dropped."""
        steps = self.log_probabilities.argmax(axis=1)
        keep = (steps != len(self.alphabet)) & np.concatenate([[True], steps[1:] != steps[:-1]])
        return "".join(self.alphabet[k] for k in steps[keep])

    def scores(self, texts: list[str]) -> np.ndarray:
        """log P(text | the line) for each text; spaces are ignored (the strip narrows wide gaps)."""
        index = {symbol: i for i, symbol in enumerate(self.alphabet)}
        sequences = [[index[c] for c in text if c != " "] for text in texts]
        return ctc_log_likelihoods(self.log_probabilities, sequences, len(self.alphabet))


def ctc_log_likelihoods(log_probabilities: np.ndarray, sequences: list[list[int]], blank: int) -> np.ndarray:
    """log P(sequence) under a CTC output, for each sequence at once (the forward algorithm, in log space).

    A sequence is read from the steps' symbols by merging repeats and then
    dropping blanks, so "11" needs a blank between its ones. -inf where the
    sequence cannot fit in the steps.
    """
    steps = len(log_probabilities)
    count = len(sequences)
    states = 2 * max((len(s) for s in sequences), default=0) + 1  # blank, s1, blank, s2, ..., blank
    symbols = np.full((count, states), blank, np.int64)
    skip = np.zeros((count, states), bool)  # a state reachable from two back: a symbol unlike the one before
    ends = np.zeros(count, np.int64)
    for r, sequence in enumerate(sequences):
        symbols[r, 1 : 2 * len(sequence) : 2] = sequence
        ends[r] = 2 * len(sequence)
        skip[r, 3 : 2 * len(sequence) : 2] = np.diff(sequence) != 0
    outside = np.arange(states)[None, :] > ends[:, None]
    emitted = log_probabilities[:, symbols]  # (steps, sequences, states)
    alpha = np.full((count, states), -np.inf)
    alpha[:, 0] = emitted[0, :, 0]
    alpha[:, 1] = np.where(ends >= 1, emitted[0, :, 1], -np.inf)
    none = np.full((count, 2), -np.inf)
    for t in range(1, steps):
        from_one = np.concatenate([none[:, :1], alpha[:, :-1]], axis=1)
        from_two = np.where(skip, np.concatenate([none, alpha[:, :-2]], axis=1), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, from_one), from_two) + emitted[t]
        alpha[outside] = -np.inf
    rows = np.arange(count)
    before = np.where(ends >= 1, alpha[rows, np.maximum(ends - 1, 0)], -np.inf)
    return np.logaddexp(alpha[rows, ends], before)


@functools.lru_cache(maxsize=8)
def load_line_model(folder: Path, name: str) -> LineModel | None:
    """The line model `name` in `folder`, loaded once; None when the folder has none (it is optional)."""
    path = Path(folder) / f"{name}.tflite"
    card_path = path.with_suffix(".json")
    if not path.is_file() and not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text())
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != card["version"]:
            raise ModelFileError(f"{path} is not the file its card {card_path.name} was written for")
        return LineModel(data, card)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"cannot load {path} ({exc}); restore models/ from git") from exc
