"""Photos of a sheet: the table around it is not ink; writing cut by a tight crop is.

A photo's border is often not paper (the table, a shadow), so the polarity
comes from the picture's median and extremes, and pieces lying along the
picture's edge are dropped. tests/test_fidelity.py measures both on t10k
(photographed, and photographed on a table).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from recognizer.decode import decode_levels
from recognizer.preprocess import to_ink

THREE = [[(90, 60), (150, 40), (190, 90), (140, 140), (195, 190), (150, 245), (90, 225)]]
SEVEN_ONE = [[(40, 2), (150, 2), (80, 230)], [(230, 40), (230, 230)]]  # the 7's bar on the crop's top edge


def photo(strokes: list, size: tuple[int, int], table: bool, seed: int = 0) -> bytes:
    """Dark strokes on a grey, unevenly lit sheet, with grain; on a darker table, turned, if `table`. JPEG."""
    rng = np.random.default_rng(seed)
    sheet = Image.new("L", size, 255)
    draw = ImageDraw.Draw(sheet)
    for stroke in strokes:
        draw.line(stroke, fill=0, width=16, joint="curve")
    ink = 1.0 - np.asarray(sheet, np.float32) / 255.0
    light = 0.62 + 0.2 * np.linspace(0, 1, size[0])[None, :]  # darker on the left
    levels = np.clip((light * (1 - 0.7 * ink) + rng.normal(0, 0.02, ink.shape)) * 255, 0, 255).astype(np.uint8)
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


def test_writing_cut_by_a_tight_crop_stays(client):
    data = photo(SEVEN_ONE, (300, 260), table=False)
    ink = ink_of(data)
    assert ink[:3, 50:140].all(axis=0).any()  # the 7's bar, along the top edge for 0.4 of its width + height
    answer = client.post("/predict?model=digits&mode=text", data=data, content_type="image/jpeg")
    assert answer.status_code == 200 and answer.json["text"] == "71"
