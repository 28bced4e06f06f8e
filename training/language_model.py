"""Build the character-level English language model that text mode reads words with.

`python -m training.language_model --out models` writes models/english-lm.npz
and its card models/english-lm.json. The words and their frequencies come from
the `wordfreq` package's English list (code Apache-2.0, data CC-BY-SA 4.0), so
the model file is a derivative of that data and carries the same licence.

The model is an interpolated Witten-Bell n-gram over the 26 letters and a
word-boundary symbol, stored in backoff form (the layout serving reads in
function/recognizer/language_model.py). Each word type counts with its Zipf
frequency (1 for the rarest, about 7.7 for "the"), so frequent words weigh
more without drowning the spelling patterns of rare ones.

The file also holds a lexicon, the LEXICON_WORDS commonest words as sorted
32-bit hashes (200 KB) with each word's Zipf frequency (50 KB), for the
reader's preference for common words, the more the more often they are
written (the n-grams weigh spellings: "lt" comes out about as likely as
"it"). On lines of training glyphs and tuning words the reader read more
lines right with the 50,000 commonest than with all 150,000, whose tail holds
more abbreviations and names that a misreading can spell
(training/runs/README.md).

The model learns every word of its vocabulary (the 150,000 most frequent):
the words people write most (hello, it, this) are the ones it must know.
Words it never saw come from further down the same list (`rare_words`, the
words ranked after those): its held-out perplexity, and the reader's tuning and
evaluation lines, use them as the rare words a person may also write.
`word_split` splits words, by a hash of the word, into those the reader is
tuned on and those it is evaluated on.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.metadata
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from recognizer.language_model import ALPHABET, BOUNDARY, SYMBOLS, LanguageModel, ngram_code, word_hash

ROOT = Path(__file__).resolve().parent.parent

ORDER = 6  # symbols per n-gram: five of context
VOCABULARY = 150_000  # most frequent alphabetic English words considered
LEXICON_WORDS = 50_000  # the commonest of them, whose readings the reader prefers (reader.Weights.lexicon)
# N-grams of these orders weighing less are dropped, so that the file, lexicon included, stays under 2 MB.
# 6-grams at 9.0 rather than 5.0: 1.92 MB against 2.25, held-out perplexity 15.97 against 15.92.
MIN_COUNT = {4: 2.0, 5: 3.0, 6: 9.0}
WORD = re.compile(f"[{ALPHABET}]+")
TUNE_SHARE = 0.5  # of the words, for tuning the reader; the rest for evaluating it


def english_words(limit: int = VOCABULARY) -> list[tuple[str, float]]:
    """(word, Zipf frequency) of the `limit` (at most twice VOCABULARY) most frequent all-letter English words."""
    return list(_ranked_words()[:limit])


def rare_words() -> list[tuple[str, float]]:
    """(word, Zipf frequency) of the all-letter English words ranked after the vocabulary: never in the model."""
    return list(_ranked_words()[VOCABULARY:])


@functools.lru_cache(maxsize=1)
def _ranked_words() -> tuple[tuple[str, float], ...]:
    """wordfreq's all-letter English words down to twice the vocabulary, with their Zipf frequencies: read once
    (2-3 s), for the vocabulary and the rare words after it alike."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 8 * VOCABULARY) if WORD.fullmatch(w)][: 2 * VOCABULARY]
    return tuple((w, wordfreq.zipf_frequency(w, "en")) for w in words)


def word_split(word: str) -> str:
    """'tune' (the reader's weights are tuned on lines of it) or 'test' (it is evaluated on), by the word's hash."""
    bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") / 2**32
    return "tune" if bucket < TUNE_SHARE else "test"


def _symbols(word: str) -> list[int]:
    return [BOUNDARY, *(ALPHABET.index(c) for c in word), BOUNDARY]


def count_ngrams(words: list[tuple[str, float]], order: int) -> list[dict[tuple[int, ...], float]]:
    """counts[k][(context..., symbol)] for k = 1..order; the start symbol is never predicted."""
    counts: list[dict[tuple[int, ...], float]] = [defaultdict(float) for _ in range(order + 1)]
    for word, weight in words:
        symbols = _symbols(word)
        for end in range(1, len(symbols)):
            for k in range(1, order + 1):
                if end - k + 1 < 0:
                    break
                counts[k][tuple(symbols[end - k + 1 : end + 1])] += weight
    for k, floor in MIN_COUNT.items():
        if k <= order:
            counts[k] = {g: c for g, c in counts[k].items() if c >= floor}
    return counts


def witten_bell(counts: list[dict[tuple[int, ...], float]]) -> dict[str, np.ndarray]:
    """Interpolated Witten-Bell estimates in backoff form, as the arrays serving loads.

    For each order k: `grams{k}` (the n-gram codes, sorted) with `logp{k}`, the
    interpolated log probability, and `contexts{k}` with `backoff{k}`, the log
    weight that an unseen symbol's lower-order probability gets after that context.
    """
    order = len(counts) - 1
    probabilities: list[dict[tuple[int, ...], float]] = [{}]
    backoffs: list[dict[tuple[int, ...], float]] = [{}]

    def probability(gram: tuple[int, ...]) -> float:
        """P(last symbol | the others) under the orders built so far, backing off as serving does."""
        k = len(gram)
        if k == 0:
            return 1.0 / SYMBOLS
        if k < len(probabilities) and gram in probabilities[k]:
            return probabilities[k][gram]
        weight = backoffs[k].get(gram[:-1], 1.0) if k < len(backoffs) else 1.0
        return weight * probability(gram[1:])

    arrays: dict[str, np.ndarray] = {}
    for k in range(1, order + 1):
        totals: dict[tuple[int, ...], float] = defaultdict(float)
        followers: dict[tuple[int, ...], int] = defaultdict(int)
        for gram, count in counts[k].items():
            totals[gram[:-1]] += count
            followers[gram[:-1]] += 1
        backoff = {context: followers[context] / (total + followers[context]) for context, total in totals.items()}
        level = {
            gram: (count / totals[gram[:-1]]) * (1 - backoff[gram[:-1]]) + backoff[gram[:-1]] * probability(gram[1:])
            for gram, count in counts[k].items()
        }
        probabilities.append(level)
        backoffs.append(backoff)
        grams = sorted(level, key=ngram_code)
        arrays[f"grams{k}"] = np.array([ngram_code(g) for g in grams], np.uint32)
        arrays[f"logp{k}"] = np.array([math.log(level[g]) for g in grams], np.float32)
        contexts = sorted(backoff, key=ngram_code)
        arrays[f"contexts{k}"] = np.array([ngram_code(c) for c in contexts], np.uint32)
        arrays[f"backoff{k}"] = np.array([math.log(backoff[c]) for c in contexts], np.float32)
    return arrays


def lexicon_arrays(words: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted uint32 hashes of the words, each one's Zipf frequency x 10 as uint8): how the file stores them.

    Two words with one hash (a CRC-32 collision) keep the higher frequency.
    """
    best: dict[int, float] = {}
    for word, zipf in words:
        code = word_hash(word)
        best[code] = max(best.get(code, 0.0), zipf)
    codes = np.array(sorted(best), np.uint32)
    return codes, np.array([round(10 * best[int(c)]) for c in codes], np.uint8)


def perplexity(model: LanguageModel, words: list[str]) -> float:
    """Per-symbol perplexity (letters and the word's end) over word types."""
    total, symbols = 0.0, 0
    for word in words:
        total += model.word_logprob(word)
        symbols += len(word) + 1
    return math.exp(-total / symbols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models", help="folder for english-lm.npz and its card")
    args = parser.parse_args()

    training = english_words()
    counts = count_ngrams(training, ORDER)
    arrays = witten_bell(counts)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "english-lm.npz"
    lexicon, zipf = lexicon_arrays(training[:LEXICON_WORDS])
    # Uncompressed: inflating the compressed file took 10-15 ms of every instance's start, for 0.8 MB less.
    np.savez(
        path,
        order=np.array(ORDER),
        lexicon=lexicon,
        lexicon_zipf=zipf,
        **{k: v.astype(_stored(k)) for k, v in arrays.items()},
    )
    model = LanguageModel.load(path)
    held_out = [w for w, _ in rare_words()]
    short = [w for w in held_out if 3 <= len(w) <= 8]
    card = {
        "name": "english-lm",
        "kind": "language_model",
        "file": path.name,
        "version": hashlib.sha256(path.read_bytes()).hexdigest(),  # serving refuses a file that is not this one
        "description": (
            "character-level English model: P(next letter or word end | up to five letters before); "
            "and a lexicon of the commonest words"
        ),
        "method": "interpolated Witten-Bell, backoff form; each word type weighted by its Zipf frequency",
        "order": ORDER,
        "alphabet": ALPHABET,
        "source": {
            "package": f"wordfreq=={importlib.metadata.version('wordfreq')}",
            "list": "wordfreq.top_n_list('en'), all-letter words only",
            "training_words": len(training),
            "held_out": "the next words of the same list, ranked after the training words (rare_words)",
        },
        "licence": (
            "derived from wordfreq's data, licensed CC-BY-SA 4.0 "
            "(https://creativecommons.org/licenses/by-sa/4.0/); this file is shared under the same licence. "
            "wordfreq's code is Apache-2.0"
        ),
        "size_bytes": path.stat().st_size,
        "ngrams": {str(k): len(arrays[f"grams{k}"]) for k in range(1, ORDER + 1)},
        "lexicon": {
            "words": LEXICON_WORDS,
            "what": "the commonest words of the list, whose readings the reader prefers",
            "stored_as": (
                "lexicon: sorted uint32 CRC-32 of each word (recognizer.language_model.word_hash); "
                "lexicon_zipf: each one's Zipf frequency x 10, uint8"
            ),
            "distinct_hashes": len(lexicon),
        },
        "pruning": {"min_weighted_count": {str(k): v for k, v in MIN_COUNT.items()}},
        "perplexity": {
            "held_out_words": round(perplexity(model, held_out), 3),
            "held_out_words_3_to_8_letters": round(perplexity(model, short), 3),
            "training_words": round(perplexity(model, [w for w, _ in training]), 3),
            "uniform": SYMBOLS,
            "n_held_out_words": len(held_out),
            "unit": "per symbol (each letter and the word's end), over word types",
        },
        "command": "python -m training.language_model --out models",
    }
    (args.out / "english-lm.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: card[k] for k in ("size_bytes", "ngrams", "perplexity")}, indent=2))


def _stored(name: str) -> type:
    return np.uint32 if name.startswith(("grams", "contexts")) else np.float16


if __name__ == "__main__":
    main()
