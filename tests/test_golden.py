"""Golden vectors: fixed requests with the exact 28x28 inputs, boxes and top-5 they produce.

Any change to decoding, ink finding, segmentation or preprocessing shows up
here as a diff of committed numbers, not only as a shift in an accuracy test.
After an intended change (or a retrained model), rewrite the expected file and
review its diff:

    .venv/bin/python tests/test_golden.py --write
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer.warm_up import SEVEN

GOLDEN = Path(__file__).resolve().parent / "golden"
EXPECTED = GOLDEN / "expected.json"
LETTER_T = [[[40, 50], [240, 50]], [[140, 50], [140, 250]]]
# "42" and "HI" as pen strokes in a 600x200 box: two and three strokes per character.
FORTY_TWO = [
    [[80, 30], [40, 120], [120, 120]],
    [[100, 60], [100, 180]],
    [[170, 60], [200, 35], [240, 45], [245, 80], [170, 170], [260, 170]],
]
HI = [[[40, 30], [40, 170]], [[40, 100], [120, 100]], [[120, 30], [120, 170]], [[200, 30], [200, 170]]]


def _seven_png() -> bytes:
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    for stroke in SEVEN:
        draw.line([tuple(p) for p in stroke], fill=0, width=18, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _photo_jpeg() -> bytes:
    """The seven as a photo: grey paper with a light gradient, dark ink, JPEG."""
    ink = np.asarray(Image.open(io.BytesIO(_seven_png())), np.float32) / 255.0
    gradient = np.linspace(0.7, 0.9, 280, dtype=np.float32)[None, :]
    photo = np.clip(gradient * (0.35 + 0.65 * ink) * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


# name -> (JSON request body); images travel as base64, exactly as clients send them.
CASES = {
    "seven-canvas-png": {"image": base64.b64encode(_seven_png()).decode(), "model": "digits"},
    "seven-photo-jpeg": {"image": base64.b64encode(_photo_jpeg()).decode(), "model": "digits"},
    "seven-strokes": {"strokes": SEVEN, "width": 280, "height": 280},
    "t-strokes-characters": {"strokes": LETTER_T, "model": "characters"},
    "forty-two-text-digits": {"strokes": FORTY_TWO, "mode": "text", "model": "digits"},
    "hi-text-characters": {"strokes": HI, "mode": "text", "model": "characters", "context": "none"},
}


def inputs_28(data_url: str) -> list[list[list[int]]]:
    """The answer's `input` strip as one 28x28 uint8 array per character."""
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))
    return [strip[:, i : i + 28].tolist() for i in range(0, strip.shape[1], 28)]


def summary(answer: dict) -> dict:
    """What a golden vector pins: the model's inputs, every box, and the top-5 of each character."""
    characters = answer.get("characters") or [answer]
    return {
        "inputs": inputs_28(answer["input"]),
        "boxes": [c["box"] for c in characters if "box" in c],
        "top": [[[t["label"], round(t["probability"], 3)] for t in c["top"]] for c in characters],
    }


@pytest.mark.parametrize("name", list(CASES))
def test_golden_vector(client, name):
    expected = json.loads(EXPECTED.read_text())[name]
    actual = answers_of(client, name)
    assert actual["boxes"] == expected["boxes"]
    assert actual["inputs"] == expected["inputs"], "the 28x28 input changed: preprocessing moved"
    for got, want in zip(actual["top"], expected["top"], strict=True):
        assert [label for label, _ in got] == [label for label, _ in want]
        assert np.allclose([p for _, p in got], [p for _, p in want], atol=0.002)


def answers_of(client, name: str) -> dict:
    response = client.post("/predict", json=CASES[name])
    assert response.status_code == 200, response.json
    return summary(response.json)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write   (rewrites tests/golden/expected.json)")
    import functions_framework

    root = Path(__file__).resolve().parent.parent
    app = functions_framework.create_app(target="predict", source=str(root / "function" / "main.py"))
    GOLDEN.mkdir(exist_ok=True)
    client = app.test_client()
    lines = [f"{json.dumps(name)}:{json.dumps(answers_of(client, name), separators=(',', ':'))}" for name in CASES]
    EXPECTED.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # a case per line: a diff names the case
    print(f"wrote {EXPECTED}")
