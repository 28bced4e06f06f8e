"""Text evaluation: lines of real handwritten glyphs, read by today's reader and by the search.

`python -m training.text_eval` builds lines from HELD-OUT glyphs only
(emnist-balanced-heldout for the characters model, MNIST t10k for digits) and
prints, for each set of issue 14's acceptance list (and common words, drawn as
often as English text uses them, as people write them, words written with
capitals, and two words closer together than the clear space rule needs), exact-line accuracy and
character error rate of the per-blob reader (one guess per connected piece, as
text mode read before the search) beside the search reader. `--tune` instead
searches the reader's weights on lines made from TRAINING glyphs only (the
validation slice of MNIST train and of EMNIST byclass/bymerge test, which the
models were not fitted on) and words never used in evaluation
(`word_split` == "tune", see `line_words`), and prints the weights to put in
reader.WEIGHTS and reader.PLAIN_WEIGHTS;
`--fit-cuts` fits reader.CUT_MODEL on such lines.

Lines go through the function's own path: PNG bytes -> decode -> ink ->
candidates -> one batched model call -> search.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from recognizer import reader
from recognizer.decode import decode_image
from recognizer.inference import load_model
from recognizer.language_model import load_language_model
from recognizer.preprocess import PROFILES, crop_to_ink, to_ink
from recognizer.segment import find_runs, label_components, segment_characters
from training.data import (
    CHARACTER_LABELS,
    DIGIT_LABELS,
    Split,
    load_characters_train,
    load_emnist,
    load_mnist,
    split,
)
from training.language_model import english_words, rare_words, word_split

ROOT = Path(__file__).resolve().parent.parent

LINES = 500  # per set
WORD_RANKS = 50_000  # evaluation words come from this many most frequent English words ...
RARE_SHARE = 0.1  # ... and this share from rare ones, ranked after the language model's vocabulary
RARE_WORDS_SEED = 4  # which rare words (both halves draw with it, from pools that share no word)
APART = (0.15, 0.6)  # gap between letters, as a share of the letter height
TOUCHING = (-0.05, 0.12)
WORD_GAP = (1.0, 1.6)
CLOSE_WORD_GAP = (0.5, 1.0)  # as people often leave: from under the widest letter gap up to WORD_GAP's start
LOOK_ALIKES = set("O0I1LS5Z2q9gFf")
CODE_SYMBOLS = [c for c in CHARACTER_LABELS if c not in LOOK_ALIKES and not c.islower()]
SETS = (
    "words apart",
    "words touching",
    "numbers",
    "codes",
    "two words",
    "digits model",
    "common words",
    "capitals",
    "two words close",
)


@dataclasses.dataclass
class Line:
    png: bytes
    truth: str  # in the model's labels, words separated by one space
    space: tuple[int, int] | None = None  # pixel columns of the gap between two words
    edges: list[int] = dataclasses.field(default_factory=list)  # each glyph's left and right pixel column


def compose(glyphs: list[np.ndarray], gaps: list[float], rng: np.random.Generator) -> tuple[bytes, list[int]]:
    """Glyphs (28x28, white on black) side by side, dark on white; gaps in shares of the letter height.

    Overlapping glyphs are drawn with the maximum of their ink, as a pen would.
    Returns the PNG and each glyph's left and right columns.
    """
    height = int(rng.integers(40, 64))
    scaled = []
    for image in glyphs:
        glyph = crop_to_ink(image.astype(np.float32) / 255)
        scale = height * rng.uniform(0.8, 1.15) / max(glyph.shape)
        size = (max(2, round(glyph.shape[1] * scale)), max(2, round(glyph.shape[0] * scale)))
        scaled.append(np.asarray(Image.fromarray(glyph).resize(size, Image.Resampling.BILINEAR)))
    margin = height // 2
    offsets, x = [], margin
    for glyph, gap in zip(scaled, gaps, strict=True):
        offsets.append(x)
        x += glyph.shape[1] + round(gap * height)
    width = max(o + g.shape[1] for o, g in zip(offsets, scaled, strict=True)) + margin
    canvas = np.zeros((round(1.3 * height) + 2 * margin, width), np.float32)
    edges = []
    for glyph, left in zip(scaled, offsets, strict=True):
        top = margin + (round(1.15 * height) - glyph.shape[0]) // 2 + int(rng.integers(-height // 10, height // 10 + 1))
        region = canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        np.maximum(region, glyph, out=region)
        edges += [left, left + glyph.shape[1]]
    buffer = io.BytesIO()
    Image.fromarray(np.round(255 - 255 * np.clip(canvas, 0, 1)).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue(), edges


class Glyphs:
    """Images of each label, to draw lines from."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
        self.images = images
        self.names = names
        self.by_label = {names[k]: np.nonzero(labels == k)[0] for k in range(len(names))}

    def draw(self, label: str, rng: np.random.Generator) -> np.ndarray:
        return self.images[rng.choice(self.by_label[label])]


def letter_label(letter: str) -> str:
    """The characters model's label for a lower-case letter: itself, or its capital where EMNIST merges case."""
    return letter if letter in CHARACTER_LABELS else letter.upper()


def make_lines(
    kind: str, glyphs: Glyphs, words: list[str], rng: np.random.Generator, count: int, shares: np.ndarray | None = None
) -> list[Line]:
    """`count` lines of one set; words are drawn from `words`, each as often as `shares` says (else uniformly)."""
    lines = []
    for _ in range(count):
        length = int(rng.integers(3, 9))
        space = None
        if kind in ("words apart", "words touching", "common words"):
            word = words[rng.choice(len(words), p=shares) if shares is not None else rng.integers(len(words))]
            truth = "".join(letter_label(c) for c in word)
            gaps = rng.uniform(*(TOUCHING if kind == "words touching" else APART), len(truth))
        elif kind == "capitals":  # half in capitals (HELLO), half with a capital first letter (Hello)
            word = words[rng.integers(len(words))]
            word = word.upper() if rng.random() < 0.5 else word[0].upper() + word[1:]
            truth = "".join(letter_label(c) if c.islower() else c for c in word)
            gaps = rng.uniform(*APART, len(truth))
        elif kind == "numbers" or kind == "digits model":
            truth = "".join(rng.choice(DIGIT_LABELS, length))
            touching = kind == "digits model" and rng.random() < 1 / 3
            gaps = rng.uniform(*(TOUCHING if touching else APART), length)
        elif kind == "codes":
            truth = "".join(rng.choice(CODE_SYMBOLS, length))
            gaps = rng.uniform(*APART, length)
        elif kind in ("two words", "two words close"):
            first, second = ("".join(letter_label(c) for c in words[rng.integers(len(words))]) for _ in range(2))
            truth = f"{first} {second}"
            gaps = rng.uniform(*APART, len(first) + len(second))
            gaps[len(first) - 1] = rng.uniform(*(WORD_GAP if kind == "two words" else CLOSE_WORD_GAP))
        else:
            raise ValueError(kind)
        letters = truth.replace(" ", "")
        png, edges = compose([glyphs.draw(c, rng) for c in letters], list(gaps), rng)
        if " " in truth:
            k = len(truth.split()[0])
            space = (edges[2 * k - 1], edges[2 * k])
        lines.append(Line(png, truth, space, edges))
    return lines


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def fold(text: str) -> str:
    """Compare where EMNIST merges case: a letter whose cases are one class counts as that class."""
    return "".join(letter_label(c.lower()) if c.isalpha() and c.lower() not in CHARACTER_LABELS else c for c in text)


@dataclasses.dataclass
class Prepared:
    """A line's candidates and the model's probabilities, computed once, searched many times."""

    lattice: reader.Lattice
    probabilities: np.ndarray
    per_blob: str
    scale: float  # working pixels -> the PNG's pixels
    fragments: np.ndarray | None  # each candidate's P(none of these), from the model's reject output


def prepare(line: Line, model) -> Prepared:
    gray, scale = decode_image(line.png)
    ink = to_ink(gray)
    ink, runs = reader.drop_stray_dots(ink, find_runs(ink > 0))  # as recognizer.api.recognize reads a line
    lattice = reader.candidate_pieces(ink, runs=runs)
    profile = PROFILES[model.profile]
    outputs = model.outputs(np.stack([profile(p.crop) for p in lattice.pieces]))
    probabilities, _ = model.decide(outputs)
    fragments = model.reject_probability(outputs)
    blobs = [crop_to_ink(crop) for _, crop in segment_characters(ink)]
    per_blob = model.probabilities(np.stack([profile(c) for c in blobs]))
    text = "".join(model.labels[int(i)] for i in per_blob[:, : len(model.labels)].argmax(axis=1))
    return Prepared(lattice, probabilities, text, scale, fragments)


def score(prepared: list[Prepared], lines: list[Line], labels, lm, weights=None) -> dict:
    exact = errors = characters = spaces = 0
    for p, line in zip(prepared, lines, strict=True):
        best = reader.read(p.lattice, p.probabilities, labels, lm, weights, p.fragments)[0]
        text = fold(best.text)
        exact += text == line.truth
        errors += edit_distance(text, line.truth)
        characters += len(line.truth)
        if line.space is not None:
            spaces += _space_right(best, p, line.space)
    result = {"exact": exact / len(lines), "cer": errors / characters, "n": len(lines)}
    if lines[0].space is not None:
        result["space"] = spaces / len(lines)
    return result


def _space_right(reading: reader.Reading, prepared: Prepared, gap: tuple[int, int]) -> bool:
    """Two words, the first ending and the second starting inside the true gap (2 px of slack)."""
    if len(reading.words) != 2:
        return False
    first = [prepared.lattice.pieces[i].box for i in reading.words[0][1]]
    second = [prepared.lattice.pieces[i].box for i in reading.words[1][1]]
    end = max(x + w for x, _, w, _ in first) * prepared.scale
    start = min(x for x, _, _, _ in second) * prepared.scale
    return end <= gap[1] + 2 and start >= gap[0] - 2


def per_blob_score(prepared: list[Prepared], lines: list[Line]) -> dict:
    """Today's reader: no spaces, one guess per connected group of ink."""
    truths = [line.truth.replace(" ", "") for line in lines]
    texts = [fold(p.per_blob) for p in prepared]
    exact = sum(t == truth for t, truth in zip(texts, truths, strict=True))
    errors = sum(edit_distance(t, truth) for t, truth in zip(texts, truths, strict=True))
    return {"exact": exact / len(lines), "cer": errors / sum(len(truth) for truth in truths), "n": len(lines)}


def build(
    source: str, data_dir: Path, count: int, seed: int, kinds: tuple[str, ...] = SETS
) -> dict[str, tuple[list[Line], str]]:
    """Every set's lines: held-out glyphs and 'test' words for 'heldout', training glyphs and 'tune' words else."""
    rng = np.random.default_rng(seed)
    if source == "heldout":
        chars, digits = load_emnist(data_dir, "balanced-heldout"), load_mnist(data_dir, "t10k")
        characters = Glyphs(chars.images, chars.labels, CHARACTER_LABELS)
        mnist = Glyphs(digits.images, digits.labels, DIGIT_LABELS)
    else:
        characters = _validation_glyphs(load_characters_train(data_dir), CHARACTER_LABELS)
        mnist = _validation_glyphs(load_mnist(data_dir, "train"), DIGIT_LABELS)
    part = "test" if source == "heldout" else "tune"
    words, (common, shares) = line_words(part), common_words(part)
    sets = {}
    for kind in kinds:
        model = "digits" if kind == "digits model" else "characters"
        glyphs = mnist if model == "digits" else characters
        pool, pool_shares = (common, shares) if kind == "common words" else (words, None)
        sets[kind] = (make_lines(kind, glyphs, pool, rng, count, pool_shares), model)
    return sets


def line_words(part: str) -> list[str]:
    """The words lines are written with: `part` ('tune' or 'test') of the WORD_RANKS most frequent words of 3-8
    letters, which the language model knows, and RARE_SHARE of them rare words it never saw (language_model.py)."""
    known = [w for w, _ in english_words()[:WORD_RANKS] if 3 <= len(w) <= 8 and word_split(w) == part]
    rare = [w for w, _ in rare_words() if 3 <= len(w) <= 8 and word_split(w) == part]
    count = round(len(known) * RARE_SHARE / (1 - RARE_SHARE))
    chosen = np.random.default_rng(RARE_WORDS_SEED).choice(len(rare), count, replace=False)
    return known + [rare[i] for i in sorted(chosen)]


def common_words(part: str) -> tuple[list[str], np.ndarray]:
    """(words, the share of uses each has): `part` of the WORD_RANKS most frequent words of 2-8 letters, to be
    drawn as often as English text uses them. The other sets draw every word alike, so "hi" and "hl" (a
    string wordfreq lists) come up as often there; people write "hi" 70 times as often."""
    ranked = [(w, zipf) for w, zipf in english_words()[:WORD_RANKS] if 2 <= len(w) <= 8 and word_split(w) == part]
    uses = np.array([10.0**zipf for _, zipf in ranked])
    return [w for w, _ in ranked], uses / uses.sum()


def cut_examples(lines: list[Line]) -> tuple[np.ndarray, np.ndarray]:
    """(CUT_FEATURES, is a real boundary) for every cut candidate in the lines' pieces of ink.

    A candidate is a real boundary when its column lies between one glyph's
    right edge and the next one's left edge (either order: they may overlap),
    with 2 working pixels of slack.
    """
    features, truths = [], []
    for line in lines:
        gray, scale = decode_image(line.png)
        ink = to_ink(gray)
        labels, boxes, _ = label_components(ink > 0)
        height = reader.letter_height(boxes)
        edges = np.array(line.edges, float).reshape(-1, 2) / scale
        zones = [
            (min(edges[i, 1], edges[i + 1, 0]) - 2, max(edges[i, 1], edges[i + 1, 0]) + 2)
            for i in range(len(edges) - 1)
        ]
        for number, box in enumerate(boxes, 1):
            if box.width < reader.CUT_WIDTH * height:
                continue
            mine = labels[box.y0 : box.y1, box.x0 : box.x1] == number
            relative = box.width / reader.typical_width(boxes, height)
            for column, f in reader.cut_candidates(mine.sum(axis=0), height, relative):
                x = box.x0 + column
                features.append(f)
                truths.append(any(low <= x <= high for low, high in zones))
    return np.array(features), np.array(truths, float)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Weights (bias first) of a logistic regression, by Newton's method with a small L2 penalty."""
    design = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + l2 * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_cuts(data_dir: Path, count: int) -> None:
    """Fit reader.CUT_MODEL on one set of training-glyph lines; report it on a second."""
    kinds = ("words touching", "words apart", "numbers", "digits model")
    fitted = build("train", data_dir, count, seed=7, kinds=kinds)
    checked = build("train", data_dir, count, seed=8, kinds=kinds)
    x, y = (np.concatenate(parts) for parts in zip(*(cut_examples(lines) for lines, _ in fitted.values()), strict=True))
    weights = fit_logistic(x, y)
    xc, yc = (
        np.concatenate(parts) for parts in zip(*(cut_examples(lines) for lines, _ in checked.values()), strict=True)
    )
    p = 1 / (1 + np.exp(-(weights[0] + xc @ weights[1:])))
    print(f"{len(y)} candidates ({y.mean():.2f} real) fitted; checked on {len(yc)} ({yc.mean():.2f} real):")
    for floor in (0.005, 0.01, 0.02, 0.05):
        kept = p >= floor
        print(
            f"  kept at P >= {floor}: {kept.mean():.3f} of candidates, {yc[kept].sum() / max(yc.sum(), 1):.3f} of real ones"
        )
    print("CUT_MODEL = (" + ", ".join(f"{w:.3f}" for w in weights) + ")")


def _validation_glyphs(train: Split, names: list[str]) -> Glyphs:
    """The training files' validation slice (data.split): training files, but never fitted by the models.

    On glyphs the models were fitted on they are far surer than on new
    handwriting, and weights tuned there trust them too much.
    """
    validation, _ = split(len(train.images))
    return Glyphs(train.images[validation], train.labels[validation], names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--lines", type=int, default=LINES, help="lines per set")
    parser.add_argument("--tune", action="store_true", help="tune the weights on lines of training glyphs")
    parser.add_argument("--fit-cuts", action="store_true", help="fit reader.CUT_MODEL on lines of training glyphs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.fit_cuts:
        fit_cuts(args.data_dir, args.lines)
        return
    models = {name: load_model(args.models_dir / f"{name}.tflite") for name in ("characters", "digits")}
    lm = load_language_model(args.models_dir)
    sets = build("train" if args.tune else "heldout", args.data_dir, args.lines, seed=14 if args.tune else 41)
    prepared = {
        kind: ([prepare(line, models[model]) for line in lines], lines, model) for kind, (lines, model) in sets.items()
    }
    if args.tune:
        for plain in (True, False):
            name = "PLAIN_WEIGHTS" if plain else "WEIGHTS"
            print(name, json.dumps(dataclasses.asdict(tune(prepared, models, lm, plain))), flush=True)
        return
    results = {}
    for kind, (ready, lines, model) in prepared.items():
        labels = models[model].labels
        row = {
            "n": len(lines),
            "per_blob": per_blob_score(ready, lines),
            "search": score(ready, lines, labels, lm if model == "characters" else None),
        }
        if model == "characters":
            row["search_context_none"] = score(ready, lines, labels, None)
        results[kind] = row
        print(kind, json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


PLAIN_SETS = {"codes", "digits model"}  # read without the language model when tuning PLAIN_WEIGHTS


def tune(prepared: dict, models: dict, lm, plain: bool) -> reader.Weights:
    """Coordinate search over the weights, maximising the mean exact-line accuracy (plus spaces right).

    `plain` tunes reader.PLAIN_WEIGHTS (no language model) on codes and digit
    lines; else reader.WEIGHTS on every characters set, read with the
    language model. Each weight is halved and doubled, then moved by a third,
    while that helps. `ocr` fixes the scale.
    """
    chosen = {k: v for k, v in prepared.items() if not plain or k in PLAIN_SETS}
    if not plain:
        chosen = {k: v for k, v in chosen.items() if v[2] == "characters"}

    def objective(weights: reader.Weights) -> float:
        total = 0.0
        for ready, lines, model in chosen.values():
            result = score(ready, lines, models[model].labels, None if plain else lm, weights)
            total += result["exact"] + result.get("space", 0.0)
        return total / len(chosen)

    best = reader.PLAIN_WEIGHTS if plain else reader.WEIGHTS
    best_value = objective(best)
    print(f"{'plain' if plain else 'words'} start {best_value:.4f} {best}", flush=True)
    words_only = {
        "lm",
        "switch",
        "digit",
        "lexicon",
        "frequency",
        "case",
        "capital",
        "loose_space",
        "loose_ratio",
        "loose_cost",
        "loose_sure",
    }
    skip = {"ocr"} | (words_only if plain else set())
    names = [f.name for f in dataclasses.fields(reader.Weights) if f.name not in skip]
    for factors in ((0.5, 2.0), (0.75, 1.33)):
        for name in names:
            for factor in factors:
                while True:
                    trial = dataclasses.replace(best, **{name: round(getattr(best, name) * factor, 3)})
                    value = objective(trial)
                    if value <= best_value + 1e-9:
                        break
                    best, best_value = trial, value
                    print(f"{value:.4f} {name}={getattr(trial, name)}", flush=True)
    print(f"end {best_value:.4f}", flush=True)
    return best


if __name__ == "__main__":
    main()
