"""Photos of a sheet: the table around it is not ink; writing cut by a tight crop is.

A photo's border is often not paper (the table, a shadow), so the polarity
comes from the picture's median and extremes, and pieces lying along the
picture's edge are dropped. tests/test_fidelity.py measures both on t10k
(photographed, and photographed on a table).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer.decode import REGION_FILE_BYTES, decode_levels, decode_region
from recognizer.preprocess import STROKE, THIN_STROKE, stroke_width, thickened, to_ink
from training.synthetic import font_strokes, written_image

THREE = [[(90, 60), (150, 40), (190, 90), (140, 140), (195, 190), (150, 245), (90, 225)]]
SEVEN_ONE = [[(40, 2), (150, 2), (80, 230)], [(230, 40), (230, 230)]]  # the 7's bar on the crop's top edge


def photo(
    strokes: list, size: tuple[int, int], table: bool, seed: int = 0, darkness: float = 0.7, grain: float = 0.02
) -> bytes:
    """Strokes `darkness` darker than a grey, unevenly lit sheet, with grain; on a darker table, turned, if
    `table`. JPEG."""
    rng = np.random.default_rng(seed)
    sheet = Image.new("L", size, 255)
    draw = ImageDraw.Draw(sheet)
    for stroke in strokes:
        draw.line(stroke, fill=0, width=16, joint="curve")
    ink = 1.0 - np.asarray(sheet, np.float32) / 255.0
    light = 0.62 + 0.2 * np.linspace(0, 1, size[0])[None, :]  # darker on the left
    levels = np.clip((light * (1 - darkness * ink) + rng.normal(0, grain, ink.shape)) * 255, 0, 255).astype(np.uint8)
    picture = Image.fromarray(levels)
    if table:
        outline = Image.new("L", size, 255).rotate(5, expand=True)
        turned = picture.rotate(5, resample=Image.Resampling.BILINEAR, expand=True)
        picture = Image.new("L", (turned.width + 40, turned.height + 30), 95)  # the table, darker than the sheet
        picture.paste(turned, (25, 10), outline)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def ink_of(data: bytes) -> np.ndarray:
    return to_ink(decode_levels(data)[0])


def test_the_table_around_a_sheet_is_not_ink(client):
    ink = ink_of(photo(THREE, (280, 280), table=True))
    rim = np.concatenate([ink[:3].ravel(), ink[-3:].ravel(), ink[:, :3].ravel(), ink[:, -3:].ravel()])
    assert ink.any() and not rim.any()
    answer = client.post("/predict?model=digits", data=photo(THREE, (280, 280), table=True), content_type="image/jpeg")
    assert answer.status_code == 200 and answer.json["prediction"] == "3"


@pytest.mark.parametrize("darkness", [0.15, 0.2])
def test_a_faint_pencil_digit_is_read(client, darkness):
    """Ink 15 and 20 % darker than the paper: the mean levels above and below Otsu's threshold 0.10 and 0.14
    apart, which preprocess.MIN_CONTRAST 0.15 answered "nothing drawn"."""
    answer = client.post(
        "/predict", data=photo(THREE, (280, 280), table=False, darkness=darkness), content_type="image/jpeg"
    )
    assert answer.status_code == 200 and answer.json["prediction"] == "3"


@pytest.mark.parametrize("grain", [0.01, 0.03, 0.05])
def test_a_photo_of_blank_paper_with_grain_is_nothing_drawn(client, grain):
    """Grain up to 13 levels (a dim room's photo) is not ink: it measures at most 0.067 (MIN_CONTRAST 0.09)."""
    for seed in range(5):
        data = photo([], (320, 240), table=False, seed=seed, grain=grain)
        answer = client.post("/predict", data=data, content_type="image/jpeg")
        assert answer.status_code == 422 and answer.json["error"]["code"] == "nothing_drawn", seed


def test_writing_cut_by_a_tight_crop_stays(client):
    data = photo(SEVEN_ONE, (300, 260), table=False)
    ink = ink_of(data)
    assert ink[:3, 50:140].all(axis=0).any()  # the 7's bar, along the top edge for 0.4 of its width + height
    answer = client.post("/predict?model=digits&mode=text", data=data, content_type="image/jpeg")
    assert answer.status_code == 200 and answer.json["text"] == "71"


def phone_photo(word: str, share: float, rng: np.random.Generator) -> tuple[bytes, tuple[int, int, int, int]]:
    """`word` written on paper, taking `share` of a 12 MP photo's width in its middle: (JPEG, the word's box)."""
    writing = Image.open(io.BytesIO(written_image(font_strokes(word, rng), rng.uniform(5, 10), rng, scale=2)))
    width = round(4032 * share)
    height = round(writing.height * width / writing.width)
    sheet = Image.new("L", (4032, 3024), 255)
    left, top = (4032 - width) // 2, (3024 - height) // 2
    sheet.paste(writing.convert("L").resize((width, height), Image.Resampling.LANCZOS), (left, top))
    buffer = io.BytesIO()
    sheet.convert("RGB").save(buffer, format="JPEG", quality=85)
    ink = np.asarray(sheet) < 128
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return buffer.getvalue(), (columns[0], rows[0], columns[-1] + 1 - columns[0], rows[-1] + 1 - rows[0])


def test_a_word_small_in_a_large_photo_is_read_closer(client):
    """Worked at 512 px, a word across an eighth of a 12 MP photo has letters 8 px tall: text mode reads it again
    from the file, closer. Measured 2026-11-30, 12 words: 12 read (9 before; 60 other words: 58 and 34)."""
    rng = np.random.default_rng(3)
    words = ["question", "window", "garden", "number", "people", "market"] * 2
    read = 0
    for word in words:
        data, (x, y, width, height) = phone_photo(word, 1 / 8, rng)
        answer = client.post("/predict?model=characters&mode=text", data=data, content_type="image/jpeg").json
        read += answer["text"] == word
        boxes = [c["box"] for c in answer["characters"]]  # in the photo's pixels, on the word
        assert min(b[0] for b in boxes) == pytest.approx(x, abs=12) and min(b[1] for b in boxes) >= y - 12
        assert max(b[0] + b[2] for b in boxes) == pytest.approx(x + width, abs=12)
        assert max(b[1] + b[3] for b in boxes) <= y + height + 12
    assert read >= 11, read


def test_a_region_is_decoded_at_the_scale_asked_or_what_the_file_has():
    picture = Image.new("L", (1200, 900), 255)
    ImageDraw.Draw(picture).rectangle((600, 300, 699, 339), fill=0)
    jpeg, png = io.BytesIO(), io.BytesIO()
    picture.save(jpeg, format="JPEG", quality=95)
    picture.save(png, format="PNG")
    levels, scale, origin = decode_region(jpeg.getvalue(), (550, 280, 200, 80), 1.0)  # the file's own pixels
    assert (scale, origin, levels.shape) == (1.0, (550, 280), (80, 200))
    assert (levels[24:56, 54:146] < 30).all() and (levels[:16] > 225).all()
    levels, scale, origin = decode_region(jpeg.getvalue(), (550, 280, 200, 80), 0.25)  # never finer than the file
    assert scale == 1.0 and levels.shape == (80, 200)
    levels, scale, origin = decode_region(jpeg.getvalue(), (548, 280, 200, 80), 4.0)  # drafted at 1/4
    assert (scale, origin, levels.shape) == (4.0, (548, 280), (20, 50))
    levels, scale, _ = decode_region(jpeg.getvalue(), (0, 0, 1200, 900), 1.0)  # never beyond the working size
    assert max(levels.shape) == 512 and scale == pytest.approx(1200 / 512)
    # Only a JPEG up to REGION_FILE_BYTES: a second whole decode of another format could double a request's CPU.
    assert decode_region(png.getvalue(), (550, 280, 200, 80), 1.0) is None
    assert decode_region(jpeg.getvalue() + b"\0" * REGION_FILE_BYTES, (550, 280, 200, 80), 1.0) is None


def test_a_ballpoint_digit_is_thickened_to_mnist_strokes_and_a_thick_one_is_left_alone():
    thin = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(thin).ellipse((40, 20, 160, 180), outline=255, width=3)  # a 0 in a 3 px line
    crop = np.asarray(thin, np.float32) / 255
    assert stroke_width(crop > 0.5) < THIN_STROKE * 200
    grown = thickened(crop)
    assert STROKE * 0.8 <= stroke_width(grown > 0.5) / max(grown.shape) <= STROKE * 1.2
    thick = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(thick).ellipse((40, 20, 160, 180), outline=255, width=24)  # MNIST's: 0.12 of its height
    crop = np.asarray(thick, np.float32) / 255
    assert thickened(crop) is crop
