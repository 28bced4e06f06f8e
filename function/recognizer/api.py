"""The API contract: a request's parts -> recognized text, independent of HTTP.

`read_request` turns the four input forms into one `Job`; `recognize` runs it.
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
from .inference import ModelRegistry
from .preprocess import PROFILES, crop_to_ink, ink_box, to_ink
from .segment import segment_characters
from .strokes import parse_strokes, render_strokes

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_CHARACTERS = 64  # pieces found in text mode
MODELS = ("digits", "characters")
MODES = ("single", "text")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif", "application/octet-stream")
TOP_K = 5


@dataclass(frozen=True)
class Job:
    model: str
    mode: str
    image: bytes | None = None
    strokes: list | None = None


def read_request(content_type: str, body: bytes, fields: dict, files: dict) -> Job:
    """Decide the input form from the content type and validate its fields."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ApiError(400, "bad_json", f"the body is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict):
            raise ApiError(400, "bad_json", "the JSON body must be an object with 'image' or 'strokes'")
        return _json_job(payload)
    if media == "multipart/form-data":
        upload = files.get("image")
        if upload is None:
            raise ApiError(
                400, "missing_image", "send the image in a form field named 'image' (curl -F image=@digit.png)"
            )
        return Job(_choice(fields, "model", MODELS), _choice(fields, "mode", MODES), image=upload)
    if media in IMAGE_TYPES:
        return Job(_choice(fields, "model", MODELS), _choice(fields, "mode", MODES), image=body)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {media or '(none)'} is not accepted; send application/json, multipart/form-data or an image type",
    )


def _json_job(payload: dict) -> Job:
    model, mode = _choice(payload, "model", MODELS), _choice(payload, "mode", MODES)
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
    value = source.get(key) or allowed[0]
    if not isinstance(value, str):
        raise ApiError(400, f"bad_{key}", f"'{key}' must be a string, one of: {', '.join(allowed)}")
    if value not in allowed:
        status = 404 if key == "model" else 400
        raise ApiError(status, f"unknown_{key}", f"unknown {key} {value!r}; use one of: {', '.join(allowed)}")
    return value


def recognize(job: Job, registry: ModelRegistry) -> dict:
    """Run one job: picture -> ink -> characters -> model -> the contract's answer."""
    model = registry.get(job.model)  # loaded once per instance; not part of this request's timing
    started = time.perf_counter()
    text = job.mode == "text"
    if job.strokes is not None:
        if not job.strokes:
            raise _nothing_drawn()
        gray, scale, origin = render_strokes(job.strokes, text)
    else:
        gray, scale = decode_image(job.image)
        origin = (0.0, 0.0)
    decoded = time.perf_counter()

    ink = to_ink(gray)
    if not ink.any():
        raise _nothing_drawn()
    if text:
        pieces = segment_characters(ink)
        if len(pieces) > MAX_CHARACTERS:
            raise ApiError(422, "too_many_characters", f"found {len(pieces)} characters; the limit is {MAX_CHARACTERS}")
        boxes = [(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0) for b, _ in pieces]
        crops = [crop_to_ink(crop) for _, crop in pieces]
    else:
        boxes = [ink_box(ink)]
        crops = [crop_to_ink(ink)]
    profile = PROFILES[model.profile]
    inputs = np.stack([profile(crop) for crop in crops])
    prepared = time.perf_counter()

    probabilities = model.probabilities(inputs)
    inferred = time.perf_counter()

    characters = [
        {
            "prediction": model.labels[int(p.argmax())],
            "confidence": round(float(p.max()), 4),
            "box": [round(v * scale + o, 1) for v, o in zip(box, (*origin, 0, 0), strict=True)],
            "top": _top(p, model.labels),
        }
        for p, box in zip(probabilities, boxes, strict=True)
    ]
    answer = {"model": model.name, "model_version": model.version, "mode": job.mode}
    if text:
        best = _best_strings(probabilities, model.labels)
        answer |= {
            "prediction": best[0]["label"],
            "confidence": best[0]["probability"],
            "top": best,
            "text": best[0]["label"],
            "characters": characters,
        }
    else:
        answer |= {k: characters[0][k] for k in ("prediction", "confidence", "top")}
    answer["input"] = _png_data_url(np.concatenate(list(inputs), axis=1))
    answer["timing_ms"] = {
        "decode": _ms(started, decoded),
        "preprocess": _ms(decoded, prepared),
        "inference": _ms(prepared, inferred),
        "total": _ms(started, time.perf_counter()),
    }
    return answer


def _nothing_drawn() -> ApiError:
    return ApiError(422, "nothing_drawn", "no ink was found in the image; draw or photograph a character")


def _top(p: np.ndarray, labels: list[str]) -> list[dict]:
    order = np.argsort(-p, kind="stable")[:TOP_K]  # ties in label order
    return [{"label": labels[i], "probability": round(float(p[i]), 4)} for i in order]


def _best_strings(probabilities: np.ndarray, labels: list[str]) -> list[dict]:
    """The TOP_K most probable strings, treating the characters as independent."""
    beam = [("", 1.0)]
    for p in probabilities:
        options = np.argsort(-p, kind="stable")[:TOP_K]
        beam = sorted(((s + labels[i], q * float(p[i])) for s, q in beam for i in options), key=lambda b: -b[1])[:TOP_K]
    return [{"label": s, "probability": round(q, 4)} for s, q in beam]


def _png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)
