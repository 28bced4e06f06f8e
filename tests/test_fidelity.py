"""Real test sets, turned into what people send, through the HTTP function.

Canvas-like PNGs must read within 0.3 point (digits) / 1 point (characters)
of the model's own accuracy on the same images; the other floors sit just
under what was measured (with the reject-output models; README, Models): canvas
digits 99.44 % with rejections counted as errors (0.21 % rejected), canvas
characters 89.43 %, photos 99.26 %, photos of a sheet on a table 98.6 %, text lines 99.64 % / 89.17 %
of characters right.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA_DIR, card, needs_data
from training.data import CHARACTER_LABELS, DIGIT_LABELS, load_emnist, load_mnist
from training.synthetic import canvas_png, photo_jpeg, photo_on_table_jpeg, text_line
from training.text_eval import edit_distance

pytestmark = [needs_data, pytest.mark.slow]
TABLE_PHOTOS = 2000  # the first t10k digits, photographed on a table


def _post_image(client, data: bytes, model: str, mode: str, content_type: str, **fields: str) -> dict:
    query = "&".join(f"{key}={value}" for key, value in {"model": model, "mode": mode, **fields}.items())
    response = client.post(f"/predict?{query}", data=data, content_type=content_type)
    assert response.status_code == 200, response.json
    return response.json


def _answers(client, images, labels, names, model, make, content_type) -> tuple[float, float]:
    """(share read right, a rejection counting as wrong; share rejected)."""
    rng = np.random.default_rng(0)
    answers = [_post_image(client, make(image, rng), model, "single", content_type) for image in images]
    right = sum(a["prediction"] == names[label] for a, label in zip(answers, labels, strict=True))
    return right / len(images), sum(a["rejected"] for a in answers) / len(images)


def test_canvas_digits_match_the_model(client):
    test = load_mnist(DATA_DIR, "t10k")
    accuracy, rejected = _answers(client, test.images, test.labels, DIGIT_LABELS, "digits", canvas_png, "image/png")
    own = card("digits")["accuracy"]["tflite"]
    print(f"canvas digits: {accuracy:.4f}, {rejected:.4f} rejected (model on t10k: {own:.4f})")
    assert accuracy / (1 - rejected) >= own - 0.003  # the answers given: preprocessing loses nothing
    assert rejected <= 0.003 and accuracy >= 0.993  # measured 0.21 % and 99.44 %


def test_canvas_characters_match_the_model(client):
    held = load_emnist(DATA_DIR, "balanced-heldout")
    accuracy, rejected = _answers(
        client, held.images, held.labels, CHARACTER_LABELS, "characters", canvas_png, "image/png"
    )
    own = card("characters")["accuracy"]["tflite"]
    print(f"canvas characters: {accuracy:.4f}, {rejected:.4f} rejected (model on held-out: {own:.4f})")
    assert accuracy >= own - 0.01 and accuracy >= 0.892


def test_photographed_digits(client):
    test = load_mnist(DATA_DIR, "t10k")
    accuracy, rejected = _answers(client, test.images, test.labels, DIGIT_LABELS, "digits", photo_jpeg, "image/jpeg")
    print(f"photographed digits: {accuracy:.4f}, {rejected:.4f} rejected")
    assert accuracy >= 0.99  # measured 99.26 % (0.31 % rejected)


def test_photographed_sheets_on_a_table(client):
    """The sheet smaller and turned, the table showing along its edges: the table is not ink."""
    test = load_mnist(DATA_DIR, "t10k")
    images, labels = test.images[:TABLE_PHOTOS], test.labels[:TABLE_PHOTOS]
    accuracy, rejected = _answers(client, images, labels, DIGIT_LABELS, "digits", photo_on_table_jpeg, "image/jpeg")
    print(f"photographed sheets on a table: {accuracy:.4f}, {rejected:.4f} rejected")
    assert accuracy >= 0.98  # measured 98.6 % (2,000 images); 7 % when the picture's border decided the polarity


@pytest.mark.parametrize(
    ("model", "minimum", "counted"),
    [("digits", 0.993, 0.99), ("characters", 0.88, 0.97)],
)
def test_text_lines(client, model, minimum, counted):
    if model == "digits":
        data, names = load_mnist(DATA_DIR, "t10k"), DIGIT_LABELS
    else:
        data, names = load_emnist(DATA_DIR, "balanced-heldout"), CHARACTER_LABELS
    rng = np.random.default_rng(1)
    errors = characters = right_counts = 0
    lines = 500
    for _ in range(lines):
        picks = rng.choice(len(data.images), size=int(rng.integers(3, 9)), replace=False)
        truth = "".join(names[data.labels[i]] for i in picks)
        # Random characters are a code, not a word: read each on its own (the word reader has its own evaluation).
        line = text_line([data.images[i] for i in picks], rng)
        answer = _post_image(client, line, model, "text", "image/png", context="none")
        errors += edit_distance(answer["text"] or "", truth)  # a line rejected as a whole reads as nothing
        characters += len(truth)
        right_counts += len(answer["characters"]) == len(truth)
    accuracy = 1 - errors / characters
    print(f"text {model}: character accuracy {accuracy:.4f}, count right in {right_counts}/{lines} lines")
    assert accuracy >= minimum
    assert right_counts >= counted * lines
