"""The API contract: a request's parts -> an `Answer`, independent of HTTP.

`read_request` turns the four input forms into one `Job`; `recognize` runs it
through named stages, each a small function (docs/ARCHITECTURE.md):

    read -> find_ink -> (closer) -> find_writing -> find_character / find_candidates -> prepare + Model.outputs /
    decide -> decode / decode_text -> Answer

Each client mistake raises ApiError with the status the contract names.
"""

from __future__ import annotations

import base64
import binascii
import collections
import difflib
import json
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import reader
from .decode import ALLOWED_FORMATS, decode_levels, decode_region, sniff_image_format, working_side
from .errors import ApiError
from .inference import Model, ModelRegistry
from .language_model import load_language_model
from .preprocess import MIN_INK_SHARE, PROFILES, ink_box, to_ink
from .segment import Runs, count_grouped, find_runs
from .strokes import draw_strokes, parse_strokes

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_CHARACTERS = 64  # pieces found in text mode
# Text mode: letters under CLOSE_LETTER working pixels tall are read again from the file, closer, at LETTER
# pixels where it has them (a word filling an eighth of a 12 MP photo is 8 px tall at WORK_SIZE); the part read
# is the ink's box and a letter height around it.
CLOSE_LETTER = 20
LETTER = 32
MIN_ZOOM = 1.5  # ... when the file has at least this many times the pixels
MODES = ("single", "text")
CONTEXTS = ("words", "none")  # text mode: read words in context (default), or each character on its own
OPTIONS = ("model", "mode", "context")  # JSON fields, form fields or query parameters, with any input form
STROKE_CANVAS = ("width", "height")  # JSON strokes' canvas size: with an image they have no meaning
JSON_FIELDS = ("image", "strokes", *STROKE_CANVAS, *OPTIONS)
FORM_FIELDS = ("image", *OPTIONS)  # 'image' as a file part, or as a text field holding base64 or a data: URL
SHOWN_NAME = 40  # characters of an unknown field's name quoted back (and looked up for a likely meaning)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif", "application/octet-stream")
TOP_K = 5
PROBABILITY_FLOOR = 0.0001  # answered probabilities lie in [0.0001, 0.9999]


@dataclass(frozen=True)
class Job:
    """One validated request: which model, which mode, and exactly one of an image file or pen strokes."""

    model: str
    mode: str
    image: bytes | None = None
    strokes: list | None = None
    context: str = CONTEXTS[0]


@dataclass(frozen=True)
class Picture:
    """A grayscale working image (uint8 levels) and how its pixels map to the client's: client = pixel * scale + origin."""

    gray: np.ndarray
    scale: float
    origin: tuple[float, float] = (0.0, 0.0)
    strokes: list[np.ndarray] | None = None  # pen strokes as drawn (thinned), for text mode's stroke labels
    pen: float = 0.0  # their pen's width in pixels

    def to_client(self, box: tuple[int, int, int, int]) -> list[float]:
        x, y, width, height = box
        ox, oy = self.origin
        return [round(x * self.scale + ox, 1), round(y * self.scale + oy, 1)] + [
            round(v * self.scale, 1) for v in (width, height)
        ]


@dataclass(frozen=True)
class Piece:
    """One character's ink: its box (x, y, width, height) in working pixels and the ink cropped to it."""

    box: tuple[int, int, int, int]
    ink: np.ndarray


@dataclass(frozen=True)
class Reading:
    """What one character of a line was read as, and whether the model rejected it (still read, and marked)."""

    prediction: str
    confidence: float
    top: list[dict]
    box: list[float]
    rejected: bool = False

    def to_json(self) -> dict:
        answer = {"prediction": self.prediction, "confidence": self.confidence, "rejected": self.rejected}
        return answer | {"box": self.box, "top": self.top}


@dataclass(frozen=True)
class Decoded:
    """Stage 5's result: the reading of the whole input (text mode: the string and each character's reading)."""

    prediction: str | None
    confidence: float | None
    top: list[dict]
    characters: list[Reading] | None = None  # text mode only
    alternatives: list[dict] | None = None  # text mode: up to five readings {"text", "probability"}, best first
    words: list[dict] | None = None  # text mode: {"text", "box"} of each word of the best reading
    used: list[int] | None = None  # text mode: the candidates read as characters, for `input`
    rejected: bool = False  # the model says this is none of its classes (text mode: none of the characters is)
    reason: str | None = None  # why it was rejected, e.g. not_a_digit


@dataclass(frozen=True)
class Answer:
    """The 200 answer; `to_json` is the one place its JSON shape is written."""

    model: str
    model_version: str
    mode: str
    decoded: Decoded
    pieces: int  # separate characters found: a single-mode drawing of several says so
    input_png: str
    timing_ms: dict[str, float]

    def to_json(self) -> dict:
        decoded = self.decoded
        answer = {"model": self.model, "model_version": self.model_version, "mode": self.mode}
        answer |= {"prediction": decoded.prediction, "confidence": decoded.confidence, "top": decoded.top}
        answer |= {"rejected": decoded.rejected, "reason": decoded.reason}
        if decoded.characters is not None:
            answer |= {"text": decoded.prediction, "characters": [c.to_json() for c in decoded.characters]}
            answer |= {"alternatives": decoded.alternatives, "words": decoded.words}
        else:
            answer |= {"pieces": self.pieces}
        return answer | {"input": self.input_png, "timing_ms": self.timing_ms}


def read_request(content_type: str, body: bytes, query: dict, form: dict, files: dict, models: tuple[str, ...]) -> Job:
    """Decide the input form from the content type and validate its fields; `models` are the names served.

    `query` holds the query string's parameters (options only), `form` and `files` a multipart body's
    text fields and file parts.
    """
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            payload = json.loads(body, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            if image_format := sniff_image_format(body):
                advice = (
                    f"send it with its own Content-Type (one of {', '.join(IMAGE_TYPES)}), or as base64 in "
                    '{"image": ...}'
                    if image_format in ALLOWED_FORMATS
                    else "send a PNG, JPEG, WebP, BMP or GIF file"
                )
                raise ApiError(400, "bad_json", f"the body is a {image_format} image, not JSON: {advice}") from exc
            raise ApiError(400, "bad_json", f"the body is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise ApiError(400, "bad_json", "the JSON body must be an object with 'image' or 'strokes'")
        _known(payload, JSON_FIELDS, "a JSON body")
        _known(query, OPTIONS, "the query string")
        return _json_job(payload, query, models)
    if media == "multipart/form-data":
        _known(form, FORM_FIELDS, "a form")
        _known(files, ("image",), "a form's file part")
        _known(query, OPTIONS, "the query string")
        if both := set(form) & set(files):  # a text field and a file part of one name
            raise given_twice(min(both), 2, "the form")
        upload = files.get("image")
        if upload is None and isinstance(form.get("image"), str):  # FormData.append("image", dataUrl)
            upload = _base64(form["image"])
        if upload is None:
            raise ApiError(
                400,
                "missing_image",
                "send the image as a file part named 'image' (curl -F image=@digit.png), "
                "or its base64 or data: URL in a form field named 'image'",
            )
        model, mode, context = _options({**query, **form}, models)
        return Job(model, mode, image=upload, context=context)
    if media in IMAGE_TYPES:
        _known(query, OPTIONS, "the query string")
        model, mode, context = _options(query, models)
        return Job(model, mode, image=body, context=context)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {media or '(none)'} is not accepted; send application/json, multipart/form-data "
        f"or the image itself as one of {', '.join(IMAGE_TYPES)}",
    )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are each given once: {"model": "digits", "model": "characters"} has no one meaning."""
    answer = dict(pairs)
    if len(answer) < len(pairs):  # counted once, not per key: an object may have 20,000 keys
        counts = collections.Counter(key for key, _ in pairs)
        name = next(key for key in answer if counts[key] > 1)
        raise given_twice(name, counts[name], "the JSON body")
    return answer


def given_twice(name: str, times: int, where: str) -> ApiError:
    message = f"{name[:SHOWN_NAME]!r} is given {times} times in {where}; send each field once"
    return ApiError(400, "duplicate_field", message)


def _known(source: dict, names: tuple[str, ...], where: str) -> None:
    """Refuse a name the API does not know: a misspelt option must not be answered as if it were absent."""
    for name in source:
        if name not in names:
            # Only a name of an option's length can be a misspelling; difflib's cost grows with the name.
            close = difflib.get_close_matches(name, names, n=2) if len(name) <= SHOWN_NAME else []
            hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            message = f"unknown field {name[:SHOWN_NAME]!r}; {hint}{where} takes: {', '.join(names)}"
            raise ApiError(400, "unknown_field", message)


def _options(source: dict, models: tuple[str, ...]) -> tuple[str, str, str]:
    """(model, mode, context) from a JSON body, form fields or the query string."""
    return _choice(source, "model", models), _choice(source, "mode", MODES), _choice(source, "context", CONTEXTS)


def _json_job(payload: dict, query: dict, models: tuple[str, ...]) -> Job:
    """A JSON body's job; an option the body leaves out (or sets to null) comes from the query string."""
    model, mode, context = _options({**query, **{k: v for k, v in payload.items() if v is not None}}, models)
    has_image, has_strokes = payload.get("image") is not None, payload.get("strokes") is not None
    if has_image == has_strokes:
        raise ApiError(400, "missing_image", "send exactly one of 'image' (base64 or data: URL) and 'strokes'")
    if has_strokes:
        strokes = parse_strokes(payload["strokes"], payload.get("width"), payload.get("height"))
        return Job(model, mode, strokes=strokes, context=context)
    if given := [k for k in STROKE_CANVAS if payload.get(k) is not None]:  # an image has its own size
        message = (
            f"'{given[0]}' is the size of the canvas 'strokes' were drawn on; an image's own size is used: leave it out"
        )
        raise ApiError(400, "unknown_field", message)
    image = payload["image"]
    if not isinstance(image, str):
        raise ApiError(400, "bad_image", "'image' must be a base64 string or a data: URL")
    return Job(model, mode, image=_base64(image), context=context)


def _base64(text: str) -> bytes:
    text = text.strip()
    if text[:5].lower() == "data:":  # URL schemes are case-insensitive (RFC 3986)
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(400, "bad_base64", "the data: URL must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "bad_base64", f"'image' is not valid base64 ({exc})") from exc


def _choice(source: dict, key: str, allowed: tuple[str, ...]) -> str:
    """The field's value, or the first allowed one when the field is absent (or JSON null).

    Any other value that is not one of `allowed` is refused, falsy ones too:
    `false`, `0`, `""` or `[]` is a client mistake, not a request for the default.
    """
    value = source.get(key)
    if value is None:
        return allowed[0]
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"bad_{key}", f"'{key}' must be one of the strings: {', '.join(allowed)}")
    if value not in allowed:
        status = 404 if key == "model" else 400
        raise ApiError(status, f"unknown_{key}", f"unknown {key} {value!r}; use one of: {', '.join(allowed)}")
    return value


def recognize(job: Job, registry: ModelRegistry) -> Answer:
    """Run one job through the stages; the model is loaded once per instance, outside this request's timing."""
    model = registry.get(job.model)
    text = job.mode == "text"
    started = time.perf_counter()
    picture = read(job)
    decoded_at = time.perf_counter()
    ink = find_ink(picture)
    runs = find_runs(ink > 0)
    if text and job.image is not None:
        picture, ink, runs = closer(job.image, picture, ink, runs)
    ink, runs = find_writing(ink, runs)
    if text:
        lattice = find_candidates(ink, runs, _stroke_atoms(picture, ink))
        pieces = [Piece(c.box, c.crop) for c in lattice.pieces]
    else:
        pieces = [find_character(ink)]
    inputs = prepare(model, pieces)
    prepared = time.perf_counter()
    outputs = model.outputs(inputs)
    probabilities, rejected = model.decide(outputs)
    inferred = time.perf_counter()
    if text:
        fragments = model.reject_probability(outputs)
        decoded = decode_text(model, job.context, probabilities, rejected, fragments, lattice, picture, registry.folder)
    else:
        decoded = decode(model, probabilities[0], bool(rejected[0]))
    pieces_found = len(decoded.characters) if text else count_grouped(runs)
    shown = inputs if decoded.used is None else inputs[decoded.used]
    input_png = png_data_url(np.concatenate(list(shown), axis=1))
    timing_ms = {
        "decode": _ms(started, decoded_at),
        "preprocess": _ms(decoded_at, prepared),
        "inference": _ms(prepared, inferred),
        "total": _ms(started, time.perf_counter()),
    }
    return Answer(model.name, model.version, job.mode, decoded, pieces_found, input_png, timing_ms)


def read(job: Job) -> Picture:
    """Stage 1: the image file decoded, or the strokes drawn, as a grayscale working image."""
    if job.strokes is not None:
        if not job.strokes:
            raise ApiError(422, "nothing_drawn", "the strokes are empty; draw a character")
        drawing = draw_strokes(reader.drop_stray_taps(job.strokes), job.mode == "text")
        return Picture(drawing.levels, drawing.scale, drawing.origin, drawing.strokes, drawing.pen)
    gray, scale = decode_levels(job.image)
    return Picture(gray, scale)


def find_ink(picture: Picture) -> np.ndarray:
    """Stage 2: ink bright on black, paper and specks removed; a 422 when there is none."""
    ink = to_ink(picture.gray)
    if not ink.any():
        raise _nothing_drawn()
    return ink


def closer(data: bytes, picture: Picture, ink: np.ndarray, runs: Runs) -> tuple[Picture, np.ndarray, Runs]:
    """Stage 2b, text mode: (picture, ink, its runs) again from the file at a scale where letters are LETTER
    pixels tall, where they are under CLOSE_LETTER and the file has the pixels; else as they are."""
    height = reader.letter_height(runs.boxes())
    if height >= CLOSE_LETTER:
        return picture, ink, runs
    x, y, width, height_px = ink_box(ink)
    margin = height
    box = [(v - margin) * picture.scale for v in (x, y)] + [
        (v + 2 * margin) * picture.scale for v in (width, height_px)
    ]
    # The file's pixels per working pixel, closer: never finer than the file, and a long line at working_side.
    scale = max(1.0, picture.scale * height / LETTER, max(box[2:]) / working_side(*box[2:]))
    if scale * MIN_ZOOM > picture.scale:  # the file has little more
        return picture, ink, runs
    region = decode_region(data, tuple(box), scale)
    if region is None:  # too large to decode twice in one request
        return picture, ink, runs
    near = Picture(*region)
    near_ink = to_ink(near.gray)
    return (near, near_ink, find_runs(near_ink > 0)) if near_ink.any() else (picture, ink, runs)


def find_writing(ink: np.ndarray, runs: Runs | None = None) -> tuple[np.ndarray, Runs]:
    """Stage 2c: (the ink, its runs) without the dots that stand apart from the writing (reader.drop_stray_dots);
    `runs` are the ink's, where the caller has them."""
    return reader.drop_stray_dots(ink, find_runs(ink > 0) if runs is None else runs)


def find_character(ink: np.ndarray) -> Piece:
    """Stage 3, single mode: all the ink is the one character."""
    x, y, width, height = box = ink_box(ink)
    return Piece(box, ink[y : y + height, x : x + width])  # crop_to_ink's crop, without finding the box again


def find_candidates(ink: np.ndarray, runs: Runs, atoms: np.ndarray | None = None) -> reader.Lattice:
    """Stage 3, text mode: the candidate characters (pieces of ink or strokes, cuts, merges) for the search;
    `runs` are the ink's (find_runs of ink > 0)."""
    count = count_grouped(runs)
    if count > MAX_CHARACTERS:
        raise ApiError(422, "too_many_characters", f"found {count} characters; the limit is {MAX_CHARACTERS}")
    return reader.candidate_pieces(ink, atoms, runs)


def _stroke_atoms(picture: Picture, ink: np.ndarray) -> np.ndarray | None:
    """Pen strokes are the atoms of a line: a stroke is never split between characters."""
    if picture.strokes is None:
        return None
    return reader.stroke_atoms(picture.strokes, ink, picture.scale, picture.origin, picture.pen)


def prepare(model: Model, pieces: list[Piece]) -> np.ndarray:
    """Stage 4a: each piece framed the way the model's training data was, stacked for one model call."""
    profile = PROFILES[model.profile]
    return np.stack([profile(piece.ink) for piece in pieces])


def decode(model: Model, probabilities: np.ndarray, rejected: bool) -> Decoded:
    """Stage 5, single mode: the model's probabilities -> the label, or a rejection (text mode: decode_text).

    A rejected input ("none of these": a scribble, a letter in digit mode) has
    no prediction or confidence; its top-k of real classes is still listed.
    """
    top = _top(probabilities, model.labels)
    if rejected:
        return Decoded(None, None, top, rejected=True, reason=model.rejection_reason)
    return Decoded(top[0]["label"], top[0]["probability"], top)


def decode_text(
    model: Model,
    context: str,
    probabilities: np.ndarray,
    rejected: np.ndarray,
    fragments: np.ndarray | None,
    lattice: reader.Lattice,
    picture: Picture,
    models_folder: Path,
) -> Decoded:
    """Stage 5, text mode: the search's best readings (reader.read) -> the string, its characters and words.

    The English language model reads words in `context` "words" for a model
    with letters; the digits model and context "none" search without it.
    `fragments` is each candidate's P(none of these) from the model's reject
    output: the search weighs it (reader.Weights.reject) rather than dropping
    rejected candidates, which lost whole characters on lines of training
    glyphs (digit lines 84.5 -> 76.5 % exact, n = 200). A character the model
    rejected is still read, and marked in `characters`; when the model
    rejected every character read, the line as a whole is rejected as single
    mode rejects a drawing (no text or confidence; the readings still listed).
    """
    language_model = load_language_model(models_folder) if context == "words" and _has_letters(model) else None
    readings = reader.read(lattice, probabilities, model.labels, language_model, rejection=fragments)
    best = readings[0]
    characters = []
    for index, label in best.characters:
        box = picture.to_client(lattice.pieces[index].box)
        top = _top(probabilities[index], model.labels)
        confidence = probability(float(probabilities[index][model.labels.index(label)]))
        characters.append(Reading(label, confidence, top, box, rejected=bool(rejected[index])))
    words = [
        {"text": text, "box": picture.to_client(_union([lattice.pieces[i].box for i in used]))}
        for text, used in best.words
        if used
    ]
    alternatives = [{"text": r.text, "probability": probability(r.probability)} for r in readings]
    top = [{"label": a["text"], "probability": a["probability"]} for a in alternatives]
    used = [index for index, _ in best.characters]
    if characters and all(c.rejected for c in characters):  # a scribble, or letters in the digits model
        reason = model.rejection_reason
        return Decoded(None, None, top, characters, alternatives, words, used, rejected=True, reason=reason)
    return Decoded(best.text, alternatives[0]["probability"], top, characters, alternatives, words, used)


def _has_letters(model: Model) -> bool:
    return any(label.isalpha() for label in model.labels)


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def probability(p: float) -> float:
    """A probability as answered: 4 decimals, and never exactly 0 or 1 (no model is that sure)."""
    return min(max(round(p, 4), PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)


def _nothing_drawn() -> ApiError:
    message = (
        "no ink was found in the image, or only specks (writing must span at least "
        f"{MIN_INK_SHARE * 100:g} % of the image's long side); draw or photograph a character, large enough to see"
    )
    return ApiError(422, "nothing_drawn", message)


def _top(p: np.ndarray, labels: list[str]) -> list[dict]:
    order = np.argsort(-p, kind="stable")[:TOP_K]  # ties in label order
    return [{"label": labels[i], "probability": probability(float(p[i]))} for i in order]


def png_data_url(image: np.ndarray) -> str:
    """A float image in [0, 1] as a data: URL, so a client can show what the model saw.

    Written directly (8-bit grayscale, no row filters, zlib): for a 28-pixel strip
    this is half the CPU of Pillow's encoder (bench/RESULTS.md) and a few bytes smaller.
    """
    pixels = np.round(image * 255).astype(np.uint8)
    height, width = pixels.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row starts with its filter type, 0 (none)
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes()))
    return "data:image/png;base64," + base64.b64encode(png + _png_chunk(b"IEND", b"")).decode()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)
