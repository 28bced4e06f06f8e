"""Make a drawing or a photo look like the data the models were trained on.

Pure functions, arrays in and arrays out. Images are float32 in [0, 1]. The
steps (docs/ARCHITECTURE.md, the `ink` stage): polarity -> (photos) even
lighting, Otsu threshold, drop specks -> crop -> the model's profile (`mnist`
or `emnist`) -> 28x28.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageFilter

from .segment import find_runs, median

CLEAN_BACKGROUND_SHARE = 0.5  # a drawing: at least half the pixels are plain background
# Ink must stand this far above the paper (the mean levels above and below Otsu's threshold), or nothing was
# drawn. Photos of blank paper (grain up to 14 levels, uneven light, vignette, JPEG) measure at most 0.077; t10k
# digits 25 % darker than their paper are read 52 times in 60 at 0.09, 8 at 0.15 (training/runs/README.md).
MIN_CONTRAST = 0.09
SPECK_SHARE = 0.01  # pieces smaller than this share of the largest piece are dirt
# Ink spanning less than this share of the image's (or canvas's) long side, or these few pixels, is a
# speck or a tap, not writing: scaled up to a character's size it would read as a confident 0.
MIN_INK_SHARE = 0.02
MIN_INK_PIXELS = 3
BACKGROUND_SIZE = 64  # the lighting is estimated on this coarse grid
EDGE_CONTACT = 0.5  # a photo's piece of ink touching its edge along this share of its box's w + h lies along it
EDGE_MARGIN = 0.01  # ... and so do the pieces within this share of the picture's long side of it
THIN_STROKE = 0.05  # strokes thinner than this share of a digit's long side are thickened (mnist_profile) ...
STROKE = 0.12  # ... to about this share, a typical MNIST digit's
FRAMING_CACHE = 64  # square sides whose EMNIST framing matrix is kept: 28 x side float32 each, at most ~17 MB


# What a grey level means: level / 255 in float32, the value the decoder and the stroke renderer give
# (np.asarray(image, np.float32) / 255.0); and, indexed by the turned-over level 255 - level, the value the
# float path gives after turning dark ink bright (1.0 - gray). Both rise with the level.
LEVEL_VALUES = np.arange(256, dtype=np.float32) / 255.0
TURNED_VALUES = (1.0 - LEVEL_VALUES)[::-1].copy()


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Grayscale of either polarity -> ink bright on black, paper, shading and specks removed.

    `gray` is float in [0, 1], or uint8 levels standing for level / 255: for
    those the answer is exactly to_ink(LEVEL_VALUES[gray]), worked out on the
    levels (a quarter of the memory, each float computed once per level).
    An all-zero answer means nothing was drawn, or only a speck. The
    threshold needs every pixel; the rest (specks, rim, scaling) runs on the
    ink's bounding box plus the one-pixel rim, the only pixels it can change.
    """
    if gray.dtype == np.uint8:
        return _levels_to_ink(gray)
    if _light_paper(level_histogram(np.round(gray * 255).astype(np.uint8))):  # the ink is dark
        gray = 1.0 - gray
    return _bright_ink(gray)


def _light_paper(histogram: np.ndarray) -> bool:
    """Whether the paper is light: the picture's median level (paper: most of any picture) lies nearer its
    brightest level than its darkest, the ink's.

    Not the picture's border: in a photo that is often the table or a shadow
    around the sheet. Not the larger side of Otsu's threshold either: on a
    shaded sheet that threshold can part the shade from the light.
    """
    levels = np.flatnonzero(histogram)
    median = int(np.searchsorted(np.cumsum(histogram), (histogram.sum() + 1) // 2))
    return median - levels[0] > levels[-1] - median


def _bright_ink(gray: np.ndarray) -> np.ndarray:
    """to_ink of a float image whose ink is the bright side."""
    photo = np.count_nonzero(gray < 0.04) < CLEAN_BACKGROUND_SHARE * gray.size
    if photo:  # a photo or scan: even out the light
        gray = np.clip(gray - estimate_background(gray), 0.0, 1.0)
    levels = np.round(gray * 255).astype(np.uint8)
    histogram = level_histogram(levels)
    level = otsu_threshold(histogram)
    mask = gray > (level + 0.5) / 255
    if photo:
        edges = _along_the_edges(mask)
        if edges is not None:  # neither ink nor paper: left out of the histogram too
            mask &= ~edges
            histogram = histogram - np.bincount(levels[edges], minlength=256)
    strokes = _strokes(mask, histogram, level)
    if strokes is None:
        return np.zeros_like(gray)
    window, mask, strong = strokes
    ink = np.zeros(gray.shape, np.float32)
    ink[window] = np.clip(np.where(mask, gray[window], 0.0) / strong, 0.0, 1.0)
    return ink


def _levels_to_ink(gray: np.ndarray) -> np.ndarray:
    """to_ink of uint8 levels: the float path's steps, with each value it would compute looked up by level.

    A photo (too little clean background) takes the float path itself.
    """
    levels, values, counts = gray, LEVEL_VALUES, level_histogram(gray)
    if _light_paper(counts):
        levels, values, counts = 255 - levels, TURNED_VALUES, counts[::-1]
    if counts[: np.count_nonzero(values < 0.04)].sum() < CLEAN_BACKGROUND_SHARE * levels.size:
        return to_ink(gray.astype(np.float32) / 255.0)  # a photo or scan: its lighting is evened out in float
    rounded = np.round(values * 255).astype(np.uint8)  # the level the float path counts each value at
    histogram = np.bincount(rounded, weights=counts, minlength=256).astype(np.intp)
    level = otsu_threshold(histogram)
    above = values > (level + 0.5) / 255  # rising values: True from some level up (or nowhere)
    mask = levels >= int(np.argmax(above)) if above.any() else np.zeros(levels.shape, bool)
    strokes = _strokes(mask, histogram, level)
    if strokes is None:
        return np.zeros(levels.shape, np.float32)
    window, mask, strong = strokes
    scaled = np.clip(values / strong, 0.0, 1.0).astype(np.float32)  # each level's value / strong, as the float path
    ink = np.zeros(levels.shape, np.float32)
    ink[window] = scaled.take((levels[window] * mask).astype(np.intp))  # level 0 (off the mask) scales to 0.0
    return ink


def _strokes(
    mask: np.ndarray, histogram: np.ndarray, level: int
) -> tuple[tuple[slice, slice], np.ndarray, float] | None:
    """(window, the strokes' mask in it, the value that counts as full ink) from the pixels above `level`.

    None when nothing was drawn: no ink above the threshold, too little
    contrast between ink and paper, or only a speck. The window is the ink's
    box plus its one-pixel rim; in it the mask loses its specks and gains
    each stroke's anti-aliased rim.
    """
    paper, ink_levels = histogram[: level + 1], histogram[level + 1 :]
    if not ink_levels.sum() or _mean_level(ink_levels, level + 1) - _mean_level(paper, 0) < MIN_CONTRAST * 255:
        return None
    if not mask.any():
        return None
    box = ink_box(mask)
    window = _around(box, 1, mask.shape)
    size = max(mask.shape)
    found = mask[window]
    kept = drop_specks(found)
    extent = max(box[2:]) if kept is found else max(crop_to_ink(kept).shape)  # nothing dropped: the box is the ink's
    if extent < max(MIN_INK_PIXELS, MIN_INK_SHARE * size):
        return None
    mask = dilate(kept)  # keep each stroke's anti-aliased rim
    strong = (level + 1 + np.searchsorted(np.cumsum(ink_levels), 0.9 * ink_levels.sum())) / 255
    return window, mask, strong


def _around(box: tuple[int, int, int, int], margin: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The box (x, y, width, height) grown by `margin` pixels on every side, within the image, as slices."""
    x, y, width, height = box
    return (
        slice(max(y - margin, 0), min(y + height + margin, shape[0])),
        slice(max(x - margin, 0), min(x + width + margin, shape[1])),
    )


def _mean_level(histogram: np.ndarray, first: int) -> float:
    return float((histogram * np.arange(first, first + len(histogram))).sum() / max(histogram.sum(), 1))


def estimate_background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness under uneven light: a quadratic surface fitted to the paper alone.

    Fitted on a coarse grid to the pixels Otsu calls paper, twice (the second
    time after the first fit has evened out the light), so however thick the
    ink is, it never becomes part of the background.
    """
    image = Image.fromarray((gray * 255).astype(np.uint8))
    image.thumbnail((BACKGROUND_SIZE, BACKGROUND_SIZE), Image.Resampling.BOX)
    small = np.asarray(image, np.float32) / 255.0
    terms = _quadratic_terms(*small.shape)
    surface = np.full(small.shape, median(small), np.float32)
    for _ in range(2):
        flat = np.clip(small - surface, 0.0, 1.0)
        level = otsu_threshold(np.bincount(np.round(flat * 255).astype(np.uint8).ravel(), minlength=256))
        paper = (flat <= (level + 0.5) / 255).ravel()
        coefficients, *_ = np.linalg.lstsq(terms[paper], small.ravel()[paper], rcond=None)
        surface = (terms @ coefficients).reshape(small.shape).astype(np.float32)
    c0, cx, cy, cxx, cxy, cyy = coefficients
    y = ((np.arange(gray.shape[0], dtype=np.float32) + 0.5) / gray.shape[0])[:, None]
    x = ((np.arange(gray.shape[1], dtype=np.float32) + 0.5) / gray.shape[1])[None, :]
    surface = c0 + cx * x + cy * y  # the full-size sum is added to in place: the same sums, fewer copies
    surface += cxx * x * x
    surface += cxy * x * y
    surface += cyy * y * y
    return surface.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=64)
def _quadratic_terms(height: int, width: int) -> np.ndarray:
    """Columns 1, x, y, x^2, xy, y^2 at each pixel centre, coordinates scaled to [0, 1] (read-only, cached)."""
    y, x = np.mgrid[0:height, 0:width]
    y, x = (y.ravel() + 0.5) / height, (x.ravel() + 0.5) / width
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1).astype(np.float32)
    terms.flags.writeable = False
    return terms


def level_histogram(levels: np.ndarray) -> np.ndarray:
    """How many pixels of uint8 `levels` have each level 0-255 (np.bincount's answer).

    Only the levels between 0 and 255 are counted one by one: most pixels are
    plain black or white background, and counting them one at a time (one
    counter, incremented serially) takes most of bincount's time.
    """
    between = levels[(levels > 0) & (levels < 255)]
    histogram = np.bincount(between, minlength=256)
    histogram[255] = np.count_nonzero(levels == 255)
    histogram[0] = levels.size - between.size - histogram[255]
    return histogram


def _along_the_edges(mask: np.ndarray) -> np.ndarray | None:
    """In a photo's mask, the pieces lying along its edges (the table, a shadow, the sheet's edge), or None.

    A piece that touches the picture's edge along at least EDGE_CONTACT of
    its box's width plus height lies along it: the table around the sheet, a
    corner of it, a shadow. A character cut by a tight crop touches the edge
    for a stroke's width (an L along its foot: about 0.4). Bits of the sheet's
    own edge within EDGE_MARGIN of those pieces go with them. None where there
    is no such piece, or nothing else.
    """
    runs = find_runs(mask)
    if runs.count < 2:
        return None
    height, width = mask.shape
    # Pixels on the picture's edge: a run in its first or last row, and a run's end at its first or last column.
    on_edge = np.where(
        (runs.rows == 0) | (runs.rows == height - 1), runs.ends - runs.starts, (runs.starts == 0) + (runs.ends == width)
    )
    contact = np.bincount(runs.component, weights=on_edge, minlength=runs.count)
    y0, x0, y1, x1 = runs.bounds()
    along = contact >= EDGE_CONTACT * ((x1 - x0) + (y1 - y0))
    if not along.any() or along.all():
        return None
    near = runs.paint(mask.shape, along)
    for _ in range(max(1, round(EDGE_MARGIN * max(mask.shape)))):
        near = dilate(near)
    along[np.unique(runs.labels(mask.shape)[near & mask]) - 1] = True
    if along.all():
        return None
    return runs.paint(mask.shape, along)


def otsu_threshold(histogram: np.ndarray) -> int:
    """The level (0-255) that best separates the two brightness classes (Otsu); ink is above it."""
    weight = np.cumsum(histogram).astype(np.float64)
    total = weight[-1]
    mean = np.cumsum(histogram * np.arange(len(histogram)))
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-12)
    return int(np.argmax(between[:-1]))


def drop_specks(mask: np.ndarray) -> np.ndarray:
    """The mask without pieces much smaller than the largest; the mask itself when there are none."""
    runs = find_runs(mask)
    if not runs.count:
        return mask
    areas = runs.areas()
    keep = areas >= SPECK_SHARE * areas.max()
    return mask if keep.all() else runs.paint(mask.shape, keep)


def dilate(image: np.ndarray) -> np.ndarray:
    """Grow a mask, or a grey image's bright parts, by one pixel in all eight directions (each pixel becomes
    the brightest of itself and its neighbours; for a mask, np.maximum is an or)."""
    grown = image.copy()
    np.maximum(grown[1:], image[:-1], out=grown[1:])
    np.maximum(grown[:-1], image[1:], out=grown[:-1])
    wide = grown.copy()
    np.maximum(wide[:, 1:], grown[:, :-1], out=wide[:, 1:])
    np.maximum(wide[:, :-1], grown[:, 1:], out=wide[:, :-1])
    return wide


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the smallest box around the ink; the mask must hold some ink."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink[rows[0] : rows[-1] + 1].any(axis=0))  # only the rows with ink
    return int(cols[0]), int(rows[0]), int(cols[-1] + 1 - cols[0]), int(rows[-1] + 1 - rows[0])


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    x, y, width, height = ink_box(ink)
    return ink[y : y + height, x : x + width]


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-averaging resize of a float image (anti-aliased when shrinking)."""
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize((width, height), Image.Resampling.BOX))


def mnist_profile(crop: np.ndarray) -> np.ndarray:
    """MNIST: fit in 20x20 keeping the aspect ratio, centre of mass at the centre of 28x28 (a thin pen's
    strokes first thickened to MNIST's)."""
    crop = thickened(crop)
    height, width = crop.shape
    scale = 20.0 / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    small = resize(crop, w, h)
    total = small.sum()
    if total <= 0:
        return np.zeros((28, 28), np.float32)
    cy = (small.sum(axis=1) * np.arange(h)).sum() / total
    cx = (small.sum(axis=0) * np.arange(w)).sum() / total
    top = min(max(round(13.5 - cy), 0), 28 - h)  # integers: no np.clip (an array call) needed
    left = min(max(round(13.5 - cx), 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top : top + h, left : left + w] = small
    return out / out.max()


def thickened(crop: np.ndarray) -> np.ndarray:
    """A character whose strokes are thinner than THIN_STROKE of its long side, grown to about STROKE.

    MNIST's strokes are 0.10-0.22 of a digit's long side (t10k, 0.1th to 95th
    percentile); a ballpoint's line in a photo is a few hundredths, and framed to
    20 px it is a faint 1 px trace the digits model misreads (a 6 as a 5). Pen
    strokes never need this: they are drawn at a width fitted to their size.
    """
    mask = crop > 0.5
    side = max(crop.shape)
    width = stroke_width(mask)
    if width == 0 or width >= THIN_STROKE * side:
        return crop
    grow = round((STROKE * side - width) / 2)
    grown = np.pad(crop, grow)
    for _ in range(grow):
        grown = dilate(grown)
    return grown


def stroke_width(mask: np.ndarray) -> float:
    """A stroke's typical width in pixels: twice the ink's area over its boundary pixels (a line w px wide
    and L long has w L pixels and 2 L on its edges); 0 for no ink."""
    middle = mask[1:-1, 1:-1]
    inner = middle & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]  # ink all four sides
    area = np.count_nonzero(mask)
    edge = area - np.count_nonzero(inner)
    return 2 * area / edge if edge else 0.0


def emnist_profile(crop: np.ndarray) -> np.ndarray:
    """EMNIST: blur, centre in a square keeping the aspect ratio, pad 2 px (of 28), resize to 28x28.

    EMNIST's framing is Pillow's GaussianBlur (sigma: the square's side / 56)
    then its antialiased bicubic resize. Both are linear, so a square larger
    than 28 px gets them as one 28 x side matrix on each side of the crop
    (`_framing_matrix`): within two grey levels of Pillow's own output
    (tests/test_emnist_framing.py), in a tenth of its time for a 100-pixel
    letter, which text mode pays for every candidate character. A smaller
    square (a dot, a fragment) is enlarged, where Pillow clips the bicubic
    overshoot between its passes; it goes through Pillow, which costs nothing
    at that size.
    """
    height, width = crop.shape
    side = max(height, width)
    pad = max(1, round(side * 2 / 24))
    size = side + 2 * pad
    top, left = pad + (side - height) // 2, pad + (side - width) // 2
    levels = np.round(crop.astype(np.float32, copy=False) * 255)  # the square's levels; its padding's are 0
    if size <= 28:
        square = np.zeros((size, size), np.uint8)
        square[top : top + height, left : left + width] = levels
        blurred = Image.fromarray(square).filter(ImageFilter.GaussianBlur(size / 56))
        out = np.asarray(blurred.resize((28, 28), Image.Resampling.BICUBIC), np.float32)
    else:
        matrix = _framing_matrix(size)
        out = matrix[:, top : top + height] @ levels @ matrix[:, left : left + width].T
        out = np.clip(np.round(out), 0, 255).astype(np.float32)  # Pillow's answer is 8-bit
    return out / max(float(out.max()), 1e-6)


@functools.lru_cache(maxsize=FRAMING_CACHE)
def _framing_matrix(side: int) -> np.ndarray:
    """Pillow's GaussianBlur then bicubic resize of a square of `side` pixels to 28, as a 28 x side matrix.

    The blur is Pillow's three box blurs of a fractional radius (BoxBlur.c),
    the resize its antialiased bicubic weights (Resample.c). Pillow repeats
    edge pixels where the blur reaches past the square; the square's border
    is padding, so those terms are zero and are left out.
    """
    scale = side / 28
    stretch = max(scale, 1.0)
    centres = (np.arange(28) + 0.5) * scale
    first = np.maximum((centres - 2 * stretch + 0.5).astype(int), 0)
    end = np.minimum((centres + 2 * stretch + 0.5).astype(int), side)
    span = int((end - first).max())
    columns = first[:, None] + np.arange(span)
    weights = np.where(columns < end[:, None], _bicubic((columns - centres[:, None] + 0.5) / stretch), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    kernel = _blur_kernel(side / 56)
    reach = len(kernel) // 2
    offsets = np.arange(span + len(kernel) - 1)[None, :] - np.arange(span)[:, None]
    spread = np.where((offsets >= 0) & (offsets < len(kernel)), kernel[np.clip(offsets, 0, len(kernel) - 1)], 0.0)
    blurred = weights @ spread  # each row's resize weights, blurred: (28, span + len(kernel) - 1)
    at = first[:, None] - reach + np.arange(blurred.shape[1])
    inside = (at >= 0) & (at < side)
    matrix = np.zeros((28, side), np.float32)
    matrix[np.nonzero(inside)[0], at[inside]] = blurred[inside]
    return matrix


def _bicubic(x: np.ndarray) -> np.ndarray:
    """Pillow's bicubic filter (a = -0.5)."""
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * -0.5
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _blur_kernel(sigma: float, passes: int = 3) -> np.ndarray:
    """Pillow's GaussianBlur as one kernel: `passes` box blurs whose radius has a fractional edge weight."""
    variance = sigma * sigma / passes
    length = math.sqrt(12 * variance + 1)
    whole = math.floor((length - 1) / 2)
    radius = whole + (2 * whole + 1) * (whole * (whole + 1) - 3 * variance) / (6 * (variance - (whole + 1) ** 2))
    inner = 1 / (2 * radius + 1)
    edge = (1 - (2 * int(radius) + 1) * inner) / 2
    box = np.array([edge, *[inner] * (2 * int(radius) + 1), edge])
    kernel = np.ones(1)
    for _ in range(passes):
        kernel = np.convolve(kernel, box)
    return kernel


PROFILES = {"mnist": mnist_profile, "emnist": emnist_profile}
