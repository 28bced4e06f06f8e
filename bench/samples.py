"""The requests the benchmarks send, made from real test images by training/synthetic.py."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from bench import DATA_DIR
from recognizer.warm_up import SEVEN
from training.data import CHARACTER_LABELS, load_emnist, load_mnist
from training.synthetic import canvas_png, photo_jpeg, text_line

# A handwritten "7" as pen strokes on a 280x280 canvas (the site sends strokes like these).


@dataclass(frozen=True)
class Probe:
    """One kind of request: where it goes, its body, and the answer a correct model gives."""

    name: str
    path: str
    content_type: str
    body: bytes
    expected: str


def digit(index: int = 0) -> tuple[np.ndarray, str]:
    """An MNIST t10k test image (28x28 uint8, white on black) and its label."""
    test = load_mnist(DATA_DIR, "t10k")
    return test.images[index], str(test.labels[index])


def digit_images(count: int) -> np.ndarray:
    return load_mnist(DATA_DIR, "t10k").images[:count]


def probes() -> list[Probe]:
    """A 280x280 canvas PNG, a photo JPEG, strokes JSON (digits) and a text-mode line of 4 characters."""
    image, label = digit(0)
    rng = np.random.default_rng(0)
    held = load_emnist(DATA_DIR, "balanced-heldout")
    word = [0, 1, 2, 3]
    return [
        Probe("canvas PNG 280x280", "/predict", "image/png", canvas_png(image, rng), label),
        Probe("photo JPEG 280x280", "/predict", "image/jpeg", photo_jpeg(image, rng), label),
        Probe(
            "strokes JSON",
            "/predict",
            "application/json",
            json.dumps({"strokes": SEVEN, "width": 280, "height": 280}).encode(),
            "7",
        ),
        Probe(
            "text line PNG (4 characters)",
            "/predict?model=characters&mode=text",
            "image/png",
            text_line([held.images[i] for i in word], rng),
            "".join(CHARACTER_LABELS[held.labels[i]] for i in word),
        ),
    ]
