"""Connected components: the vectorised union-find against a plain flood fill, on any small mask."""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recognizer.segment import label_components, median, percentile


def flood_fill_components(mask: np.ndarray) -> list[frozenset[tuple[int, int]]]:
    """8-connected components by breadth-first search: slow and obviously right."""
    seen = np.zeros(mask.shape, bool)
    components = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, pixels = deque([start]), set()
        while queue:
            y, x = queue.popleft()
            pixels.add((int(y), int(x)))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        components.append(frozenset(pixels))
    return components


@settings(max_examples=300, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.booleans()))
def test_label_components_matches_a_flood_fill(mask):
    labels, boxes, areas = label_components(mask)
    expected = set(flood_fill_components(mask))
    found = {
        frozenset((int(y), int(x)) for y, x in zip(*np.nonzero(labels == k), strict=True))
        for k in range(1, len(boxes) + 1)
    }
    assert found == expected
    assert (labels > 0).sum() == mask.sum()
    for k, (box, area) in enumerate(zip(boxes, areas, strict=True), start=1):
        ys, xs = np.nonzero(labels == k)
        assert (box.y0, box.x0, box.y1, box.x1) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        assert area == len(ys)


@settings(max_examples=300, deadline=None)
@given(
    arrays(float, st.integers(1, 40), elements=st.floats(-3, 3, allow_nan=False)),
    st.sampled_from([0, 10, 25, 50, 75, 90, 100, 33.3]),
)
def test_median_and_percentile_are_numpys_to_the_bit(values, q):
    assert median(values) == float(np.median(values))
    assert percentile(values, q) == float(np.percentile(values, q))
