"""Find the pieces of ink and group them into characters, left to right.

Connected components are found on runs of ink per row with a union-find:
fast in numpy for the working-size images here, and it keeps scipy (about
145 MB installed) out of the serving install.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MERGE_OVERLAP = 0.5  # pieces overlapping this share of the narrower one's width are one character


@dataclass(frozen=True)
class Box:
    """Inclusive-exclusive pixel bounds [y0, y1) x [x0, x1)."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def union(self, other: Box) -> Box:
        return Box(min(self.y0, other.y0), min(self.x0, other.x0), max(self.y1, other.y1), max(self.x1, other.x1))


def label_components(mask: np.ndarray) -> tuple[np.ndarray, list[Box], np.ndarray]:
    """8-connected components of a boolean mask: (labels 1..n, boxes, areas); 0 is background."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    run_ends = np.nonzero(edges == -1)[1]
    n = len(run_rows)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(run_rows, np.arange(mask.shape[0] + 1))
    for row in range(1, mask.shape[0]):
        above = range(row_first[row - 1], row_first[row])
        for i in range(row_first[row], row_first[row + 1]):
            for j in above:  # 8-connected: runs touch if they overlap with one column of slack
                if run_starts[i] <= run_ends[j] and run_starts[j] <= run_ends[i]:
                    a, b = find(i), find(j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, run_label = np.unique(roots, return_inverse=True)
    count = int(run_label.max()) + 1 if n else 0
    labels = np.zeros(mask.shape, np.int32)
    for row, start, end, label in zip(run_rows, run_starts, run_ends, run_label, strict=True):
        labels[row, start:end] = label + 1
    areas = np.bincount(run_label, weights=run_ends - run_starts, minlength=count)
    y0 = np.full(count, mask.shape[0])
    y1 = np.zeros(count, int)
    x0 = np.full(count, mask.shape[1])
    x1 = np.zeros(count, int)
    np.minimum.at(y0, run_label, run_rows)
    np.maximum.at(y1, run_label, run_rows + 1)
    np.minimum.at(x0, run_label, run_starts)
    np.maximum.at(x1, run_label, run_ends)
    boxes = [Box(int(y0[k]), int(x0[k]), int(y1[k]), int(x1[k])) for k in range(count)]
    return labels, boxes, areas


def segment_characters(ink: np.ndarray) -> list[tuple[Box, np.ndarray]]:
    """Split an ink image into characters: (box, the character's ink alone), left to right.

    Pieces are merged where they overlap horizontally, so the dot of an `i` or
    `j`, the two bars of `=` and a stroke drawn in two goes stay one character.
    """
    labels, boxes, _ = label_components(ink > 0)
    groups: list[tuple[Box, list[int]]] = []
    for index in sorted(range(len(boxes)), key=lambda k: (boxes[k].x0, boxes[k].x1)):
        box = boxes[index]
        if groups:
            last, members = groups[-1]
            overlap = min(last.x1, box.x1) - max(last.x0, box.x0)
            if overlap > 0 and overlap >= MERGE_OVERLAP * min(last.width, box.width):
                groups[-1] = (last.union(box), [*members, index + 1])
                continue
        groups.append((box, [index + 1]))
    characters = []
    for box, members in groups:
        window = (slice(box.y0, box.y1), slice(box.x0, box.x1))
        characters.append((box, np.where(np.isin(labels[window], members), ink[window], 0.0)))
    return characters
