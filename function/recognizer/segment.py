"""Find the pieces of ink and group them into characters, left to right.

Connected components are found on runs of ink per row with a union-find:
fast in numpy for the working-size images here, and it keeps scipy (about
145 MB installed) out of the serving install.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MERGE_OVERLAP = 0.5  # pieces overlapping this share of the narrower one's width are one character
FRAGMENT_SHARE = 0.2  # a group with less ink than this share of the median character is a fragment


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
    """8-connected components of a boolean mask: (labels 1..n, boxes, areas); 0 is background.

    Works on runs of ink per row: runs in neighbouring rows that touch are
    joined by a vectorised union-find (hook roots, then compress paths).
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # exclusive
    n = len(rows)
    if n == 0:
        return np.zeros(mask.shape, np.int32), [], np.zeros(0)
    # Runs j in the row above touch run i when start_j <= end_i and start_i <= end_j
    # (one column of slack makes diagonal neighbours touch).
    stride = width + 2
    first = np.searchsorted(rows * stride + ends, (rows - 1) * stride + starts, side="left")
    last = np.searchsorted(rows * stride + starts, (rows - 1) * stride + ends, side="right")
    count = np.maximum(last - first, 0)
    a = np.repeat(np.arange(n), count)
    b = np.repeat(first, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    root = np.arange(n)
    while True:
        ra, rb = root[a], root[b]
        if np.array_equal(ra, rb):
            break
        np.minimum.at(root, np.maximum(ra, rb), np.minimum(ra, rb))  # hook the larger root under the smaller
        while True:  # compress: every run points at its root
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
    _, run_label = np.unique(root, return_inverse=True)
    components = int(run_label.max()) + 1
    lengths = ends - starts
    offsets = np.repeat(rows * width + starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    labels = np.zeros(height * width, np.int32)
    labels[offsets] = np.repeat(run_label + 1, lengths)
    areas = np.bincount(run_label, weights=lengths, minlength=components)
    y0, x0 = np.full(components, height), np.full(components, width)
    y1, x1 = np.zeros(components, int), np.zeros(components, int)
    np.minimum.at(y0, run_label, rows)
    np.maximum.at(y1, run_label, rows + 1)
    np.minimum.at(x0, run_label, starts)
    np.maximum.at(x1, run_label, ends)
    boxes = [Box(int(y0[k]), int(x0[k]), int(y1[k]), int(x1[k])) for k in range(components)]
    return labels.reshape(height, width), boxes, areas


def group_characters(ink: np.ndarray) -> tuple[np.ndarray, list[tuple[Box, list[int]]]]:
    """(component labels, characters left to right as (box, component numbers)).

    Pieces are merged where they overlap horizontally, so the dot of an `i` or
    `j`, the two bars of `=` and a stroke drawn in two goes stay one character.
    A small fragment (a broken-off bar, a pen touch) joins its nearest
    neighbour instead of counting as a character of its own.
    """
    labels, boxes, areas = label_components(ink > 0)
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
    return labels, _absorb_fragments(groups, areas)


def count_characters(ink: np.ndarray) -> int:
    """How many characters the ink holds, as text mode would split it (a hint for single-mode answers)."""
    return len(group_characters(ink)[1])


def segment_characters(ink: np.ndarray) -> list[tuple[Box, np.ndarray]]:
    """Split an ink image into characters: (box, the character's ink alone), left to right."""
    labels, groups = group_characters(ink)
    characters = []
    for box, members in groups:
        window = (slice(box.y0, box.y1), slice(box.x0, box.x1))
        characters.append((box, np.where(np.isin(labels[window], members), ink[window], 0.0)))
    return characters


def _absorb_fragments(groups: list[tuple[Box, list[int]]], areas: np.ndarray) -> list[tuple[Box, list[int]]]:
    """Join each group much smaller than a typical character to its nearest neighbour."""
    while len(groups) > 1:
        sizes = [sum(areas[m - 1] for m in members) for _, members in groups]
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= FRAGMENT_SHARE * float(np.median(sizes)):
            break
        box = groups[smallest][0]
        gaps = [
            (max(other.x0 - box.x1, box.x0 - other.x1), k)
            for k, (other, _) in enumerate(groups)
            if k in (smallest - 1, smallest + 1)
        ]
        _, nearest = min(gaps)
        merged = (groups[nearest][0].union(box), groups[nearest][1] + groups[smallest][1])
        low, high = sorted((smallest, nearest))
        groups = [*groups[:low], merged, *groups[high + 1 :]]
    return groups
