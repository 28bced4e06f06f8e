"""Bytes from a client -> grayscale uint8 levels (decode_image: floats), within explicit limits.

Everything here treats its input as hostile: the format is checked against a
short allow-list, and the declared pixel count and the bytes the decoder would
produce are checked before any pixel is decoded (decompression bombs, 16-bit
images), so one request's decoding costs at most about 0.2 CPU-s and
MAX_DECODED_BYTES of memory. Any decoder failure becomes a 4xx.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ApiError

MAX_PIXELS = 25_000_000  # declared width x height; a 12 MP phone photo fits twice
MAX_SIDE = 20_000
# What the decoder may produce for one image (pixels x bytes per pixel, 16-bit samples counted as 2 bytes),
# after a JPEG's reduced-size decoding: a 6 MP RGBA PNG, a 4K RGB screenshot, any grey PNG or baseline JPEG
# within MAX_PIXELS. Decoding that much takes about 0.2 CPU-s (a PNG whose rows all use the Paeth filter).
MAX_DECODED_BYTES = 24 * 2**20
# decode_region reads again, closer, a part of a JPEG of at most REGION_FILE_BYTES (a 12 MP phone photo's size;
# libjpeg reads every byte whatever the draft: bench/hostile's 3.9 MB JPEG decoded twice costs its request 0.15
# CPU-s), decoding at most REGION_DECODED_BYTES.
REGION_FILE_BYTES = 4 * 2**20
REGION_DECODED_BYTES = 12 * 2**20
LARGE_DECODE_BYTES = 8 * 2**20  # decodes above this take one of LARGE_DECODES_AT_ONCE slots ...
LARGE_DECODES_AT_ONCE = 2  # ... so a burst of large images queues instead of multiplying the memory peak
MAX_TEXT_BYTES = 2**20  # PNG text chunks (zTXt, iTXt) decompressed, all together; nothing here reads them
WORK_SIZE = 512  # long side the preprocessing works at: ample for a 20x20 box per character
# A wide image (a line of text) keeps at least MIN_WORK_HEIGHT on its short side, its long side up to
# MAX_WORK_WIDTH: at WORK_SIZE a 60-letter line would be left 25 px tall, its letters 9 px. At most
# MAX_WORK_WIDTH x MIN_WORK_HEIGHT pixels either way, as many as WORK_SIZE squared.
MIN_WORK_HEIGHT = 128
MAX_WORK_WIDTH = 2048
ALLOWED_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF"}  # MPO: a phone camera's JPEG
OPENERS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # Pillow's openers for those (JPEG's opens MPO too)

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
PngImagePlugin.MAX_TEXT_MEMORY = MAX_TEXT_BYTES
_large_decodes = threading.BoundedSemaphore(LARGE_DECODES_AT_ONCE)


def decode_image(data: bytes) -> tuple[np.ndarray, float]:
    """Image file bytes -> (grayscale float32 in [0, 1] at most WORK_SIZE on its long side, scale).

    `scale` maps working pixels back to the uploaded image's pixels (after
    EXIF orientation), so boxes can be answered in the client's coordinates.
    """
    levels, scale = decode_levels(data)
    return levels.astype(np.float32) / 255.0, scale


def decode_levels(data: bytes) -> tuple[np.ndarray, float]:
    """decode_image's picture as the decoder's uint8 levels (what serving works on: preprocess.to_ink takes them)."""
    gray, full_size = _decoded(
        data, lambda width, height, bands: (WORK_SIZE, WORK_SIZE), lambda image, factor: _small_gray(image)
    )
    return np.asarray(gray), full_size / max(gray.size)


def decode_region(
    data: bytes, box: tuple[float, float, float, float], scale: float
) -> tuple[np.ndarray, float, tuple[float, float]] | None:
    """A part of an image decode_levels has read, closer: (its uint8 levels, their scale, their origin).

    `box` is (x, y, width, height) in the uploaded image's pixels (after EXIF
    orientation); `scale` the image's pixels wanted per answered pixel (1: the
    file's own resolution). The part comes back at that scale or coarser: at
    most working_side on its long side, and no finer than a JPEG decodes within
    REGION_DECODED_BYTES. Image pixel = answered pixel x scale + origin. Text
    mode reads a word that fills a small part of a large photo this way: at
    WORK_SIZE its letters are a few pixels tall.

    Only a JPEG of at most REGION_FILE_BYTES is read again (else None):
    decode_levels decoded it at a reduced size, and libjpeg decodes it anew at a
    finer one. Other formats were decoded whole, and a second whole decode, as
    one of a larger JPEG, could double the costliest request's CPU.
    """
    if not data.startswith(b"\xff\xd8") or len(data) > REGION_FILE_BYTES:  # a JPEG starts with its SOI marker
        return None

    def draft(width: int, height: int, bands: int) -> tuple[int, int]:
        """libjpeg decodes at 1/8, 1/4, 1/2 or 1/1: the coarsest that keeps `scale`, within REGION_DECODED_BYTES."""
        fits = [r for r in (1, 2, 4, 8) if -(-width // r) * -(-height // r) * bands <= REGION_DECODED_BYTES]
        sharp = [r for r in fits if r <= scale]
        reduction = max(sharp) if sharp else min(fits, default=8)
        return max(1, width // reduction), max(1, height // reduction)

    def crop(image: Image.Image, factor: float) -> tuple[Image.Image, float, tuple[float, float]]:
        x, y, width, height = (v / factor for v in box)  # in the decoded (drafted) image's pixels
        left, top = max(0, math.floor(x)), max(0, math.floor(y))
        right, bottom = min(image.width, math.ceil(x + width)), min(image.height, math.ceil(y + height))
        part = _gray(image.crop((left, top, max(right, left + 1), max(bottom, top + 1))))
        long = max(part.size)
        side = min(long * factor / max(scale, factor), working_side(*part.size))  # never finer than decoded
        if side < long:
            part = part.resize(
                (max(1, round(part.width * side / long)), max(1, round(part.height * side / long))),
                Image.Resampling.BOX,
            )
        return part, factor * long / max(part.size), (left * factor, top * factor)

    try:
        (part, part_scale, origin), _ = _decoded(data, draft, crop, REGION_DECODED_BYTES)
    except ApiError as error:
        if error.code == "image_too_large":  # a progressive JPEG holds all its coefficients, whatever the draft
            return None
        raise
    return np.asarray(part), part_scale, origin


def _decoded(data: bytes, draft, finish, limit: int = MAX_DECODED_BYTES):
    """finish(image, factor) of the image in `data`, decoded within the limits; (its answer, the image's long side).

    `draft(width, height, bands)` is the size a JPEG is decoded at (libjpeg scales by
    1/8 to 1/1 while decoding); `factor` is the image's pixels per decoded pixel;
    `limit` the bytes the decode may produce.
    """
    if not data:
        raise ApiError(400, "empty_image", "the image is empty; send a PNG, JPEG, WebP, BMP or GIF file")
    document = _document_format(data)
    if document:
        raise _unsupported(document)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=OPENERS)  # no other format's parser ever runs
            if image.format not in ALLOWED_FORMATS:
                raise _unsupported(image.format)
            width, height = image.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise _too_large(width, height)
            if width < 1 or height < 1:
                raise ApiError(400, "bad_image", "the image has no pixels")
            image.seek(0)  # GIF: the first frame
            if image.format in ("JPEG", "MPO"):  # decode at a reduced size directly: much faster for photos
                image.draft("RGB", draft(width, height, len(image.getbands())))  # CMYK stays 4 bands
            size = decoded_bytes(image)
            if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
                size = max(size, _progressive_jpeg_bytes(image, width, height))
            if size > limit:
                raise _too_large(width, height, size)
            with _large_decodes if size > LARGE_DECODE_BYTES else contextlib.nullcontext():
                ImageOps.exif_transpose(image, in_place=True)  # in place: no copy when there is nothing to turn
                image.load()
                answer = finish(image, max(width, height) / max(image.size))
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(
            413, "image_too_large", f"the image declares too many pixels; the limit is {MAX_PIXELS:,}"
        ) from exc
    except UnidentifiedImageError as exc:
        other = sniff_image_format(data)
        if other:
            raise _unsupported(other) from exc
        raise ApiError(400, "bad_image", "the body is not an image; send a PNG, JPEG, WebP, BMP or GIF file") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        raise ApiError(
            400,
            "bad_image",
            f"the image could not be decoded ({exc}); send a complete PNG, JPEG, WebP, BMP or GIF file",
        ) from exc
    return answer, max(width, height)  # not image.size: a JPEG draft is already smaller


def decoded_bytes(image: Image.Image) -> int:
    """The most bytes decoding `image` at its current (drafted) size holds at once: its pixels (as RGBA where
    transparency is flattened that way), or the file's 16-bit samples."""
    bands = len(image.getbands())
    per_pixel = bands * (4 if image.mode in ("I", "F") else 2 if "16" in image.mode else 1)
    rawmode = image.tile[0].args if image.tile else None
    rawmode = rawmode[0] if isinstance(rawmode, tuple) and rawmode else rawmode
    if isinstance(rawmode, str) and ";16" in rawmode:  # "RGBA;16B": four 2-byte samples, narrowed while decoding
        per_pixel = max(per_pixel, 2 * len(rawmode.split(";")[0]))
    if image.mode in ("P", "PA") or "transparency" in image.info:  # flattened by way of RGBA
        per_pixel = max(per_pixel, 4)
    return image.width * image.height * per_pixel


def _progressive_jpeg_bytes(image: Image.Image, width: int, height: int) -> int:
    """libjpeg holds a progressive JPEG's coefficients for the whole image, whatever the draft: 2 bytes a sample."""
    factors = [(h, v) for _, h, v, _ in image.layer] or [(1, 1)]
    most_h, most_v = max(h for h, _ in factors), max(v for _, v in factors)
    samples = sum(h * v for h, v in factors) / (most_h * most_v)
    return int(width * height * samples * 2)


def working_side(width: int, height: int) -> int:
    """The long side an image is worked at (or less, if it is smaller): WORK_SIZE, unless that would leave
    its short side under MIN_WORK_HEIGHT (a line of text); then enough for that, up to MAX_WORK_WIDTH."""
    long, short = max(width, height), min(width, height)
    if short * WORK_SIZE >= MIN_WORK_HEIGHT * long:
        return WORK_SIZE
    return max(WORK_SIZE, min(MAX_WORK_WIDTH, -(-long * MIN_WORK_HEIGHT // short)))


def _small_gray(image: Image.Image) -> Image.Image:
    """A decoded image -> 'L' at most working_side on its long side; a huge one is reduced before it is flattened."""
    side = working_side(*image.size)
    # Four times the working side or more: box-reduced to about twice it first (cheap, and exact enough).
    if max(image.size) >= 4 * side and image.mode in ("L", "LA", "RGB", "RGBA"):
        image = image.reduce(max(image.size) // (2 * side))
    gray = _gray(image)
    if max(gray.size) > side:
        gray.thumbnail((side, side), Image.Resampling.BOX)
    return gray


def _gray(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16"):  # 16-bit grey: keep the high byte (convert("L") would clip at 255)
        image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    return flatten_to_gray(image)


def _document_format(data: bytes) -> str | None:
    """SVG or PDF by their opening bytes (Pillow reads neither, so it would only say 'not an image')."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "PDF"
    if head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in head):
        return "SVG"
    return None


def sniff_image_format(data: bytes) -> str | None:
    """The format a Pillow plugin recognises from the first bytes (to name it in an error), without parsing."""
    Image.init()
    prefix = data[:16]
    for name, (_, accept) in Image.OPEN.items():
        try:
            if accept and accept(prefix):
                return name
        except (struct.error, IndexError, ValueError, TypeError):  # a check that needs more bytes than there are
            continue
    return None


def _unsupported(image_format: str | None) -> ApiError:
    return ApiError(
        415, "unsupported_image_type", f"{image_format} images are not supported; send PNG, JPEG, WebP, BMP or GIF"
    )


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
    return image if image.mode == "L" else image.convert("L")  # convert("L") of an "L" image is a copy


def _too_large(width: int, height: int, size: int | None = None) -> ApiError:
    if size is not None:
        message = (
            f"the {width}x{height} image would decode to {size / 2**20:.2f} MB; the limit is "
            f"{MAX_DECODED_BYTES / 2**20:.2f} MB (about 6 megapixels in colour with transparency, half that at 16 "
            "bits): scale it down or send it without transparency"
        )
    else:
        message = (
            f"the image is {width}x{height}; the limit is {MAX_PIXELS:,} pixels and {MAX_SIDE} per side: scale it down"
        )
    return ApiError(413, "image_too_large", message)
