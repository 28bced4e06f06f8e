"""The API contract: a request's parts -> an `Answer`, independent of HTTP.

`read_request` turns the four input forms into one `Job`; `recognize` runs it
through named stages, each a small function (docs/ARCHITECTURE.md):

    read -> find_ink -> find_pieces -> classify -> decode -> Answer

Each client mistake raises ApiError with the status the contract names.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .decode import decode_image
from .errors import ApiError
from .inference import Model, ModelRegistry
from .preprocess import PROFILES, crop_to_ink, ink_box, to_ink
from .segment import count_characters, segment_characters
from .strokes import parse_strokes, render_strokes

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_CHARACTERS = 64  # pieces found in text mode
MODES = ("single", "text")
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


@dataclass(frozen=True)
class Picture:
    """A grayscale working image and how its pixels map back to the client's: client = pixel * scale + origin."""

    gray: np.ndarray
    scale: float
    origin: tuple[float, float] = (0.0, 0.0)

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
    """What one character was read as: the most probable label, or nothing when the model rejected it.

    A rejected piece ("none of these": a scribble, a letter in digit mode) has
    no prediction or confidence; its top-k of real classes is still listed.
    """

    prediction: str | None
    confidence: float | None
    top: list[dict]
    box: list[float] | None = None
    rejected: bool = False

    def to_json(self) -> dict:
        answer = {"prediction": self.prediction, "confidence": self.confidence, "rejected": self.rejected}
        if self.box is not None:
            answer["box"] = self.box
        return answer | {"top": self.top}


@dataclass(frozen=True)
class Decoded:
    """Stage 5's result: the reading of the whole input (text mode: the string and each character's reading)."""

    prediction: str | None
    confidence: float | None
    top: list[dict]
    characters: list[Reading] | None = None  # text mode only
    rejected: bool = False  # single mode: the model says this is none of its classes
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
        if decoded.characters is not None:
            answer |= {"text": decoded.prediction, "characters": [c.to_json() for c in decoded.characters]}
        else:
            answer |= {"rejected": decoded.rejected, "reason": decoded.reason, "pieces": self.pieces}
        return answer | {"input": self.input_png, "timing_ms": self.timing_ms}


def read_request(content_type: str, body: bytes, fields: dict, files: dict, models: tuple[str, ...]) -> Job:
    """Decide the input form from the content type and validate its fields; `models` are the names served."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ApiError(400, "bad_json", f"the body is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise ApiError(400, "bad_json", "the JSON body must be an object with 'image' or 'strokes'")
        return _json_job(payload, models)
    if media == "multipart/form-data":
        upload = files.get("image")
        if upload is None:
            raise ApiError(
                400, "missing_image", "send the image in a form field named 'image' (curl -F image=@digit.png)"
            )
        return Job(_choice(fields, "model", models), _choice(fields, "mode", MODES), image=upload)
    if media in IMAGE_TYPES:
        return Job(_choice(fields, "model", models), _choice(fields, "mode", MODES), image=body)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {media or '(none)'} is not accepted; send application/json, multipart/form-data or an image type",
    )


def _json_job(payload: dict, models: tuple[str, ...]) -> Job:
    model, mode = _choice(payload, "model", models), _choice(payload, "mode", MODES)
    has_image, has_strokes = payload.get("image") is not None, payload.get("strokes") is not None
    if has_image == has_strokes:
        raise ApiError(400, "missing_image", "send exactly one of 'image' (base64 or data: URL) and 'strokes'")
    if has_strokes:
        strokes = parse_strokes(payload["strokes"], payload.get("width"), payload.get("height"))
        return Job(model, mode, strokes=strokes)
    image = payload["image"]
    if not isinstance(image, str):
        raise ApiError(400, "bad_image", "'image' must be a base64 string or a data: URL")
    return Job(model, mode, image=_base64(image))


def _base64(text: str) -> bytes:
    if text.startswith("data:"):
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
    pieces = find_pieces(ink, text)
    inputs = prepare(model, pieces)
    prepared = time.perf_counter()
    probabilities, rejected = model.predict(inputs)
    inferred = time.perf_counter()
    decoded = decode(model, job.mode, probabilities, rejected, pieces, picture)
    pieces_found = len(pieces) if text else count_characters(ink)
    input_png = png_data_url(np.concatenate(list(inputs), axis=1))
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
            raise _nothing_drawn()
        gray, scale, origin = render_strokes(job.strokes, job.mode == "text")
        return Picture(gray, scale, origin)
    gray, scale = decode_image(job.image)
    return Picture(gray, scale)


def find_ink(picture: Picture) -> np.ndarray:
    """Stage 2: ink bright on black, paper and specks removed; a 422 when there is none."""
    ink = to_ink(picture.gray)
    if not ink.any():
        raise _nothing_drawn()
    return ink


def find_pieces(ink: np.ndarray, text: bool) -> list[Piece]:
    """Stage 3: the characters' ink, left to right (text mode), or all the ink as one character."""
    if not text:
        return [Piece(ink_box(ink), crop_to_ink(ink))]
    pieces = segment_characters(ink)
    if len(pieces) > MAX_CHARACTERS:
        raise ApiError(422, "too_many_characters", f"found {len(pieces)} characters; the limit is {MAX_CHARACTERS}")
    return [Piece((b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0), crop_to_ink(crop)) for b, crop in pieces]


def prepare(model: Model, pieces: list[Piece]) -> np.ndarray:
    """Stage 4a: each piece framed the way the model's training data was, stacked for one model call."""
    profile = PROFILES[model.profile]
    return np.stack([profile(piece.ink) for piece in pieces])


def decode(
    model: Model, mode: str, probabilities: np.ndarray, rejected: np.ndarray, pieces: list[Piece], picture: Picture
) -> Decoded:
    """Stage 5: the model's probabilities -> the reading. Text mode reads the characters as independent."""
    readings = [
        _reading(p, model.labels, bool(no), picture.to_client(piece.box))
        for p, no, piece in zip(probabilities, rejected, pieces, strict=True)
    ]
    if mode != "text":
        first = readings[0]
        reason = model.rejection_reason if first.rejected else None
        return Decoded(first.prediction, first.confidence, first.top, rejected=first.rejected, reason=reason)
    kept = probabilities[~rejected]  # a rejected piece is marked in `characters`, not read as a character
    strings = _best_strings(kept, model.labels) if len(kept) else [{"label": "", "probability": probability(1.0)}]
    return Decoded(strings[0]["label"], strings[0]["probability"], strings, readings)


def _reading(p: np.ndarray, labels: list[str], rejected: bool, box: list[float]) -> Reading:
    top = _top(p, labels)
    if rejected:
        return Reading(None, None, top, box, rejected=True)
    return Reading(top[0]["label"], top[0]["probability"], top, box)


def probability(p: float) -> float:
    """A probability as answered: 4 decimals, and never exactly 0 or 1 (no model is that sure)."""
    return min(max(round(p, 4), PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)


def _nothing_drawn() -> ApiError:
    return ApiError(422, "nothing_drawn", "no ink was found in the image; draw or photograph a character")


def _top(p: np.ndarray, labels: list[str]) -> list[dict]:
    order = np.argsort(-p, kind="stable")[:TOP_K]  # ties in label order
    return [{"label": labels[i], "probability": probability(float(p[i]))} for i in order]


def _best_strings(probabilities: np.ndarray, labels: list[str]) -> list[dict]:
    """The TOP_K most probable strings, treating the characters as independent."""
    beam = [("", 1.0)]
    for p in probabilities:
        options = np.argsort(-p, kind="stable")[:TOP_K]
        beam = sorted(((s + labels[i], q * float(p[i])) for s, q in beam for i in options), key=lambda b: -b[1])[:TOP_K]
    return [{"label": s, "probability": probability(q)} for s, q in beam]


def png_data_url(image: np.ndarray) -> str:
    """A float image in [0, 1] as a data: URL, so a client can show what the model saw."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)
