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


@dataclass(frozen=True)
class Runs:
    """Runs of ink per row: run k covers columns [starts[k], ends[k]) of row rows[k] and is in `component[k]`."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    component: np.ndarray
    count: int  # components

    def areas(self) -> np.ndarray:
        return np.bincount(self.component, weights=self.ends - self.starts, minlength=self.count)

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each component's box as arrays (y0, x0, y1, x1)."""
        y0, x0 = np.full(self.count, np.iinfo(np.intp).max), np.full(self.count, np.iinfo(np.intp).max)
        y1, x1 = np.zeros(self.count, np.intp), np.zeros(self.count, np.intp)
        np.minimum.at(y0, self.component, self.rows)
        np.maximum.at(y1, self.component, self.rows + 1)
        np.minimum.at(x0, self.component, self.starts)
        np.maximum.at(x1, self.component, self.ends)
        return y0, x0, y1, x1

    def boxes(self) -> list[Box]:
        y0, x0, y1, x1 = self.bounds()
        return [Box(int(y0[k]), int(x0[k]), int(y1[k]), int(x1[k])) for k in range(self.count)]

    def paint(self, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """An image of `shape` with each run's pixels set to `values[its component]` (0 elsewhere)."""
        height, width = shape
        out = np.zeros(height * width, values.dtype)
        lengths = self.ends - self.starts
        offsets = np.repeat(self.rows * width + self.starts - np.cumsum(lengths) + lengths, lengths)
        out[offsets + np.arange(lengths.sum())] = np.repeat(values[self.component], lengths)
        return out.reshape(shape)

    def labels(self, shape: tuple[int, int]) -> np.ndarray:
        """Each pixel's component number, 1..count; 0 is background."""
        return self.paint(shape, np.arange(1, self.count + 1, dtype=np.int32))


def median(values) -> float:
    """np.median of a non-empty array or list, without np.median's NaN check, which imports numpy.ma (8 ms of
    every instance's start); the same value as np.median, in the values' own dtype."""
    a = np.asarray(values).ravel()
    k = len(a) // 2
    if len(a) % 2:
        return float(np.partition(a, k)[k])
    return float(np.partition(a, [k - 1, k])[k - 1 : k + 1].mean())


def percentile(values, q: float) -> float:
    """np.percentile (its default, linear interpolation) of a non-empty array or list, without the import of
    numpy.ma that np.percentile makes on first use (about 20 ms of the first text-mode request of each instance)."""
    a = np.sort(np.asarray(values, dtype=float).ravel())
    position = q / 100 * (len(a) - 1)
    below = int(position)
    above = min(below + 1, len(a) - 1)
    t = position - below
    low, high = float(a[below]), float(a[above])
    return low + (high - low) * t if t < 0.5 else high - (high - low) * (1 - t)  # numpy's _lerp, both halves


def find_runs(mask: np.ndarray) -> Runs:
    """The mask's runs of ink per row, joined into 8-connected components.

    Only the mask's bounding box is scanned, so the cost follows the ink, not
    the image. Runs in neighbouring rows that touch are joined by a vectorised
    union-find (hook roots, then compress paths); components are numbered in
    raster order of their first run.
    """
    rows_with_ink = np.flatnonzero(mask.any(axis=1))
    if not len(rows_with_ink):
        empty = np.zeros(0, np.intp)
        return Runs(empty, empty, empty, empty, 0)
    columns = np.flatnonzero(mask[rows_with_ink[0] : rows_with_ink[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = rows_with_ink[0], rows_with_ink[-1] + 1, columns[0], columns[-1] + 1
    stride = x1 - x0 + 1  # one zero column after each row, so every run ends inside its row
    padded = np.zeros((y1 - y0, stride), np.int8)
    padded[:, :-1] = mask[y0:y1, x0:x1]
    flat = padded.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat[0]:
        changes = np.concatenate([[0], changes])
    starts, ends = changes[0::2], changes[1::2]  # ends exclusive
    rows = starts // stride
    n = len(rows)
    # Runs j in the row above touch run i when start_j <= end_i and start_i <= end_j
    # (one column of slack makes diagonal neighbours touch); positions are row * stride + column.
    first = np.searchsorted(ends, starts - stride, side="left")
    last = np.searchsorted(starts, ends - stride, side="right")
    count = np.maximum(last - first, 0)
    a = np.repeat(np.arange(n), count)
    b = np.arange(len(a)) - np.repeat(np.cumsum(count) - count - first, count)
    root = np.arange(n)
    while True:
        ra, rb = root[a], root[b]
        apart = ra != rb
        if not np.count_nonzero(apart):
            break
        ra, rb = ra[apart], rb[apart]
        np.minimum.at(root, np.maximum(ra, rb), np.minimum(ra, rb))  # hook the larger root under the smaller
        # Compress: every run points at its root. A parent's number is below its child's, so no path is longer
        # than n, and each jump halves every path: n.bit_length() jumps always suffice, with nothing to check.
        for _ in range(n.bit_length()):
            root = root[root]
    component = (np.cumsum(root == np.arange(n)) - 1)[root]  # roots numbered in order
    columns_start = starts - rows * stride
    return Runs(rows + y0, columns_start + x0, ends - rows * stride + x0, component, int(component.max()) + 1)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, list[Box], np.ndarray]:
    """8-connected components of a boolean mask: (labels 1..n, boxes, areas); 0 is background."""
    runs = find_runs(mask)
    return runs.labels(mask.shape), runs.boxes(), runs.areas()


def group_characters(ink: np.ndarray) -> tuple[np.ndarray, list[tuple[Box, list[int]]]]:
    """(component labels, characters left to right as (box, component numbers))."""
    runs = find_runs(ink > 0)
    return runs.labels(ink.shape), group_components(runs.boxes(), runs.areas())


def group_components(boxes: list[Box], areas: np.ndarray) -> list[tuple[Box, list[int]]]:
    """Components (numbered from 1, with their boxes and areas) -> characters left to right.

    Pieces are merged where they overlap horizontally, so the dot of an `i` or
    `j`, the two bars of `=` and a stroke drawn in two goes stay one character.
    A small fragment (a broken-off bar, a pen touch) joins its nearest
    neighbour instead of counting as a character of its own.
    """
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
    return _absorb_fragments(groups, areas)


def count_characters(ink: np.ndarray) -> int:
    """How many characters the ink holds, as segment_characters would split it (bench/before_after's old path).

    No label image is painted: the runs' boxes and areas are all the grouping needs.
    """
    return count_grouped(find_runs(ink > 0))


def count_grouped(runs: Runs) -> int:
    """How many characters the ink whose runs these are holds, pieces that overlap grouped (single mode's
    `pieces` hint; text mode's bound on a line, before its candidates are made)."""
    if runs.count < 2:  # one piece (or none) is one character (or none): nothing to group
        return runs.count
    return len(group_components(runs.boxes(), runs.areas()))


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
        if sizes[smallest] >= FRAGMENT_SHARE * median(sizes):
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
