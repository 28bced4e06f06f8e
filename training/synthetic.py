"""Turn real test-set images into what people send: canvas PNGs, phone photos, lines of text; and words
into the pen strokes a person draws on the site.

Used by the fidelity tests, the benchmarks, and the drawn inputs of calibration
and evaluation; never to train a net. Every generator is seeded, so a failure can be reproduced
image by image.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FRAME = 280
FONT_FILE = "hershey-futural.json"  # Hershey's simplex sans: print letters in single strokes, as a pen draws them
FONT_CAP = 21  # its font units from the cap line to the base line


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
    image = Image.fromarray(_photo_rgb(image28, rng)).filter(ImageFilter.GaussianBlur(0.6))
    return _encode(image, "JPEG", quality=int(rng.integers(60, 90)))


def photo_on_table_jpeg(image28: np.ndarray, rng: np.random.Generator) -> bytes:
    """photo_jpeg's sheet, a little smaller and turned, on a darker table that shows along one to four edges."""
    sheet = Image.fromarray(_photo_rgb(image28, rng))
    side = int(rng.integers(int(0.8 * FRAME), int(0.95 * FRAME) + 1))
    sheet = sheet.resize((side, side), Image.Resampling.BILINEAR)
    angle = float(rng.uniform(-6, 6))
    turned = sheet.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    outline = Image.new("L", sheet.size, 255).rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    shade = rng.uniform(0.25, 0.55) * 255 * np.array([1.0, 0.95, 0.85])
    table = np.clip(np.full((FRAME, FRAME, 3), shade) + rng.normal(0, 6, (FRAME, FRAME, 3)), 0, 255)
    image = Image.fromarray(table.astype(np.uint8))
    spare = FRAME - turned.width  # may be negative: then the sheet runs off the picture on some side
    x, y = (int(rng.integers(min(0, spare) - 10, max(0, spare) + 11)) for _ in range(2))
    image.paste(turned, (x, y), outline)
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    return _encode(image, "JPEG", quality=int(rng.integers(60, 90)))


def _photo_rgb(image28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """photo_jpeg's picture before blur and JPEG: the glyph on unevenly lit paper, 8-bit RGB."""
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
    return np.clip(np.stack([photo * 1.0, photo * 0.97, photo * 0.9], axis=-1) * 255, 0, 255).astype(np.uint8)


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


@functools.cache
def _font_glyphs() -> dict:
    """Each letter's {"left", "width", "strokes"} in the font's units (the file says where it comes from)."""
    return json.loads((Path(__file__).parent / FONT_FILE).read_text())["glyphs"]


def font_strokes(
    text: str, rng: np.random.Generator, height: float = 80.0, canvas: tuple[int, int] = (700, 300)
) -> dict:
    """`text` as the site sends it drawn: pen strokes of Hershey's single-stroke letters, a JSON body for /predict.

    Each letter is a little scaled, turned and moved (5 %, 4 degrees, 2 % of the letter height), its strokes
    carry a hand's tremor (1.5 % of the letter height, smooth) and a point every 3 px, and letters stand
    0.05-0.2 letter heights further apart than the font sets them (words: one letter height further).
    The letter height is `height` px, less where the text would not fit on `canvas`.
    """
    if not text or not all(word.isascii() and word.isalnum() for word in text.split(" ")):
        raise ValueError(
            f"{text!r}: only words of the letters a-z, A-Z and the digits 0-9, one space apart, can be written"
        )
    glyphs = [[_font_glyphs()[c] for c in word] for word in text.split(" ")]
    extras = [[rng.uniform(0.05, 0.2) for _ in word] for word in glyphs]
    units = sum(
        g["width"] + e * FONT_CAP
        for word, ex in zip(glyphs, extras, strict=True)
        for g, e in zip(word, ex, strict=True)
    )
    height = min(height, (canvas[0] - 40) / (units / FONT_CAP + len(glyphs) - 1))
    scale = height / FONT_CAP
    letters, x = [], 0.0
    for word, ex in zip(glyphs, extras, strict=True):
        for glyph, extra in zip(word, ex, strict=True):
            turn = np.radians(rng.uniform(-4, 4))
            matrix = (1 + rng.uniform(-0.05, 0.05)) * np.array(
                [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
            )
            shift = np.array([x - glyph["left"] * scale, rng.normal(0, 0.02) * height])
            xs = [point[0] for stroke in glyph["strokes"] for point in stroke]
            centre = np.array([(min(xs) + max(xs)) / 2, -1.5])
            letters.append(
                [((np.array(s, float) - centre) @ matrix.T + centre) * scale + shift for s in glyph["strokes"]]
            )
            x += (glyph["width"] + extra * FONT_CAP) * scale
        x += (1 - extra) * height  # between words: a letter height instead of the last letter's extra gap
    points = np.concatenate([p for letter in letters for p in letter])
    origin = (np.array(canvas) - (points.max(axis=0) - points.min(axis=0))) / 2 - points.min(axis=0)
    strokes = []
    for stroke in (s + origin for letter in letters for s in letter):
        lengths = np.r_[0.0, np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))]
        steps = np.linspace(0.0, lengths[-1], max(2, int(lengths[-1] / 3) + 1))
        path = np.stack([np.interp(steps, lengths, stroke[:, k]) for k in (0, 1)], axis=1)
        tremor = np.cumsum(rng.normal(0, 1, path.shape), axis=0)
        tremor -= np.linspace(0, 1, len(path))[:, None] * tremor[-1]  # ends where it would: a wobble, not a drift
        path += 0.015 * height * tremor / max(1.0, np.abs(tremor).max())
        strokes.append(np.round(path).astype(int).tolist())
    return {"strokes": strokes, "width": canvas[0], "height": canvas[1]}


def written_image(body: dict, pen: float, rng: np.random.Generator, photo: bool = False, scale: int = 3) -> bytes:
    """font_strokes' words written with a pen `pen` canvas px wide on paper, `scale` times the canvas: a PNG of
    black on white, or (`photo`) a JPEG of a turned, unevenly lit sheet with grain, as a phone takes it."""
    size = (body["width"] * scale, body["height"] * scale)
    sheet = Image.new("L", size, 255)
    draw = ImageDraw.Draw(sheet)
    for stroke in body["strokes"]:
        draw.line([(x * scale, y * scale) for x, y in stroke], fill=0, width=max(1, round(pen * scale)), joint="curve")
    if not photo:
        return _encode(sheet, "PNG")
    ink = 1.0 - np.asarray(sheet, np.float32) / 255.0
    light = 0.6 + 0.25 * np.linspace(0, 1, size[0])[None, :] + 0.1 * np.linspace(0, 1, size[1])[:, None]
    levels = np.clip((light * (1 - 0.75 * ink) + rng.normal(0, 0.025, ink.shape)) * 255, 0, 255).astype(np.uint8)
    turned = Image.fromarray(levels).rotate(
        rng.uniform(-4, 4), resample=Image.Resampling.BILINEAR, fillcolor=int(light.mean() * 255)
    )
    return _encode(turned.convert("RGB"), "JPEG", quality=85)
