"""The EMNIST framing as matrices gives what Pillow's blur and resize give, within two grey levels.

preprocess.emnist_profile applies Pillow's GaussianBlur and antialiased
bicubic resize as one matrix on each side of the crop (a tenth of the time).
The reference here is those two Pillow calls, as the function made them
before. Pillow rounds to 8 bits after each of its passes and the matrices do
not, so the two may differ by a level or two before the brightest pixel is
scaled to 1; a thin faint line, whose brightest pixel is dim, shows that
difference larger after scaling, so levels are compared before it. Squares
of 28 px or less (dots, fragments) still go through Pillow: exactly equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from recognizer.preprocess import crop_to_ink, emnist_profile


def pillow_framing(crop: np.ndarray) -> np.ndarray:
    """EMNIST's framing with Pillow itself: 8-bit levels, 28x28, not scaled to the brightest pixel."""
    height, width = crop.shape
    side = max(height, width)
    pad = max(1, round(side * 2 / 24))
    square = np.zeros((side + 2 * pad, side + 2 * pad), np.uint8)
    top, left = pad + (side - height) // 2, pad + (side - width) // 2
    square[top : top + height, left : left + width] = np.round(crop * 255)
    blurred = Image.fromarray(square).filter(ImageFilter.GaussianBlur(square.shape[0] / 56))
    return np.asarray(blurred.resize((28, 28), Image.Resampling.BICUBIC), np.float32)


def scribble(seed: int, largest: int) -> np.ndarray:
    """Pen lines in a random box of 3 to `largest` pixels a side, cropped to their ink like a candidate character."""
    rng = np.random.default_rng(seed)
    width, height = (int(v) for v in rng.integers(3, largest, 2, endpoint=True))
    image = Image.new("L", (width, height))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        points = [tuple(int(v) for v in rng.integers(0, (width, height))) for _ in range(4)]
        draw.line(points, fill=int(rng.integers(100, 256)), width=max(1, min(width, height) // 10), joint="curve")
    ink = np.asarray(image, np.float32) / 255.0
    return crop_to_ink(ink) if ink.any() else np.ones((5, 3), np.float32)


@pytest.mark.parametrize("seed", range(200))
def test_the_matrices_give_pillows_levels(seed):
    crop = scribble(seed, largest=520)
    reference = pillow_framing(crop)
    ours = emnist_profile(crop)
    assert ours.shape == (28, 28) and ours.dtype == np.float32 and ours.max() == 1.0
    difference = np.abs(ours * reference.max() - reference)
    assert difference.max() <= 2.0  # measured over 1,000 seeds: 2.0
    assert difference.mean() <= 0.4  # measured: 0.33


@pytest.mark.parametrize("seed", range(50))
def test_dots_and_fragments_get_pillows_levels_exactly(seed):
    crop = scribble(seed, largest=24)
    reference = pillow_framing(crop)
    assert np.allclose(emnist_profile(crop) * reference.max(), reference, atol=1e-3)


def test_an_empty_crop_frames_as_empty():
    assert not emnist_profile(np.zeros((10, 4), np.float32)).any()
