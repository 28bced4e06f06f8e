"""Real test sets, turned into what people send, through the HTTP function.

Acceptance (issue 3): canvas-like PNGs within 0.3 point (digits) / 1 point
(characters) of the model's own accuracy; photos >= 98 %; text lines: character
accuracy >= 97 % (digits) / 88 % (characters), character count right in >= 99 %
of lines.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA_DIR, card, needs_data
from training.data import CHARACTER_LABELS, DIGIT_LABELS, load_emnist, load_mnist
from training.synthetic import canvas_png, photo_jpeg, text_line

pytestmark = [needs_data, pytest.mark.slow]


def _post_image(client, data: bytes, model: str, mode: str, content_type: str) -> dict:
    response = client.post(f"/predict?model={model}&mode={mode}", data=data, content_type=content_type)
    assert response.status_code == 200, response.json
    return response.json


def _accuracy(client, images, labels, names, model, make, content_type) -> float:
    rng = np.random.default_rng(0)
    right = sum(
        _post_image(client, make(image, rng), model, "single", content_type)["prediction"] == names[label]
        for image, label in zip(images, labels, strict=True)
    )
    return right / len(images)


def test_canvas_digits_match_the_model(client):
    test = load_mnist(DATA_DIR, "t10k")
    accuracy = _accuracy(client, test.images, test.labels, DIGIT_LABELS, "digits", canvas_png, "image/png")
    own = card("digits")["accuracy"]["tflite"]
    print(f"canvas digits: {accuracy:.4f} (model on t10k: {own:.4f})")
    assert accuracy >= own - 0.003


def test_canvas_characters_match_the_model(client):
    held = load_emnist(DATA_DIR, "balanced-heldout")
    accuracy = _accuracy(client, held.images, held.labels, CHARACTER_LABELS, "characters", canvas_png, "image/png")
    own = card("characters")["accuracy"]["tflite"]
    print(f"canvas characters: {accuracy:.4f} (model on held-out: {own:.4f})")
    assert accuracy >= own - 0.01


def test_photographed_digits(client):
    test = load_mnist(DATA_DIR, "t10k")
    accuracy = _accuracy(client, test.images, test.labels, DIGIT_LABELS, "digits", photo_jpeg, "image/jpeg")
    print(f"photographed digits: {accuracy:.4f}")
    assert accuracy >= 0.98


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


@pytest.mark.parametrize(
    ("model", "minimum"),
    [("digits", 0.97), ("characters", 0.88)],
)
def test_text_lines(client, model, minimum):
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
        answer = _post_image(client, text_line([data.images[i] for i in picks], rng), model, "text", "image/png")
        errors += _edit_distance(answer["text"], truth)
        characters += len(truth)
        right_counts += len(answer["characters"]) == len(truth)
    accuracy = 1 - errors / characters
    print(f"text {model}: character accuracy {accuracy:.4f}, count right in {right_counts}/{lines} lines")
    assert accuracy >= minimum
    assert right_counts >= 0.99 * lines
