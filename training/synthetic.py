"""Turn real test-set images into what people send: canvas PNGs, phone photos, lines of text.

Used by the fidelity tests, the text evaluation and the benchmarks, never by
training itself. Every generator is seeded, so a failure can be reproduced
image by image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

FRAME = 280


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _glyph(image28: np.ndarray) -> Image.Image:
    """The 28x28 test image cropped to its ink (white on black, 'L')."""
    rows, cols = np.nonzero(image28.any(axis=1))[0], np.nonzero(image28.any(axis=0))[0]
    return Image.fromarray(image28[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def canvas_png(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on white, upscaled to a random size at a random place in a 280x280 frame."""
    side = int(rng.integers(140, FRAME + 1))
    big = Image.fromarray(image28).resize((side, side), Image.Resampling.BICUBIC)
    frame = Image.new("L", (FRAME, FRAME), 0)
    frame.paste(big, (int(rng.integers(0, FRAME - side + 1)), int(rng.integers(0, FRAME - side + 1))))
    return _encode(Image.fromarray(255 - np.asarray(frame)), "PNG")


def photo_jpeg(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """Ink on paper under uneven light: gradient and shading, grain, slight rotation, JPEG."""
    side = int(rng.integers(160, FRAME + 1))
    big = Image.fromarray(image28).resize((side, side), Image.Resampling.BICUBIC)
    big = big.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR)
    frame = Image.new("L", (FRAME, FRAME), 0)
    frame.paste(big, (int(rng.integers(0, FRAME - side + 1)), int(rng.integers(0, FRAME - side + 1))))
    ink = np.asarray(frame, np.float32) / 255.0
    yy, xx = np.mgrid[0:FRAME, 0:FRAME] / FRAME
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.78 + 0.15 * ((np.cos(angle) * xx + np.sin(angle) * yy) - 0.5)
    shade = np.asarray(
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).resize((FRAME, FRAME), Image.Resampling.BICUBIC),
        np.float32,
    )
    paper = light - 0.08 * shade / 255.0
    darkness = rng.uniform(0.55, 0.8)
    photo = paper * (1 - darkness * ink) + rng.normal(0, 0.025, (FRAME, FRAME))
    rgb = np.clip(np.stack([photo * 1.0, photo * 0.97, photo * 0.9], axis=-1) * 255, 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(0.6))
    return _encode(image, "JPEG", quality=int(rng.integers(60, 90)))


def text_line(images28: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """Characters side by side, dark on white, each with its own size, gap and baseline jitter."""
    height = int(rng.integers(40, 64))
    glyphs = []
    for image in images28:
        glyph = _glyph(image)
        size = height * rng.uniform(0.8, 1.15)
        scale = size / max(glyph.size)
        glyphs.append(glyph.resize((max(2, round(glyph.width * scale)), max(2, round(glyph.height * scale)))))
    gaps = [int(rng.integers(round(0.15 * height), round(0.6 * height))) for _ in glyphs]
    margin = height // 2
    width = sum(g.width for g in glyphs) + sum(gaps[:-1]) + 2 * margin
    line = Image.new("L", (width, round(1.3 * height) + 2 * margin), 0)
    x = margin
    for glyph, gap in zip(glyphs, gaps, strict=True):
        y = margin + (round(1.15 * height) - glyph.height) // 2 + int(rng.integers(-height // 10, height // 10 + 1))
        line.paste(glyph, (x, y))
        x += glyph.width + gap
    return _encode(Image.fromarray(255 - np.asarray(line)), "PNG")
