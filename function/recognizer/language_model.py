"""The character-level English model at serve time: how likely is the next letter of a word.

The file (models/english-lm.npz, built by training/language_model.py) holds an
n-gram model in backoff form: for each order k, the seen n-grams' codes with
their log probabilities, and each context's log backoff weight. A symbol not
seen after a context gets the backoff weight times its probability after the
shorter context. It also holds a lexicon, the commonest English words as
sorted word hashes (`word_hash`): a reading that is a common word can be
preferred to one that only looks like English. Only numpy is needed to read it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .inference import ModelFileError

NAME = "english-lm"  # models/english-lm.json, the card, names the file
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
BOUNDARY = len(ALPHABET)  # the word's start as context, its end as a predicted symbol
SYMBOLS = len(ALPHABET) + 1
CACHE_SIZE = 8192  # contexts whose next-symbol distribution is kept


class LanguageModel:
    """P(next symbol | the word so far), symbols being the letters a-z and the word's end."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.order = int(arrays["order"])
        self._grams = [arrays[f"grams{k}"].astype(np.int64) for k in range(1, self.order + 1)]
        self._logp = [arrays[f"logp{k}"].astype(np.float32) for k in range(1, self.order + 1)]
        self._contexts = [arrays[f"contexts{k}"].astype(np.int64) for k in range(1, self.order + 1)]
        self._backoff = [arrays[f"backoff{k}"].astype(np.float32) for k in range(1, self.order + 1)]
        self._lexicon = arrays["lexicon"]  # sorted word_hash values ...
        self._zipf = arrays["lexicon_zipf"].astype(np.float32) / 10  # ... and each word's Zipf frequency
        self.lexicon_floor = float(self._zipf.min())  # the least frequent word's
        self.next_logprobs = lru_cache(maxsize=CACHE_SIZE)(self._next_logprobs)

    @classmethod
    def load(cls, source: Path | io.BytesIO) -> LanguageModel:
        """From the .npz file (a path, or its bytes already read and checked)."""
        with np.load(source, allow_pickle=False) as data:
            return cls({name: data[name] for name in data.files})

    def _next_logprobs(self, context: tuple[int, ...]) -> np.ndarray:
        """Natural-log probabilities of the SYMBOLS next symbols after `context` (symbol ids).

        `context` starts with BOUNDARY at a word's start and is cut to the
        model's order here, so callers may pass the whole word so far.
        """
        context = context[-(self.order - 1) :] if self.order > 1 else ()
        uniform = np.full(SYMBOLS, -math.log(SYMBOLS), np.float32)
        out = self.next_logprobs(context[1:]).copy() if context else uniform
        base = ngram_code(context)
        k = len(context)  # orders are stored 1-based: n-grams of k + 1 symbols at index k
        contexts = self._contexts[k]
        position = int(np.searchsorted(contexts, base))
        if position == len(contexts) or contexts[position] != base:
            return _frozen(out)  # never seen: the shorter context's distribution, unchanged
        out += self._backoff[k][position]
        grams = self._grams[k]
        low, high = np.searchsorted(grams, (base * SYMBOLS, base * SYMBOLS + SYMBOLS))
        out[grams[low:high] - base * SYMBOLS] = self._logp[k][low:high]
        return _frozen(out)

    def frequency(self, word: str) -> float | None:
        """A lower-case lexicon word's Zipf frequency (log10 of its uses per billion words, plus 9), else None
        (about 1 in 86,000 other words shares a lexicon word's hash and gets its frequency).

        "it" (6.9) is written about 600 times as often as "lt" (4.2), though
        the letter model finds both about as likely: it weighs spellings, not uses.
        """
        code = word_hash(word)
        position = int(np.searchsorted(self._lexicon, code))
        if position < len(self._lexicon) and int(self._lexicon[position]) == code:
            return float(self._zipf[position])
        return None

    def word_logprob(self, word: str) -> float:
        """Natural-log probability of a whole lower-case word, its end included."""
        symbols = (BOUNDARY, *(ALPHABET.index(c) for c in word))
        total = 0.0
        for end in range(1, len(symbols) + 1):
            target = symbols[end] if end < len(symbols) else BOUNDARY
            total += float(self.next_logprobs(symbols[:end])[target])
        return total


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # cached and shared between requests
    return array


def word_hash(word: str) -> int:
    """A word as the 32-bit number the file's lexicon stores it by (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(word.encode())


def ngram_code(symbols: tuple[int, ...]) -> int:
    """An n-gram as one integer (base SYMBOLS): how the file stores it, so the builder must use the same."""
    code = 0
    for s in symbols:
        code = code * SYMBOLS + s
    return code


_loaded: dict[tuple[Path, str], LanguageModel | ModelFileError] = {}  # per folder and name: the model, or why not


def load_language_model(folder: Path, name: str = NAME) -> LanguageModel:
    """The model named by the card `name.json` in `folder` (its "file" entry), loaded once per instance.

    As for the classifiers, the card's `version` is the file's sha256, and a
    file that failed to load keeps failing without being read again.
    """
    key = (Path(folder), name)
    if key not in _loaded:
        try:
            _loaded[key] = _load(*key)
        except ModelFileError as error:
            _loaded[key] = error
    found = _loaded[key]
    if isinstance(found, ModelFileError):
        raise ModelFileError(str(found))  # a new one: re-raising the stored one would grow its traceback
    return found


def _load(folder: Path, name: str) -> LanguageModel:
    card_path = folder / f"{name}.json"
    try:
        card = json.loads(card_path.read_text())
        data = (folder / card["file"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != card["version"]:
            raise ValueError(
                f"the file has sha256 {digest[:12]}..., the card was written for {card['version'][:12]}..."
            )
        return LanguageModel.load(io.BytesIO(data))  # the bytes checked, not the file again
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(
            f"cannot load the language model {card_path} ({exc}); restore models/ from git "
            "or run `python -m training.language_model`"
        ) from exc
