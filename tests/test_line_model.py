"""The digit-line model: its strip, its CTC scores, its file, and what it changes in digits text mode."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import MODELS_DIR
from recognizer.inference import find_models
from recognizer.line_model import LINE_MODELS, ctc_log_likelihoods, load_line_model
from recognizer.preprocess import STRIP_GAP, STRIP_HEIGHT, STRIP_INK, STRIP_MARGIN, line_strip


def brute_force(log_probabilities: np.ndarray, sequence: list[int], blank: int) -> float:
    """log P(sequence): the sum over every path of outputs that reads as it (repeats merged, blanks dropped)."""
    steps, symbols = log_probabilities.shape
    total = -np.inf
    for path in itertools.product(range(symbols), repeat=steps):
        merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in merged if k != blank] == sequence:
            total = np.logaddexp(total, sum(log_probabilities[t, k] for t, k in enumerate(path)))
    return float(total)


def test_ctc_scores_are_the_sum_over_every_path():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(5, 4))
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    sequences = [[], [0], [1, 1], [0, 2, 0], [2, 2, 2], [1, 2], [0, 0, 0, 1]]  # [0, 0, 0, 1] needs 6 steps
    found = ctc_log_likelihoods(log_probabilities, sequences, blank=3)
    expected = [brute_force(log_probabilities, s, 3) for s in sequences]
    assert np.isneginf(expected[-1]) and np.isneginf(found[-1])
    np.testing.assert_allclose(found[:-1], expected[:-1], rtol=1e-9)


def _ink(gap: int) -> np.ndarray:
    """Two bars 40 px tall, `gap` columns apart."""
    ink = np.zeros((60, 40 + 2 * 10 + gap), np.float32)
    ink[10:50, 20:30] = 1.0
    ink[10:50, 30 + gap : 40 + gap] = 1.0
    return ink


def test_line_strip_scales_the_ink_and_narrows_wide_gaps():
    strip = line_strip(_ink(8))
    assert strip.shape[0] == STRIP_HEIGHT and strip.shape[1] % 4 == 0
    rows = np.flatnonzero(strip.max(axis=1) > 0.5)
    assert rows[0] == (STRIP_HEIGHT - STRIP_INK) // 2 and len(rows) == STRIP_INK
    assert np.flatnonzero(strip.max(axis=0) > 0)[0] == STRIP_MARGIN
    wide, wider = line_strip(_ink(100)), line_strip(_ink(300))
    np.testing.assert_array_equal(wide, wider)  # beyond STRIP_GAP of the height, a gap is a gap
    gap = np.flatnonzero(wide.max(axis=0) < 0.5)
    inner = gap[(gap > STRIP_MARGIN) & (gap < wide.shape[1] - STRIP_MARGIN - 4)]
    assert abs(len(inner) - STRIP_GAP * STRIP_INK) <= 2


def test_the_line_model_ships_with_its_card_and_is_no_classifier():
    name = LINE_MODELS["digits"]
    card = json.loads((MODELS_DIR / f"{name}.json").read_text())
    assert "labels" not in card and card["alphabet"] == list("0123456789")
    assert name not in find_models(MODELS_DIR)
    model = load_line_model(MODELS_DIR, name)
    assert model.version == card["version"]
    assert card["validation"]["exact_best_path"] >= 0.95  # the int8 file alone, on lines of training digits


@pytest.mark.parametrize("width", [4, 52, 400])
def test_the_line_model_takes_any_width(width):
    model = load_line_model(MODELS_DIR, LINE_MODELS["digits"])
    steps = model.log_probabilities(np.zeros((STRIP_HEIGHT, width), np.float32))
    assert steps.shape == (width // 4, 11)
    np.testing.assert_allclose(np.exp(steps).sum(axis=1), 1.0, rtol=1e-6)
