"""Bytes from a client -> a grayscale float image, within explicit limits.

Everything here treats its input as hostile: the format is checked against a
short allow-list, the declared pixel count is checked before any pixel is
decoded (decompression bombs), and any decoder failure becomes a 4xx.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError

MAX_PIXELS = 25_000_000  # declared width x height; a 12 MP phone photo fits twice
MAX_SIDE = 20_000
WORK_SIZE = 512  # long side the preprocessing works at: ample for a 20x20 box per character
ALLOWED_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF"}  # MPO: a phone camera's JPEG

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def decode_image(data: bytes) -> tuple[np.ndarray, float]:
    """Image file bytes -> (grayscale float32 in [0, 1] at most WORK_SIZE on its long side, scale).

    `scale` maps working pixels back to the uploaded image's pixels (after
    EXIF orientation), so boxes can be answered in the client's coordinates.
    """
    if not data:
        raise ApiError(400, "empty_image", "the image is empty; send a PNG, JPEG, WebP, BMP or GIF file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ApiError(
                    415,
                    "unsupported_image_type",
                    f"{image.format} images are not supported; send PNG, JPEG, WebP, BMP or GIF",
                )
            width, height = image.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise _too_large(width, height)
            if width < 1 or height < 1:
                raise ApiError(400, "bad_image", "the image has no pixels")
            image.seek(0)  # GIF: the first frame
            if image.format in ("JPEG", "MPO"):  # decode at a reduced size directly: much faster for photos
                image.draft("RGB", (WORK_SIZE, WORK_SIZE))
            image = ImageOps.exif_transpose(image)
            image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(
            413, "image_too_large", f"the image declares too many pixels; the limit is {MAX_PIXELS:,}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ApiError(400, "bad_image", "the body is not an image; send a PNG, JPEG, WebP, BMP or GIF file") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        raise ApiError(
            400,
            "bad_image",
            f"the image could not be decoded ({exc}); send a complete PNG, JPEG, WebP, BMP or GIF file",
        ) from exc
    full_size = max(width, height)  # not image.size: a JPEG draft is already smaller
    gray = flatten_to_gray(image)
    if max(gray.size) > WORK_SIZE:
        gray.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.BOX)
    return np.asarray(gray, np.float32) / 255.0, full_size / max(gray.size)


def flatten_to_gray(image: Image.Image) -> Image.Image:
    """Any mode -> 'L'. Transparency is flattened onto a background that contrasts with the ink.

    A canvas export is often dark strokes on transparent pixels (or light on
    transparent); flattening onto white or black by the opaque pixels' brightness
    keeps the strokes visible either way.
    """
    if image.mode in ("P", "PA") or (image.mode == "L" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        gray = rgba.convert("L")
        if alpha.min() < 255:
            opaque = np.asarray(gray)[alpha > 127]
            background = 0 if opaque.size and opaque.mean() > 127 else 255
            canvas = Image.new("L", rgba.size, background)
            canvas.paste(gray, mask=rgba.getchannel("A"))
            return canvas
        return gray
    return image.convert("L")


def _too_large(width: int, height: int) -> ApiError:
    return ApiError(
        413,
        "image_too_large",
        f"the image is {width}x{height}; the limit is {MAX_PIXELS:,} pixels and {MAX_SIDE} per side",
    )
