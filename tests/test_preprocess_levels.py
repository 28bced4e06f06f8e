"""to_ink on uint8 levels is to_ink on level / 255: the server's fast path never answers differently.

The server hands to_ink the decoder's (or stroke renderer's) uint8 levels;
training and the evaluations hand it floats. Both must give the same ink,
bit for bit, on every kind of picture: dark ink on light paper and light on
dark, photos (which take the lighting path), faint or empty pictures,
specks, and arbitrary levels.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw

from recognizer.decode import decode_image
from recognizer.preprocess import LEVEL_VALUES, to_ink
from recognizer.strokes import parse_strokes, render_strokes


def same_ink(levels: np.ndarray) -> None:
    fast, reference = to_ink(levels), to_ink(levels.astype(np.float32) / 255.0)
    assert fast.dtype == reference.dtype == np.float32
    assert np.array_equal(fast.view(np.uint32), reference.view(np.uint32))  # every bit, signed zeros too


def drawing(paper: int, ink: int, width: int = 18, size: int = 280) -> np.ndarray:
    image = Image.new("L", (size, size), paper)
    ImageDraw.Draw(image).line([(60, 60), (215, 60), (125, 235)], fill=ink, width=width, joint="curve")
    return np.asarray(image)


def photo(seed: int) -> np.ndarray:
    """A grey, unevenly lit photo of a stroke, through JPEG: most pixels are far from clean black or white."""
    rng = np.random.default_rng(seed)
    ink = drawing(0, 255).astype(np.float32) / 255
    light = np.linspace(0.65, 0.9, 280, dtype=np.float32)[None, :] + rng.normal(0, 0.02, (280, 280))
    pixels = np.clip(light * (1 - 0.6 * ink) * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
    return decode_image(buffer.getvalue())[0]


PICTURES = {
    "dark on white": drawing(255, 0),
    "white on black": drawing(0, 255),
    "grey on grey": drawing(150, 90),
    "faint": drawing(255, 235),
    "thin": drawing(255, 0, width=1),
    "empty white": np.full((100, 80), 255, np.uint8),
    "empty black": np.zeros((100, 80), np.uint8),
    "one speck": np.pad(np.full((2, 2), 255, np.uint8), 100),
}


@pytest.mark.parametrize("name", list(PICTURES))
def test_levels_give_the_float_answer(name):
    same_ink(PICTURES[name])


@pytest.mark.parametrize("seed", range(3))
def test_photos_give_the_float_answer(seed):
    levels = np.round(photo(seed) * 255).astype(np.uint8)
    assert np.array_equal(LEVEL_VALUES[levels], photo(seed))  # the decoder's floats are the table's
    same_ink(levels)
    assert to_ink(levels).any()


def test_strokes_give_the_float_answer():
    gray, _, _ = render_strokes(parse_strokes([[[0, 0], [40, 80], [90, 10]], [[10, 50], [80, 50]]], None, None), False)
    same_ink(np.round(gray * 255).astype(np.uint8))


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_any_levels_give_the_float_answer(levels):
    same_ink(levels)
