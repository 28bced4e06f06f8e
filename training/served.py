"""Training images as the function sees them, for the last epochs.

A person's drawing reaches the model through function/recognizer/preprocess
(threshold, crop, the EMNIST or MNIST framing), which does not give back the
training images' framing and grey levels exactly. The VGG characters net read
canvas drawings of the held-out images 1.2 points worse than the images
themselves; two epochs with half the images passed through that same
preprocessing brought the gap to 0.3 point. One preprocessing implementation
serves both: this module only calls the function's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from recognizer.preprocess import PROFILES, crop_to_ink, to_ink

SERVED_SHARE = 0.5  # the other half stay as they are, so the net keeps reading the originals as well
SIDES = (112, 280)  # upscaled to a drawing's size on a page before preprocessing, as the site sends


def as_served(images: np.ndarray, profile: str, seed: int) -> np.ndarray:
    """uint8 (n, 28, 28) -> the same, with a random SERVED_SHARE of them replaced by `served`."""
    rng = np.random.default_rng(seed)
    out = images.copy()
    for i in np.nonzero(rng.random(len(images)) < SERVED_SHARE)[0]:
        out[i] = np.round(served(images[i], profile, rng) * 255).astype(np.uint8)
    return out


def served(image: np.ndarray, profile: str, rng: np.random.Generator) -> np.ndarray:
    """One uint8 28x28 image, upscaled and run through the function's preprocessing: float 28x28 in [0, 1]."""
    side = int(rng.integers(SIDES[0], SIDES[1], endpoint=True))
    big = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255.0
    ink = to_ink(big)
    if not ink.any():  # a faint image the function would refuse: keep the original
        return image.astype(np.float32) / 255.0
    return PROFILES[profile](crop_to_ink(ink))
