"""Read a line of handwriting by search: candidate pieces, scored by the model in one batch, a beam search.

A line is cut into atoms: connected pieces of ink (for pen strokes, the strokes
themselves, so a stroke is never split and strokes that merely touch stay
apart), and, inside a piece too wide for one character, vertical slices at the
columns with the least ink (where touching letters join). A candidate
character is a run of up to MAX_MERGE neighbouring atoms: an `i` and its dot,
the two bars of `=`, a 4 drawn in two strokes; or of more, where they are all
the slices of one piece of ink (a thin pen's m, cut at each arch). The caller scores every
candidate with the model in one batch (Model.outputs: an invoke per candidate, as cheap as a batched one
here); `read` then searches the lattice
of candidates for the readings that best combine the model's probabilities,
the English language model (letters), a prior that keeps letters with letters
and digits with digits, a segmentation prior (no merging across clear gaps, no
cutting without need) and the model's reject output (a fragment, or two
characters read as one, is "none of these"). A gap clearly wider than the line's typical
gap is a space; each word is searched on its own, in context. In `words` context a
narrower gap that still stands out may be a space too: the line is read both ways
and the language model decides (people leave less room between words than the
clear rule needs, and "thehello" is no word).

Everything that bounds the work is a named constant below.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from .errors import ApiError
from .language_model import ALPHABET, BOUNDARY, LanguageModel
from .segment import Runs, find_runs, median, percentile
from .strokes import draw_stroke

MAX_ATOMS = 128  # pieces of ink in a line, before any cut (strokes are bounded by strokes.MAX_STROKES)
MAX_MERGE = 4  # atoms in one candidate character, or more where they are all the slices of one piece of ink
CUTS_PER_HEIGHT = 3  # at most this many cuts per letter-height of a piece's width
MAX_CUT_ATOMS = 256  # atoms after cutting: no more cuts beyond this
MIN_SLICE = 0.12  # a slice is at least this share of the letter height wide
CUT_WIDTH = 0.4  # pieces narrower than this share of the letter height are never cut
CUT_INK = 0.5  # a cut crosses at most this share of the letter height of ink
MIN_CUT_PROBABILITY = 0.01  # cuts the cut model finds less likely than this are not tried
# The cut model: logistic regression on CUT_FEATURES, P(a boundary between two characters lies at this
# cut), fitted by `python -m training.text_eval --fit-cuts` on lines of training glyphs. Bias first.
CUT_FEATURES = ("width", "ink", "left", "right", "rise", "relative_ink", "relative_width")
CUT_MODEL = (-8.148, 1.823, -1.513, 0.962, 0.862, 5.419, -1.534, 0.393)
MAX_PIECE_WIDTH = 1.8  # merged candidates wider than this many letter heights are not tried
BEAM_WIDTH = 8  # hypotheses kept at each atom boundary
LABELS_PER_PIECE = 4  # the model's most probable labels tried for each candidate
ALTERNATIVES = 5  # readings answered
MAX_MERGE_GAP = 0.4  # atoms this many letter heights apart are never one character (Weights.gap: 17 nats)
DOT_SHARE = 0.3  # a candidate within this share of the letter height both ways is a dot or a fragment
STRAY_GAP = 0.5  # a dot this many letter heights from all the writing (its pieces that are not dots) is a stray mark
UPPER_GAPS = 75  # percentile of a line's gaps that a loose space is judged against ...
MIN_UPPER_GAP = 0.1  # ... in letter heights, at least: letters that touch still leave room for a space
MAX_LOOSE_SPACES = 3  # gaps between clear spaces read both with and without a space (the widest first)
SAME_HEIGHT = 0.75  # a word's letters all within this share of its tallest: one height, as capitals are
X_HEIGHT = set("acemnorsuvwxz")  # lower-case letters no taller than the x-height


@dataclass(frozen=True)
class Weights:
    """How the search weighs its evidence; tuned on lines of training glyphs (training/text_eval.py)."""

    ocr: float = 1.0  # x log P(label | piece), from the model
    lm: float = 0.333  # x log P(letter | the word so far), from the language model
    bonus: float = 1.5  # per character read: balances readings with more and fewer pieces
    gap: float = 42.56  # per letter height of clear gap merged inside one character
    wide: float = 3.0  # per letter height of width beyond one letter height
    cut: float = 1.0  # x -log P(cut) for a cut used between two characters, x -log(1 - P) for one left whole
    overlap: float = 3.0  # for parting two atoms that overlap: x the share of the narrower lying over the other
    dot: float = 4.0  # per dot-sized character
    space: float = 1.064  # a gap wider than this many letter heights ...
    space_ratio: float = 1.25  # ... and this many times the line's median gap is a space
    # A narrower gap, wider than loose_space letter heights and loose_ratio times the median gap, may be a space
    # (words context only): a space there costs up to loose_cost, less the nearer the gap comes to the clear rule's
    # threshold and the more it stands out from the line's wider gaps (nothing at loose_sure times their upper
    # quartile: tight letters with a plain word gap between them), and the language model weighs both readings.
    loose_space: float = 0.5
    loose_ratio: float = 1.25
    loose_cost: float = 14.0
    loose_sure: float = 6.0
    switch: float = 3.0  # per change between letters and digits inside a word
    digit: float = 0.764  # per digit in a word context (what a letter costs under the language model)
    reject: float = 1.0  # x -log(1 - P(not a character)), the model's reject output: fragments cost
    lexicon: float = 3.0  # for a word of letters in the language model's lexicon (the commonest words) ...
    frequency: float = 0.77  # ... and per Zipf point (ten times the use) above the least of them: ln(10) x lm
    case: float = 6.0  # per change between lower and upper case inside a word (a capital first letter is free)
    # For a word whose first letter told apart by case is a capital (For, OF, HELLO): the model often reads f, h, n,
    # t as their capitals. 0.5 to 1.5 scored alike on tuning lines; 1.0 read the stroke-drawn "HI" as "til".
    capital: float = 0.5


WEIGHTS = Weights()  # reading words: with the language model
# Reading each character on its own (context "none", the digits model): no language model, no
# letters/digits prior, so the per-character bonus and the segmentation prior balance differently.
PLAIN_WEIGHTS = Weights(bonus=0.188, overlap=6.0)


@dataclass(frozen=True)
class Piece:
    """A candidate character: atoms [start, end), its box (x, y, w, h) in working pixels, its ink."""

    start: int
    end: int
    box: tuple[int, int, int, int]
    crop: np.ndarray
    gap: float  # letter heights of clear gap between its atoms
    wide: float  # letter heights of width beyond one
    dot: bool  # dot-sized: a fragment or an i's dot on its own


@dataclass(frozen=True)
class Lattice:
    """The candidates of one line, over its atoms 0..atoms-1 ordered left to right."""

    atoms: int
    pieces: list[Piece]
    cuts: dict[int, float]  # atom boundaries k (before atom k) that cut through connected ink: P(a real boundary)
    gaps: np.ndarray  # gaps[k - 1]: the clear gap before atom k, in letter heights (negative: overlap)
    overlaps: np.ndarray  # overlaps[k - 1]: how much of the narrower of atoms k - 1 and k lies over the other


@dataclass
class Reading:
    """One reading of the line: its text, words and the pieces chosen for each character."""

    text: str
    score: float
    characters: list[tuple[int, str]] = field(default_factory=list)  # (piece index, label)
    words: list[tuple[str, list[int]]] = field(default_factory=list)  # (text, piece indices)
    probability: float = 0.0


def stroke_atoms(
    strokes: list[np.ndarray], ink: np.ndarray, scale: float, origin: tuple[float, float], pen: float
) -> np.ndarray:
    """Label each ink pixel with the stroke (1..n) that drew it, as strokes.draw_strokes drew them (its Drawing).

    Later strokes win where two cross; the labels are drawn a little wider than
    the pen so the ink's anti-aliased rim is labelled too.
    """
    canvas = Image.new("I", (ink.shape[1], ink.shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    width = round(pen) + 4
    for number, stroke in enumerate(strokes, 1):
        draw_stroke(draw, (stroke - np.array(origin)) / scale, width, number)
    return np.where(ink > 0, np.asarray(canvas, np.int32), 0)


def candidate_pieces(ink: np.ndarray, atom_map: np.ndarray | None = None, runs: Runs | None = None) -> Lattice:
    """The line's candidate characters, left to right.

    `atom_map` labels each ink pixel with its stroke (`stroke_atoms`); without
    it (an image) the atoms are the connected pieces of ink, cut where too wide.
    `runs` are the ink's (find_runs of ink > 0), where the caller has them.
    """
    runs = find_runs(ink > 0) if runs is None else runs
    boxes = runs.boxes()
    height = letter_height(boxes)
    if atom_map is None:
        if len(boxes) > MAX_ATOMS:
            raise _too_many(len(boxes))
        atom_map, cuts_at = _cut_wide(runs.labels(ink.shape), boxes, height)
    else:
        cuts_at = {}
    atom_map, bounds, cuts = _order_atoms(atom_map, cuts_at)
    n = len(bounds)
    right = np.maximum.accumulate(bounds[:, 1])
    gaps = (bounds[1:, 0] - right[:-1]) / height  # gaps[k - 1]: before atom k, in letter heights
    widths = bounds[:, 1] - bounds[:, 0]
    shared = np.minimum(right[:-1], bounds[1:, 1]) - np.maximum(bounds[:-1, 0], bounds[1:, 0])
    overlaps = np.clip(shared / np.minimum(widths[:-1], widths[1:]), 0.0, 1.0)
    pieces = []
    for s in range(n):
        sliced = True  # atoms s..e-1 are slices of one piece of ink: every boundary between them is a cut
        for e in range(s + 1, n + 1):
            x0, x1 = int(bounds[s:e, 0].min()), int(bounds[s:e, 1].max())
            if e - s > 1 and (x1 - x0 > MAX_PIECE_WIDTH * height or gaps[e - 2] > MAX_MERGE_GAP):
                break
            sliced = sliced and (e - s == 1 or e - 1 in cuts)
            if e - s > MAX_MERGE:  # more atoms only as a whole piece of ink cut into slices (a thin m, at each arch)
                if not sliced or s in cuts:
                    break
                if e < n and e in cuts:  # not yet its last slice
                    continue
            pieces.append(_piece(ink, atom_map, bounds, gaps, s, e, height))
    return Lattice(n, pieces, cuts, gaps, overlaps)


def stray_dots(y0: np.ndarray, x0: np.ndarray, y1: np.ndarray, x1: np.ndarray, height: float) -> np.ndarray:
    """Which of these boxes (arrays of their bounds) are stray dots: no more than DOT_SHARE letter heights
    either way, and at least STRAY_GAP letter heights from every box that is not a dot.

    No character of either model is a lone dot, so such a piece could only be
    misread, and a misread one costs more than itself: the search fits the
    word around it (HEX and a tap to its right read as HELLO). Only dots over
    another piece (an i's or j's) count their height above it at half: people
    dot an i well above its stem. Two taps do not keep each other.
    """
    dot = (y1 - y0 <= DOT_SHARE * height) & (x1 - x0 <= DOT_SHARE * height)
    stray = np.zeros(len(dot), bool)
    if not dot.any() or dot.all():
        return stray
    dots, others = np.flatnonzero(dot), np.flatnonzero(~dot)
    across = np.maximum(x0[dots, None] - x1[None, others], x0[None, others] - x1[dots, None])  # <= 0: overlapping
    above = y0[None, others] - y1[dots, None]  # > 0: the dot is above the other box
    down = np.where((across <= 0) & (above > 0), above / 2, np.maximum(y0[dots, None] - y1[None, others], above))
    stray[dots] = np.maximum(across, down).min(axis=1) >= STRAY_GAP * height
    return stray


def drop_stray_dots(ink: np.ndarray, runs: Runs) -> tuple[np.ndarray, Runs]:
    """(ink, its runs) without the pieces that are stray dots (stray_dots): a speck on the paper, a full stop
    written well after a word. A line of more than MAX_ATOMS pieces is left as it is (text mode refuses it)."""
    if not 2 <= runs.count <= MAX_ATOMS:
        return ink, runs
    y0, x0, y1, x1 = runs.bounds()
    stray = stray_dots(y0, x0, y1, x1, typical_height((y1 - y0).astype(float)))
    if not stray.any():
        return ink, runs
    keep = ~stray
    on = keep[runs.component]  # the runs of the pieces kept, renumbered 0..kept-1 below
    rest = Runs(
        runs.rows[on], runs.starts[on], runs.ends[on], (np.cumsum(keep) - 1)[runs.component[on]], int(keep.sum())
    )
    return np.where(runs.paint(ink.shape, keep), ink, 0).astype(ink.dtype, copy=False), rest


def drop_stray_taps(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """The pen strokes without the taps that are stray dots (stray_dots), found before the strokes are drawn:
    strokes are drawn to fit their extent, so a tap far from the writing would also shrink it."""
    if len(strokes) < 2:
        return strokes
    low = np.array([stroke.min(axis=0) for stroke in strokes])
    high = np.array([stroke.max(axis=0) for stroke in strokes])
    heights = high[:, 1] - low[:, 1]
    if heights.max() <= 0:
        return strokes
    stray = stray_dots(low[:, 1], low[:, 0], high[:, 1], high[:, 0], typical_height(heights))
    return [stroke for stroke, gone in zip(strokes, stray, strict=True) if not gone]


def letter_height(boxes: list) -> float:
    """The line's typical letter height: the median height of its pieces of ink, dots and fragments left out."""
    return typical_height(np.array([b.y1 - b.y0 for b in boxes], float))


def typical_height(heights: np.ndarray) -> float:
    """The median of these heights (of pieces of ink, or of pen strokes), dots and fragments left out."""
    return median(heights[heights >= DOT_SHARE * heights.max()])


def _too_many(count: int) -> ApiError:
    return ApiError(422, "too_many_characters", f"found {count} pieces of ink; the limit is {MAX_ATOMS}")


def _cut_wide(labels: np.ndarray, boxes: list, height: float) -> tuple[np.ndarray, dict[int, float]]:
    """Split pieces of ink that may hold several characters at their likeliest cuts.

    Returns a map of atom ids (components, then the new slices) and, for each
    slice whose left edge is a cut, the cut model's probability of that cut.
    """
    atom_map = labels.copy()
    next_id = len(boxes) + 1
    cut_left: dict[int, float] = {}
    budget = MAX_CUT_ATOMS - len(boxes)
    typical = typical_width(boxes, height)
    for number, box in enumerate(boxes, 1):
        if box.width < CUT_WIDTH * height or budget <= 0:
            continue
        window = (slice(box.y0, box.y1), slice(box.x0, box.x1))
        mine = labels[window] == number
        found = cut_candidates(mine.sum(axis=0), height, box.width / typical)
        chances = cut_probability(np.array([f for _, f in found]).reshape(-1, len(CUT_FEATURES)))
        limit = min(budget, int(CUTS_PER_HEIGHT * box.width / height))
        columns = _spaced(
            [(-p, c) for (c, _), p in zip(found, chances, strict=True) if p >= MIN_CUT_PROBABILITY], height, limit
        )
        if not columns:
            continue
        budget -= len(columns)
        chance = {c: p for (c, _), p in zip(found, chances, strict=True)}
        region = atom_map[window]  # a view: written in place
        for left, right in zip(columns, [*columns[1:], box.width], strict=True):
            part = mine.copy()
            part[:, :left] = False
            part[:, right:] = False
            region[part] = next_id
            cut_left[next_id] = float(chance[left])  # the slice left of the first cut keeps the component's number
            next_id += 1
    return atom_map, cut_left


def typical_width(boxes: list, height: float) -> float:
    """The median width of the line's pieces of ink (dots left out): one letter's, where they stand apart."""
    heights = np.array([b.y1 - b.y0 for b in boxes], float)
    widths = np.array([b.width for b in boxes], float)[heights >= DOT_SHARE * heights.max()]
    return median(widths) if len(widths) >= 3 else height


def cut_candidates(profile: np.ndarray, height: float, relative_width: float) -> list[tuple[int, np.ndarray]]:
    """(column, CUT_FEATURES) at the middle of each valley of ink per column of one piece of ink.

    A valley is a run of equal (smoothed) columns with more ink on both sides,
    so a long thin join is one candidate, at its middle.
    """
    smooth = np.round(np.convolve(profile.astype(float), np.ones(3) / 3, mode="same"), 2)
    margin = max(1, round(MIN_SLICE * height))
    width = len(smooth)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(smooth)) + 1])
    ends = np.concatenate([starts[1:], [width]])
    values = smooth[starts]
    middles = (starts + ends - 1) // 2
    valley = (values < np.r_[np.inf, values[:-1]]) & (values < np.r_[values[1:], np.inf])
    valley &= (values <= CUT_INK * height) & (middles >= margin) & (middles < width - margin)
    if not valley.any():
        return []
    before, after = np.maximum.accumulate(smooth), np.maximum.accumulate(smooth[::-1])[::-1]
    typical = median(profile[profile > 0])
    found = []
    for value, middle in zip(values[valley].tolist(), middles[valley].tolist(), strict=True):
        rise = min(before[middle - 1], after[middle]) - value
        features = (width / height, value / height, middle / height, (width - middle) / height, rise / height)
        found.append((middle, np.array([*features, value / typical, relative_width])))
    return found


def cut_probability(features: np.ndarray) -> np.ndarray:
    """The cut model: P(a boundary between two characters lies at each cut)."""
    bias, *weights = CUT_MODEL
    return 1.0 / (1.0 + np.exp(-(bias + features @ np.array(weights))))


def _spaced(ranked: list[tuple[float, int]], height: float, limit: int) -> list[int]:
    """The best-ranked columns, at least MIN_SLICE apart, at most `limit`, left to right."""
    margin = max(1, round(MIN_SLICE * height))
    chosen: list[int] = []
    for _, column in sorted(ranked):
        if len(chosen) == limit:
            break
        if all(abs(column - c) >= margin for c in chosen):
            chosen.append(int(column))
    return sorted(chosen)


def _order_atoms(atom_map: np.ndarray, cut_left: dict[int, float]) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Renumber atoms 1..n left to right by their centre; (map, bounds [x0, x1, y0, y1] rows, cut boundaries)."""
    ys, xs = np.nonzero(atom_map)
    values = atom_map[ys, xs]
    size = int(atom_map.max()) + 1
    x0, y0 = np.full(size, atom_map.shape[1]), np.full(size, atom_map.shape[0])
    x1, y1 = np.zeros(size, int), np.zeros(size, int)
    np.minimum.at(x0, values, xs)
    np.maximum.at(x1, values, xs + 1)
    np.minimum.at(y0, values, ys)
    np.maximum.at(y1, values, ys + 1)
    ids = np.nonzero(x1[1:] > 0)[0] + 1
    bounds_array = np.stack([x0[ids], x1[ids], y0[ids], y1[ids]], axis=1)
    order = np.argsort((bounds_array[:, 0] + bounds_array[:, 1]) / 2, kind="stable")
    renumber = np.zeros(int(atom_map.max()) + 1, np.int32)
    renumber[ids[order]] = np.arange(1, len(ids) + 1)
    cuts = {int(renumber[a]) - 1: p for a, p in cut_left.items() if a < len(renumber) and renumber[a] > 1}
    return renumber[atom_map], bounds_array[order], cuts


def words(lattice: Lattice, weights: Weights, loose: bool = False) -> list[tuple[int, int, dict[int, float]]]:
    """The line's words as atom ranges, each with the atoms inside it before which a space may yet be.

    A gap clearly wider than the line's typical gap is a space. With `loose`,
    up to MAX_LOOSE_SPACES narrower gaps in each word that still stand out are
    returned too, each with what a space there costs (`_loose_cost`).
    """
    gaps = lattice.gaps
    typical = max(median(gaps), 0.0) if len(gaps) else 0.0
    threshold = max(weights.space, weights.space_ratio * typical)
    bounds = [0, *(int(k) + 1 for k in np.nonzero(gaps > threshold)[0]), lattice.atoms]
    ranges = list(itertools.pairwise(bounds))
    maybe = max(weights.loose_space, weights.loose_ratio * typical)
    if not loose or maybe >= threshold:
        return [(first, last, {}) for first, last in ranges]
    upper = max(percentile(gaps, UPPER_GAPS), MIN_UPPER_GAP) if len(gaps) else MIN_UPPER_GAP
    found = []
    for first, last in ranges:
        widest = sorted((-gaps[k - 1], k) for k in range(first + 1, last) if gaps[k - 1] > maybe)[:MAX_LOOSE_SPACES]
        found.append((first, last, {k: _loose_cost(-gap, upper, threshold, maybe, weights) for gap, k in widest}))
    return found


def _loose_cost(gap: float, upper: float, threshold: float, maybe: float, weights: Weights) -> float:
    """What a space costs at a gap between `maybe` and the clear rule's `threshold` (letter heights): all of
    `loose_cost` at `maybe`, falling to nothing at `threshold`, and scaled down as the gap grows from once to
    `loose_sure` times `upper`, the upper quartile of the line's gaps (letters' gaps vary, a word gap stands out)."""
    narrow = (threshold - gap) / (threshold - maybe)
    plain = min(1.0, max(0.0, (weights.loose_sure - gap / upper) / (weights.loose_sure - 1.0)))
    return weights.loose_cost * narrow * plain


def _piece(
    ink: np.ndarray, atom_map: np.ndarray, bounds: np.ndarray, gaps: np.ndarray, s: int, e: int, height: float
) -> Piece:
    x0, x1 = int(bounds[s:e, 0].min()), int(bounds[s:e, 1].max())
    y0, y1 = int(bounds[s:e, 2].min()), int(bounds[s:e, 3].max())
    window = atom_map[y0:y1, x0:x1]
    # Atoms label ink pixels only, and their bounds are those pixels' boxes: the crop is already cropped to its ink.
    crop = np.where((window > s) & (window <= e), ink[y0:y1, x0:x1], 0.0)
    width = x1 - x0
    return Piece(
        start=s,
        end=e,
        box=(x0, y0, width, y1 - y0),
        crop=crop,
        gap=sum(max(0.0, g) for g in gaps[s : e - 1].tolist()),
        wide=max(0.0, width / height - 1.0),
        dot=max(width, y1 - y0) < DOT_SHARE * height,
    )


class _Hypothesis(NamedTuple):  # a tuple: the search makes tens of thousands of them on a long line
    score: float
    text: str
    chosen: tuple[tuple[int, str], ...]  # (piece index, label)
    context: tuple[int, ...]  # the language model's symbols of the current run of letters
    kind: str  # "", "letter" or "digit": what the last character was
    done: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = ()  # words ended before it at loose spaces
    said: str = ""  # those words' text, each followed by its space


def read(
    lattice: Lattice,
    probabilities: np.ndarray,
    labels: list[str],
    language_model: LanguageModel | None,
    weights: Weights | None = None,
    rejection: np.ndarray | None = None,
) -> list[Reading]:
    """The ALTERNATIVES best readings, best first, with probabilities over the readings found.

    `probabilities[i]` is the model's distribution for `lattice.pieces[i]`;
    only the real classes in `labels` are used. Without a language model
    (context "none", or the digits model) the letters/digits prior is off too.
    """
    if weights is None:
        weights = WEIGHTS if language_model is not None else PLAIN_WEIGHTS
    probabilities = np.asarray(probabilities)[:, : len(labels)]
    logp = np.log(np.clip(probabilities, 1e-9, None))
    top = np.argsort(-logp, axis=1, kind="stable")[:, :LABELS_PER_PIECE]
    shape = np.array([_shape(p, lattice, weights) for p in lattice.pieces])
    if rejection is not None:
        shape += weights.reject * np.log(np.clip(1.0 - np.asarray(rejection, float), 1e-9, None))
    cases = {c for c in labels if c.isalpha() and c.swapcase() in labels}  # letters the model tells apart by case
    by_start: dict[int, list[int]] = {}
    for index, piece in enumerate(lattice.pieces):
        by_start.setdefault(piece.start, []).append(index)
    readings = [Reading("", 0.0)]
    for first, last, loose in words(lattice, weights, loose=language_model is not None):
        found = _search_word(
            first, last, loose, lattice, by_start, logp, top, shape, labels, cases, language_model, weights
        )
        phrases = [(h, [*h.done, (_word(h, lattice, cases, language_model), h.chosen)]) for h in found]
        pairs = sorted(((r, h, p) for r in readings for h, p in phrases), key=lambda t: -(t[0].score + t[1].score))
        readings = [
            Reading(
                text=" ".join(t for t in (r.text, *(text for text, _ in phrase)) if t),
                score=r.score + h.score,
                characters=[*r.characters, *(c for _, chosen in phrase for c in chosen)],
                words=[*r.words, *((text, [i for i, _ in chosen]) for text, chosen in phrase)],
            )
            for r, h, phrase in pairs[:BEAM_WIDTH]
        ]
    if language_model is not None:
        readings = _merged([line_cased(r, lattice, cases) for r in readings])
    best = max(r.score for r in readings)
    total = sum(math.exp(r.score - best) for r in readings)
    for r in readings:
        r.probability = math.exp(r.score - best) / total
    return readings[:ALTERNATIVES]


def _merged(readings: list[Reading]) -> list[Reading]:
    """One reading per text, best first: two that the line's case made the same text are one, with both scores."""
    kept: dict[str, Reading] = {}
    for reading in readings:
        same = kept.get(reading.text)
        if same is None:
            kept[reading.text] = reading
        else:
            same.score = float(np.logaddexp(same.score, reading.score))
    return sorted(kept.values(), key=lambda r: -r.score)


def _word(h: _Hypothesis, lattice: Lattice, cases: set[str], language_model: LanguageModel | None) -> str:
    return cased(h.text, [index for index, _ in h.chosen], lattice, cases, language_model)


def _shape(piece: Piece, lattice: Lattice, weights: Weights) -> float:
    """The segmentation prior of one candidate (a log score, at most 0), its right boundary included."""
    cost = weights.gap * piece.gap + weights.wide * piece.wide + weights.dot * piece.dot
    if piece.end < lattice.atoms:  # the boundary to the next character: a cut, or parting overlapping ink
        cost += weights.overlap * lattice.overlaps[piece.end - 1]
        if piece.end in lattice.cuts:
            cost -= weights.cut * math.log(max(lattice.cuts[piece.end], 1e-6))
    for inside in range(piece.start + 1, piece.end):  # cuts left whole inside this character
        if inside in lattice.cuts:
            cost -= weights.cut * math.log(max(1.0 - lattice.cuts[inside], 1e-6))
    return -cost


def _search_word(
    first: int,
    last: int,
    loose: dict[int, float],
    lattice: Lattice,
    by_start: dict[int, list[int]],
    logp: np.ndarray,
    top: np.ndarray,
    shape: np.ndarray,
    labels: list[str],
    cases: set[str],
    language_model: LanguageModel | None,
    weights: Weights,
) -> list[_Hypothesis]:
    """Beam search over atom boundaries first..last: the best hypotheses for one word, or for several where
    `loose` (atom: cost) allows a space."""
    letters = [ALPHABET.find(label.lower()) if language_model is not None else -1 for label in labels]
    beams: dict[int, dict[str, _Hypothesis]] = {first: {"": _Hypothesis(0.0, "", (), (BOUNDARY,), "")}}
    for node in range(first, last):
        if node not in beams:
            continue
        hypotheses = _best(beams.pop(node).values())
        if node in loose:  # each hypothesis may also end its word here, at a cost
            hypotheses += [_space(h, loose[node], lattice, cases, language_model, weights) for h in hypotheses]
        for index in by_start.get(node, ()):
            piece = lattice.pieces[index]
            if piece.end > last:
                continue
            base = shape[index] + weights.bonus
            options = [(labels[k], base + weights.ocr * float(logp[index, k]), letters[k]) for k in top[index]]
            target = beams.setdefault(piece.end, {})
            for h in hypotheses:
                start = h.context if h.kind == "letter" else (BOUNDARY,)
                after = language_model.next_logprobs(start) if language_model is not None else None
                for label, step, letter in options:
                    context, kind = h.context, h.kind
                    if after is None:
                        pass
                    elif letter >= 0:
                        step += weights.lm * float(after[letter]) - weights.switch * (kind == "digit")
                        context, kind = (*start, letter)[1 - language_model.order :], "letter"
                    else:
                        step -= weights.digit + weights.switch * (kind == "letter")
                        kind = "digit"
                    score, text = h.score + step, h.text + label
                    key = h.said + text  # one hypothesis per text read so far, spaces included: the best
                    known = target.get(key)
                    if known is None or known.score < score:
                        target[key] = _Hypothesis(
                            score, text, (*h.chosen, (index, label)), context, kind, h.done, h.said
                        )
    finals = list(beams.get(last, {}).values())
    if language_model is not None:
        finals = [h._replace(score=h.score + _word_end(h, cases, language_model, weights)) for h in finals]
    return sorted(finals, key=lambda h: -h.score)[:BEAM_WIDTH]


def _best(hypotheses) -> list[_Hypothesis]:
    """The BEAM_WIDTH best hypotheses for each number of loose spaces taken: a space pays its cost at once, and
    the language model's verdict on the word it spared comes only later."""
    kept, counts = [], {}
    for h in sorted(hypotheses, key=lambda h: -h.score):
        taken = counts.get(len(h.done), 0)
        if taken < BEAM_WIDTH:
            counts[len(h.done)] = taken + 1
            kept.append(h)
    return kept


def _space(
    h: _Hypothesis, cost: float, lattice: Lattice, cases: set[str], language_model: LanguageModel, weights: Weights
) -> _Hypothesis:
    """The hypothesis with its word ended by a space: what the word's end adds, less the space's cost."""
    word = (_word(h, lattice, cases, language_model), h.chosen)
    score = h.score + _word_end(h, cases, language_model, weights) - cost
    return _Hypothesis(score, "", (), (BOUNDARY,), "", (*h.done, word), f"{h.said}{word[0]} ")


def _word_end(h: _Hypothesis, cases: set[str], language_model: LanguageModel, weights: Weights) -> float:
    """What a finished word adds to its score in `words` context: its case, and if it ends in a letter, the
    language model's word end and whether it is a common word."""
    score = -weights.case * case_changes(h.text, cases) - weights.capital * starts_upper(h.text, cases)
    if h.kind == "letter":
        score += weights.lm * float(language_model.next_logprobs(h.context)[BOUNDARY])
        zipf = language_model.frequency(h.text.lower())
        if zipf is not None:
            score += weights.lexicon + weights.frequency * (zipf - language_model.lexicon_floor)
    return score


def case_changes(word: str, cases: set[str]) -> int:
    """How often the case changes between the word's letters that the model tells apart by case (e/E, not o/O).

    People write words in lower case, in capitals, or with a capital first
    letter; f/F, n/N, t/T look alike, and the model alone often mixes them.
    """
    told = [(i, c.isupper()) for i, c in enumerate(word) if c in cases]
    return sum(
        upper != next_upper and not (i == 0 and upper)  # a capital first letter, then lower case, is a word too
        for (i, upper), (_, next_upper) in itertools.pairwise(told)
    )


def starts_upper(word: str, cases: set[str]) -> bool:
    """Whether the first of the word's letters told apart by case is a capital."""
    return next((c.isupper() for c in word if c in cases), False)


def written_lower(word: str, indices: list[int], lattice: Lattice, cases: set[str]) -> bool | None:
    """Whether a word is written in lower case (True) or capitals (False); None where its letters leave it open.

    The model tells e from E but not o from O (`cases` holds the letters it
    tells apart). Those letters decide by majority, a capital first letter
    aside (`Forms`). Where none is left to decide (`milk`, `Fox`), the
    letters' heights may: lower case mixes short letters with tall (k, l, a
    dotted i) or long ones (p, y), while capitals share one height, as do
    short letters alone (`mom` or `MOM`: open).
    """
    told = [c for c in word if c in cases]
    deciding = told[1:] if word[:1] in cases and word[0].isupper() else told  # a capital first letter is free
    if deciding:
        return sum(c.islower() for c in deciding) * 2 > len(deciding)
    heights = _heights(word, indices, lattice)
    return True if len(heights) > 1 and min(heights) < SAME_HEIGHT * max(heights) else None


def cased(
    word: str, indices: list[int], lattice: Lattice, cases: set[str], language_model: LanguageModel | None
) -> str:
    """A word's letters whose cases the model merges (EMNIST's C, O, S ...) in the case the word is written in
    (`hello`, not `heLLO`; `Forms`, not `FOrMS`). Codes (no language model) keep the model's labels."""
    if language_model is None or not written_lower(word, indices, lattice, cases):
        return word
    return _lowered(word, cases)


def _heights(word: str, indices: list[int], lattice: Lattice, wanted=str.isalpha) -> list[int]:
    """The heights (working pixels) of the word's characters that are `wanted`, its letters by default."""
    return [lattice.pieces[index].box[3] for index, c in zip(indices, word, strict=True) if wanted(c)]


def _lowered(word: str, cases: set[str]) -> str:
    return "".join(c if c in cases else c.lower() for c in word)


def line_cased(reading: Reading, lattice: Lattice, cases: set[str]) -> Reading:
    """A word whose letters leave its case open takes the line's: in a line in lower case, a word as short as
    the line's short letters (a c e m n o r s u v w x z) is in lower case too (`born mom`, `so I can`), while a
    taller one stays in capitals (`then I went`, `it is OK`), and so does a letter alone (the pronoun I)."""
    verdicts = [written_lower(text, indices, lattice, cases) for text, indices in reading.words]
    decided = [verdict for verdict in verdicts if verdict is not None]
    if None not in verdicts or sum(decided) * 2 <= len(decided):  # nothing open, or the line is not lower case
        return reading
    lower = [(text, indices) for (text, indices), verdict in zip(reading.words, verdicts, strict=True) if verdict]
    short = [h for text, indices in lower for h in _heights(text, indices, lattice, X_HEIGHT.__contains__)]
    if not short:
        return reading
    words = []
    for (text, indices), verdict in zip(reading.words, verdicts, strict=True):
        heights = _heights(text, indices, lattice)
        if verdict is None and len(heights) > 1 and median(heights) < median(short) / SAME_HEIGHT:  # not "I"
            text = _lowered(text, cases)
        words.append((text, indices))
    return replace(reading, text=" ".join(text for text, _ in words if text), words=words)
