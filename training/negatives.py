"""Drawings that are no character, for the models' "none of these" class and its tests.

A model trained only on digits calls every scribble a digit. The reject class
learns from marks that are no answer: scribbles, filled blobs, scattered
fragments of strokes and (for digits only) hatched, crossed-out marks, each
drawn on a canvas and passed through the function's own preprocessing, so
they reach the net framed as a drawing would. For digits, EMNIST letters
that resemble no digit are negatives too (`DIGIT_NEGATIVE_LETTERS`), and so
are two digits framed as one (`digit_pairs`): text mode's search asks the
model about unions of neighbouring pieces, and two touching digits read as
one confident digit left it no reason to split them.

Pure numpy and PIL, no TensorFlow: the tests draw their own set with another
seed. Everything is deterministic from the seed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from recognizer.preprocess import PROFILES, crop_to_ink, to_ink

if TYPE_CHECKING:
    from training.tasks import Task

# Letters (EMNIST ByMerge classes; the merged ones hold both cases) that resemble no digit.
# Left out as look-alikes: O D Q (0), I J L T (1, 7), Z (2), S (5), B (8), G b (6), Y (a y is
# an open 4 or 9), a g q (9).
DIGIT_NEGATIVE_LETTERS = tuple("ACEFHKMNPRUVWXdefhnrt")
# Kinds of synthetic mark. No task gets crossed-out marks except digits: hatching and an X over a
# shape can read as a character (X, #-like H).
SYNTHETIC_KINDS = {
    "digits": ("scribble", "blob", "fragments", "crossed_out"),
    "characters": ("scribble", "blob", "fragments"),
}
CANVAS = 160  # drawn at about a canvas drawing's size, then preprocessed to 28x28
# Gaps between the two digits of a pair, in shares of the digit height: overlapping, touching and a little apart
# (text_eval's touching lines are -0.05 to 0.12).
PAIR_GAPS = (-0.15, 0.2)


def _pen(rng: np.random.Generator) -> int:
    return int(rng.integers(CANVAS // 22, CANVAS // 9))


def _smooth_path(points: np.ndarray, steps: int = 12) -> list[tuple[float, float]]:
    """Catmull-Rom curve through the points: a hand's stroke, not a polygon."""
    p = np.concatenate([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        for t in np.linspace(0, 1, steps, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(
                tuple(
                    0.5
                    * (
                        2 * p[i]
                        + (-p[i - 1] + p[i + 1]) * t
                        + (2 * p[i - 1] - 5 * p[i] + 4 * p[i + 1] - p[i + 2]) * t2
                        + (-p[i - 1] + 3 * p[i] - 3 * p[i + 1] + p[i + 2]) * t3
                    )
                )
            )
    out.append(tuple(p[-2]))
    return out


def _stroke(draw: ImageDraw.ImageDraw, path: list[tuple[float, float]], width: int) -> None:
    draw.line(path, fill=255, width=width, joint="curve")
    r = width / 2
    for x, y in (path[0], path[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A tangled curve through 9-15 random points (loops and sharp turns; too many to be a character)."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    n = int(rng.integers(9, 16))
    points = rng.uniform(0.15, 0.85, (n, 2)) * CANVAS
    _stroke(ImageDraw.Draw(image), _smooth_path(points), _pen(rng))
    return np.asarray(image, np.float32) / 255.0


def blob(rng: np.random.Generator) -> np.ndarray:
    """One to three overlapping filled shapes: an ink blot, a smudge, a coloured-in area."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(0.3, 0.7, 2) * CANVAS
        radii = rng.uniform(0.08, 0.3, 2) * CANVAS
        if rng.random() < 0.5:
            draw.ellipse((*(centre - radii), *(centre + radii)), fill=255)
        else:  # an irregular polygon around the centre
            k = int(rng.integers(5, 10))
            angles = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = rng.uniform(0.5, 1.0, k)[:, None] * radii
            corners = centre + r * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            draw.polygon([tuple(c) for c in corners], fill=255)
    return np.asarray(image, np.float32) / 255.0


def fragments(rng: np.random.Generator) -> np.ndarray:
    """Three to six short, separate stroke pieces and dots scattered over the canvas."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    width = _pen(rng)
    for _ in range(int(rng.integers(3, 7))):
        start = rng.uniform(0.1, 0.9, 2) * CANVAS
        if rng.random() < 0.3:  # a dot
            r = width * rng.uniform(0.6, 1.2)
            draw.ellipse((start[0] - r, start[1] - r, start[0] + r, start[1] + r), fill=255)
            continue
        bend = rng.normal(0, 0.08, (2, 2)) * CANVAS
        direction = rng.normal(0, 1, 2)
        length = rng.uniform(0.08, 0.22) * CANVAS
        end = start + direction / np.linalg.norm(direction) * length
        points = np.stack([start, (start + end) / 2 + bend[0] * 0.5, end])
        _stroke(draw, _smooth_path(points, 6), width)
    return np.asarray(image, np.float32) / 255.0


def crossed_out(rng: np.random.Generator) -> np.ndarray:
    """Back-and-forth hatching over an area, sometimes with a cross over it: a crossed-out mark."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    width = _pen(rng)
    angle = rng.uniform(0, np.pi)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    centre = np.full(2, CANVAS / 2) + rng.normal(0, 0.04, 2) * CANVAS
    half = rng.uniform(0.2, 0.35) * CANVAS
    passes = int(rng.integers(4, 10))
    offsets = np.linspace(-half, half, passes) + rng.normal(0, 0.02 * CANVAS, passes)
    path = []
    for i, offset in enumerate(offsets):
        reach = half * rng.uniform(0.7, 1.0) * (1 if i % 2 == 0 else -1)
        path += [tuple(centre + across * offset - along * reach), tuple(centre + across * offset + along * reach)]
    draw.line(path, fill=255, width=width, joint="curve")
    if rng.random() < 0.4:
        for sign in (1, -1):
            a = centre + (along + sign * across) * half
            b = centre - (along + sign * across) * half
            _stroke(draw, [tuple(a), tuple(b)], width)
    return np.asarray(image, np.float32) / 255.0


DRAWERS = {"scribble": scribble, "blob": blob, "fragments": fragments, "crossed_out": crossed_out}


def view(drawing: np.ndarray, profile: str) -> np.ndarray | None:
    """A float drawing (ink bright) as the function hands it to the model: 28x28 in [0, 1], or None if refused."""
    ink = to_ink(drawing)
    if not ink.any():
        return None
    return PROFILES[profile](crop_to_ink(ink))


def canvas_png(drawing: np.ndarray) -> bytes:
    """A float drawing (ink bright) as the site's canvas sends it: dark ink on white, PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(255 - drawing * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def drawings(n: int, seed: int, kinds: tuple[str, ...]) -> tuple[list[np.ndarray], list[str]]:
    """n canvas drawings (float, ink bright on black) cycling through `kinds`, and the kind of each."""
    rng = np.random.default_rng(seed)
    names = [kinds[i % len(kinds)] for i in range(n)]
    return [DRAWERS[name](rng) for name in names], names


def synthetic(n: int, seed: int, kinds: tuple[str, ...], profile: str) -> np.ndarray:
    """(n, 28, 28) uint8 synthetic negatives, as the function's preprocessing frames them for `profile`."""
    out = np.zeros((n, 28, 28), np.uint8)
    rng = np.random.default_rng(seed)
    filled = 0
    while filled < n:
        kind = kinds[filled % len(kinds)]
        image = view(DRAWERS[kind](rng), profile)
        if image is not None:  # the function would answer "nothing drawn"; draw another
            out[filled] = np.round(image * 255).astype(np.uint8)
            filled += 1
    return out


def letters(labels: np.ndarray, names: list[str], allowed: tuple[str, ...]) -> np.ndarray:
    """The indices of the images whose label (an index into `names`) is one of the `allowed` characters."""
    wanted = np.array([name in allowed for name in names])
    return np.nonzero(wanted[labels])[0]


def digit_pairs(images: np.ndarray, count: int, seed: int, profile: str) -> np.ndarray:
    """(count, 28, 28) uint8: two of `images` side by side (PAIR_GAPS), read as one piece the way text mode reads
    a union of pieces: a line's PNG, decoded, to ink, cropped and framed by the function's preprocessing."""
    from recognizer.decode import decode_levels
    from training.text_eval import compose

    rng = np.random.default_rng(seed)
    out = np.zeros((count, 28, 28), np.uint8)
    for k in range(count):
        first, second = images[rng.choice(len(images), 2)]
        png, _ = compose([first, second], [float(rng.uniform(*PAIR_GAPS)), 0.0], rng)
        image = view(decode_levels(png)[0], profile)
        out[k] = np.round(image * 255).astype(np.uint8)
    return out


def training_negatives(task: Task, data_dir: Path, seed: int, share: float = 1.0) -> np.ndarray:
    """The negatives for training `task` (its `negatives` and `pair_negatives`), uint8 (n, 28, 28), framed by
    the task's preprocessing; a smoke run on a `share` of the training images gets that share of them.

    Digits: `negative_letter_share` of the `negatives` EMNIST letters from the training files
    (ByClass/ByMerge test, never the held-out set) that resemble no digit, reframed the MNIST way
    through the function's preprocessing; the rest synthetic; then the pairs, made of the MNIST
    training images the net is fitted on (never the validation slice). Characters: synthetic only
    (every letter is a class).
    """
    from training.data import CHARACTER_LABELS, load_characters_train, load_mnist, split
    from training.served import served

    count, pairs = task.negatives, task.pair_negatives
    if share != 1.0:
        count, pairs = max(50, round(count * share)), round(pairs * share)
    profile = task.profile
    n_letters = round(count * task.negative_letter_share)
    parts = [synthetic(count - n_letters, seed, SYNTHETIC_KINDS[task.name], profile)]
    if n_letters:
        train = load_characters_train(data_dir)
        pool = letters(train.labels, CHARACTER_LABELS, DIGIT_NEGATIVE_LETTERS)
        rng = np.random.default_rng(seed + 1)
        chosen = _chosen_letters(pool, n_letters, rng)
        framed = [served(train.images[i], profile, rng) for i in chosen]
        parts.append(np.round(np.stack(framed) * 255).astype(np.uint8))
    if pairs:
        digits = load_mnist(data_dir, "train").images
        parts.append(digit_pairs(digits[split(len(digits))[1]], pairs, seed + 3, profile))
    return np.concatenate(parts)


def _chosen_letters(pool: np.ndarray, n_letters: int, rng: np.random.Generator) -> np.ndarray:
    """The letters `training_negatives` takes from the pool (the first draw of its generator)."""
    return rng.choice(pool, n_letters, replace=False)


def unused_letters(count: int, letter_share: float, seed: int, labels: np.ndarray) -> np.ndarray:
    """Indices of the training files' letters resembling no digit that `training_negatives` did not take.

    No net ever saw them, so they measure the reject class on letters without the held-out set.
    `labels`: `load_characters_train`'s, as `training_negatives` reads them.
    """
    from training.data import CHARACTER_LABELS

    pool = letters(labels, CHARACTER_LABELS, DIGIT_NEGATIVE_LETTERS)
    chosen = _chosen_letters(pool, round(count * letter_share), np.random.default_rng(seed + 1))
    return np.setdiff1d(pool, chosen)
