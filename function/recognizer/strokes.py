"""Pen strokes -> a grayscale image, drawn with a line width fitted to the writing.

A canvas image carries whatever pen width the person chose; strokes let the
server draw every character with the stroke width the models were trained on
(about a tenth of the character's size), whatever the canvas size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from .decode import MAX_WORK_WIDTH
from .errors import ApiError
from .preprocess import MIN_INK_SHARE

MAX_STROKES = 200
MAX_POINTS = 20_000  # over all strokes
MAX_CANVAS_SIDE = 10_000
MAX_COORDINATE = 10 * MAX_CANVAS_SIDE  # points may lie off the canvas, but not absurdly far
POINT_TYPES = (list, tuple)
NUMBER_TYPES = (int, float)  # checked by exact type first: a bool is an int too, and no coordinate
MAX_DRAWN_LENGTH = 100_000  # px of pen path once scaled for drawing; a 64-character line draws about 25,000
MAX_DRAWN_POINTS = 4_000  # each point costs a segment and maybe a disc; beyond this many, strokes are thinned
# JSON separators (',' and ':') a request can need: strokes at their limits and a few fields. Every element
# of a JSON list or object but one needs a separator, so counting them before parsing bounds json.loads'
# work: 10 MB of tiny lists would cost it about 0.8 CPU-s and 150 MB. (Deep nesting stops at Python's limit.)
MAX_NUMBERS_PER_POINT = 4  # x, y and what a pen event adds (a time, a pressure), which is ignored
MAX_JSON_SEPARATORS = MAX_NUMBERS_PER_POINT * MAX_POINTS + MAX_STROKES + 64
PEN_SHARE = 0.1  # line width as a share of the character size
SINGLE_SIZE = 160  # a single character is drawn this large (px, long side)
# A line of text is drawn this tall (px), and at most MAX_WORK_WIDTH long, as an image of a line is worked
# (decode.py): a longer line is drawn smaller, and so is its pen.
TEXT_HEIGHT = 96
JOINT_TURN = 0.5  # radians: where a stroke turns more sharply than this, its joint is drawn round


def check_json_structure(body: bytes) -> None:
    """Refuse (413) a JSON body with more elements than any valid request has, before it is parsed."""
    separators = body.count(b",") + body.count(b":")
    if separators > MAX_JSON_SEPARATORS:
        raise ApiError(
            413,
            "json_too_complex",
            f"the JSON body has {separators:,} commas and colons; a request needs at most "
            f"{MAX_JSON_SEPARATORS:,} ({MAX_POINTS:,} points of up to {MAX_NUMBERS_PER_POINT} numbers in "
            f"{MAX_STROKES} strokes)",
        )


def parse_strokes(strokes: object, width: object, height: object) -> list[np.ndarray]:
    """Validate the JSON strokes; every problem is a 400 that names the field."""
    for name, value in (("width", width), ("height", height)):
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= MAX_CANVAS_SIDE
        ):
            raise ApiError(400, "bad_strokes", f"'{name}' must be a number above 0 and at most {MAX_CANVAS_SIDE}")
    if not isinstance(strokes, list):
        raise ApiError(400, "bad_strokes", "'strokes' must be a list of strokes, each a list of [x, y] points")
    if len(strokes) > MAX_STROKES:
        raise ApiError(413, "too_many_strokes", f"{len(strokes)} strokes; the limit is {MAX_STROKES}")
    parsed, total = [], 0
    for stroke in strokes:
        if not isinstance(stroke, list):
            raise ApiError(400, "bad_strokes", "each stroke must be a list of [x, y] points")
        total += len(stroke)
        if total > MAX_POINTS:
            raise ApiError(413, "too_many_points", f"more than {MAX_POINTS} points in all strokes")
        points = [_point(point) for point in stroke]
        if points:
            parsed.append(np.array(points, np.float64))
    canvas_side = max(width or 0, height or 0)
    if parsed and _is_a_dot(np.concatenate(parsed), canvas_side):
        extent = f"under {MIN_INK_SHARE * 100:g} % of the canvas" if canvas_side else "all its points in one place"
        raise ApiError(422, "nothing_drawn", f"the drawing is only a dot ({extent}); draw a whole character")
    return parsed


def _point(point: object) -> list:
    """[x, y] of a JSON point; a 400 unless both are numbers within MAX_COORDINATE (not booleans, which are ints).

    Plain type and bound checks, no math.isfinite: NaN and infinity fail the
    bound anyway, and isfinite raises OverflowError on a JSON integer too large
    for a float. A request can hold MAX_POINTS points, so this stays lean.
    """
    if type(point) in POINT_TYPES and len(point) >= 2:
        x, y = point[0], point[1]
        if (
            (type(x) in NUMBER_TYPES or isinstance(x, float))  # numpy's float64 too, never a bool
            and (type(y) in NUMBER_TYPES or isinstance(y, float))
            and -MAX_COORDINATE <= x <= MAX_COORDINATE
            and -MAX_COORDINATE <= y <= MAX_COORDINATE
        ):
            return [x, y]
    raise ApiError(
        400, "bad_strokes", f"each point must be [x, y] with numbers between -{MAX_COORDINATE} and {MAX_COORDINATE}"
    )


def _is_a_dot(points: np.ndarray, canvas_side: float) -> bool:
    """A tap or a speck: scaled up to a character's size, it would read as a confident 0 or 8."""
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    return extent == 0 or extent < MIN_INK_SHARE * canvas_side


class Drawing(NamedTuple):
    """Strokes drawn as the models see them; client = pixel * scale + origin."""

    levels: np.ndarray  # uint8, ink bright (what serving works on: preprocess.to_ink takes them)
    scale: float
    origin: tuple[float, float]
    strokes: list[np.ndarray]  # the strokes as drawn (thinned), in the client's units
    pen: float  # the pen's width in pixels


def render_strokes(strokes: list[np.ndarray], text: bool) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Strokes -> (ink-bright float image, scale, origin): client = pixel * scale + origin."""
    drawing = draw_strokes(strokes, text)
    return drawing.levels.astype(np.float32) / 255.0, drawing.scale, drawing.origin


def draw_strokes(strokes: list[np.ndarray], text: bool) -> Drawing:
    """The strokes drawn at the size and with the pen the models were trained on (drawing_scale)."""
    points = np.concatenate(strokes)
    low = points.min(axis=0)
    span_x, span_y = points.max(axis=0) - low
    scale, pen = drawing_scale(points, text)
    drawn_length = scale * sum(float(np.hypot(*np.diff(stroke, axis=0).T).sum()) for stroke in strokes)
    if drawn_length > MAX_DRAWN_LENGTH:  # drawing time grows with it: a scribble of 20,000 long jumps is not writing
        size = f"{TEXT_HEIGHT} px tall" if text else f"{SINGLE_SIZE} px large"
        raise ApiError(
            413,
            "strokes_too_long",
            f"the strokes are {drawn_length:,.0f} px long when drawn {size}; the limit is {MAX_DRAWN_LENGTH:,}",
        )
    strokes = thin(strokes)
    margin = math.ceil(pen) + 2
    canvas = Image.new("L", (math.ceil(span_x * scale) + 2 * margin, math.ceil(span_y * scale) + 2 * margin), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        draw_stroke(draw, (stroke - low) * scale + margin, pen, 255)
    origin = (float(low[0] - margin / scale), float(low[1] - margin / scale))
    return Drawing(np.asarray(canvas), 1.0 / scale, origin, strokes, pen)


def draw_stroke(draw: ImageDraw.ImageDraw, xy: np.ndarray, width: float, fill: int) -> None:
    """One stroke as a round pen draws it: its segments, and a disc at both ends and wherever it turns.

    Pillow's own round joints (joint="curve") cost about 12 us of Python per
    point; a disc only where the stroke turns by more than JOINT_TURN leaves
    a notch of at most 0.02 of the pen's width elsewhere.
    """
    radius = width / 2
    if len(xy) > 1:
        draw.line(xy.ravel().tolist(), fill=fill, width=round(width))
    step = np.diff(xy, axis=0)
    heading = np.arctan2(step[:, 1], step[:, 0])
    turn = np.abs((np.diff(heading) + np.pi) % (2 * np.pi) - np.pi)
    corners = np.concatenate([[0], np.nonzero(turn > JOINT_TURN)[0] + 1, [len(xy) - 1]])
    for x, y in xy[corners].tolist():
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def drawing_scale(points: np.ndarray, text: bool) -> tuple[float, float]:
    """(drawn pixels per client unit, pen width in pixels) for strokes with these points.

    The pen follows the size the writing is drawn at: a long line drawn
    smaller with a pen fitted to TEXT_HEIGHT would fill its letters in.
    """
    span_x, span_y = points.max(axis=0) - points.min(axis=0)
    if not text:
        return SINGLE_SIZE / max(span_x, span_y, 1.0), pen_width(SINGLE_SIZE)
    scale = TEXT_HEIGHT / max(span_y, span_x * TEXT_HEIGHT / MAX_WORK_WIDTH, 1.0)
    return scale, pen_width(span_y * scale)


def pen_width(size: float) -> float:
    """The line width for writing drawn `size` px large (a character's long side, or a line's height)."""
    return max(2.0, PEN_SHARE * size)


def thin(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """The strokes with at most about MAX_DRAWN_POINTS points, evenly spaced along their length.

    Each drawn point costs a segment (and a disc where the stroke turns), in
    the drawing and in the stroke labels text mode draws
    (reader.stroke_atoms): both draw these points.
    """
    if sum(map(len, strokes)) <= MAX_DRAWN_POINTS:
        return strokes
    length = sum(float(np.hypot(*np.diff(stroke, axis=0).T).sum()) for stroke in strokes)
    return [_thinned(stroke, length / MAX_DRAWN_POINTS) for stroke in strokes]


def _thinned(stroke: np.ndarray, spacing: float) -> np.ndarray:
    """The stroke's first point, then one point per `spacing` of its length, and its last point."""
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))])
    step = np.floor(along / spacing) if spacing > 0 else np.zeros(len(stroke))
    keep = np.concatenate([[True], step[1:] != step[:-1]])
    keep[-1] = True
    return stroke[keep]
