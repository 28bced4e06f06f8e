"""Run every model and every input path once when an instance starts, on inputs drawn here.

A fresh process pays for first use: Pillow imports its format plugins on the
first decode, each model's interpreter is created and its first invoke sets
up its kernels, numpy and zlib warm their code paths. Without this, the first
user of each instance waited for all of that (bench/RESULTS.md: first request
against the warm median). With it, the instance starts a little later and
its first request costs a few milliseconds more than a warm one, not tens.
"""

from __future__ import annotations

import io
import json
import logging
import time

from PIL import Image, ImageDraw

from .api import MODES, read_request, recognize
from .errors import ApiError
from .inference import ModelFileError, ModelRegistry

LOG = logging.getLogger(__name__)
# A "7" as pen strokes on a 280x280 canvas, the shape the site sends.
SEVEN = [[[60, 60], [120, 58], [180, 57], [215, 60]], [[215, 60], [185, 120], [150, 180], [125, 235]]]


def images() -> list[tuple[str, bytes]]:
    """(content type, file) for each image path: a canvas PNG and a photo JPEG of the same "7"."""
    canvas = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(canvas)
    for stroke in SEVEN:
        draw.line([tuple(point) for point in stroke], fill=0, width=18, joint="curve")
    png, jpeg = io.BytesIO(), io.BytesIO()
    canvas.save(png, format="PNG")
    canvas.point(lambda v: 60 + v * 0.6).convert("RGB").save(jpeg, format="JPEG", quality=85)  # grey paper
    return [("image/png", png.getvalue()), ("image/jpeg", jpeg.getvalue())]


def warm_up(registry: ModelRegistry) -> float:
    """Every model in every mode on the canvas PNG, then a photo (single mode) and strokes in each mode.

    That touches every first-use cost without paying for the full cross product
    at every start. Returns the seconds it took; a failure is logged (a bug at ERROR), not fatal.
    """
    started = time.perf_counter()
    if not registry.names:  # nothing to warm: every request will be answered 503 model_unavailable
        return 0.0
    (_, png), (_, jpeg) = images()
    requests = [("image/png", png, {"model": name, "mode": mode}) for name in registry.names for mode in MODES]
    requests.append(("image/jpeg", jpeg, {}))  # a photo in text mode adds no first use, only 20 ms at every start
    for mode in MODES:  # strokes in text mode are read from the strokes themselves: a path of its own
        requests.append(("application/json", json.dumps({"strokes": SEVEN, "mode": mode}).encode(), {}))
    for content_type, body, fields in requests:
        try:
            recognize(read_request(content_type, body, fields, {}, {}, registry.names), registry)
        except (ApiError, ModelFileError) as error:
            LOG.warning("warm-up (%s, %s) failed: %s", content_type, fields, error)
        except Exception:  # a bug on one path must not keep the instance from serving the others
            LOG.exception("warm-up (%s, %s) failed", content_type, fields)
    return time.perf_counter() - started
