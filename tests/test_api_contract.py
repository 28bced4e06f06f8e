"""The HTTP contract (README's API section) through functions-framework's app: input forms, answers, errors, CORS."""

from __future__ import annotations

import base64
import gzip
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer.api import MAX_BODY_BYTES
from recognizer.strokes import MAX_POINTS, MAX_STROKES
from recognizer.warm_up import SEVEN  # a handwritten-looking "7" as pen strokes on a 280x280 canvas

ONE_ONE = [[[40, 40], [42, 140]], [[140, 40], [142, 140]]]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawn(strokes=SEVEN, size=(280, 280), width=18, ink=0, paper=255, mode="L") -> Image.Image:
    image = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        draw.line([tuple(p) for p in stroke], fill=ink, width=width, joint="curve")
    return image


SEVEN_PNG = png(drawn())


def check_answer(answer: dict, model: str = "digits") -> None:
    assert answer["model"] == model
    assert len(answer["model_version"]) == 64
    assert 0 < answer["confidence"] < 1, "no answer is ever exactly certain or impossible"
    assert len(answer["top"]) == 5
    assert answer["top"][0]["label"] == answer["prediction"]
    probabilities = [entry["probability"] for entry in answer["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0005
    assert all(0 < p < 1 for p in probabilities)
    if answer["mode"] == "single":
        assert answer["rejected"] is False and answer["reason"] is None
    assert answer["input"].startswith("data:image/png;base64,")
    assert {"decode", "preprocess", "inference", "total"} <= answer["timing_ms"].keys()


def test_health_lists_both_models(client):
    response = client.get("/health")
    assert response.status_code == 200
    models = response.json["models"]
    assert set(models) == {"digits", "characters"}
    assert models["digits"]["labels"] == list("0123456789")
    assert len(models["characters"]["labels"]) == 47
    assert models["digits"]["accuracy"]["tflite"] > 0.99


def test_json_base64_image(client):
    response = client.post("/predict", json={"image": base64.b64encode(SEVEN_PNG).decode()})
    assert response.status_code == 200
    check_answer(response.json)
    assert response.json["prediction"] == "7"


def test_json_data_url_on_root_path(client):
    url = "data:image/png;base64," + base64.b64encode(SEVEN_PNG).decode()
    response = client.post("/", json={"image": url, "model": "digits", "mode": "single"})
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_json_strokes(client):
    response = client.post("/predict", json={"strokes": SEVEN, "width": 280, "height": 280})
    assert response.status_code == 200
    check_answer(response.json)
    assert response.json["prediction"] == "7"


def test_multipart_upload(client):
    data = {"image": (io.BytesIO(SEVEN_PNG), "seven.png"), "model": "digits"}
    response = client.post("/predict", data=data, content_type="multipart/form-data")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_multipart_image_as_a_data_url_field(client):
    """What FormData.append("image", canvas.toDataURL()) sends: the image as a text field, not a file part."""
    url = "data:image/png;base64," + base64.b64encode(SEVEN_PNG).decode()
    response = client.post("/predict", data={"image": url, "model": "digits"}, content_type="multipart/form-data")
    assert response.status_code == 200 and response.json["prediction"] == "7"
    response = client.post("/predict", data={"image": "not base64!"}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_base64"
    large = "data:image/png;base64," + "A" * 70_000  # form fields are held to 64 KB: a photo goes as a file part
    response = client.post("/predict", data={"image": large}, content_type="multipart/form-data")
    assert response.status_code == 413 and "as a file part" in response.json["error"]["message"]


def test_raw_body_with_query_parameters(client):
    response = client.post("/predict?model=digits&mode=single", data=SEVEN_PNG, content_type="image/png")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_json_body_takes_options_from_the_query_and_its_own_fields_win(client):
    body = {"image": base64.b64encode(SEVEN_PNG).decode()}
    answer = client.post("/predict?model=characters&mode=text", json=body).json
    assert (answer["model"], answer["mode"]) == ("characters", "text")
    answer = client.post("/predict?model=characters&mode=text", json={**body, "model": "digits", "mode": None}).json
    assert (answer["model"], answer["mode"]) == ("digits", "text")
    assert client.post("/predict?context=nonsense", json=body).json["error"]["code"] == "unknown_context"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "GIF"])
def test_other_image_formats(client, fmt):
    buffer = io.BytesIO()
    drawn().convert("RGB").save(buffer, format=fmt)
    response = client.post("/predict", data=buffer.getvalue(), content_type="application/octet-stream")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_light_ink_on_dark_and_transparent_canvas(client):
    light_on_dark = png(drawn(ink=255, paper=0))
    assert client.post("/predict", data=light_on_dark, content_type="image/png").json["prediction"] == "7"
    transparent = drawn(ink=(20, 20, 20, 255), paper=(0, 0, 0, 0), mode="RGBA")
    assert client.post("/predict", data=png(transparent), content_type="image/png").json["prediction"] == "7"


def test_exif_orientation_is_applied(client):
    # Stored rotated a quarter turn, with the EXIF tag that tells a viewer to turn it back.
    stored = drawn().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buffer = io.BytesIO()
    stored.convert("RGB").save(buffer, format="JPEG", exif=exif)
    response = client.post("/predict", data=buffer.getvalue(), content_type="image/jpeg")
    assert response.json["prediction"] == "7"
    # Text mode's boxes are in the picture as shown (turned by its EXIF tag), as a browser draws it.
    turned = client.post("/predict?mode=text", data=buffer.getvalue(), content_type="image/jpeg").json
    upright = client.post("/predict?mode=text", data=png(drawn()), content_type="image/png").json
    (turned_box,), (upright_box,) = ([c["box"] for c in a["characters"]] for a in (turned, upright))
    assert abs(upright_box[2] - upright_box[3]) > 10  # a box whose sides would swap if it were not turned
    assert np.allclose(turned_box, upright_box, atol=3), (turned_box, upright_box)


def test_phone_mpo_jpeg_is_accepted(client):
    buffer, seven = io.BytesIO(), drawn().convert("RGB")
    seven.save(buffer, format="MPO", save_all=True, append_images=[seven.resize((140, 140))])  # + a preview
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    response = client.post("/predict", data=buffer.getvalue(), content_type="image/jpeg")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_text_mode_boxes_of_a_large_jpeg_are_in_its_own_pixels(client):
    # 4000x3000: the JPEG is decoded at a quarter size, and the boxes must still be scaled back.
    ones = Image.new("L", (4000, 3000), 255)
    draw = ImageDraw.Draw(ones)
    for x in (800, 2800):
        draw.line([(x, 600), (x + 60, 2400)], fill=0, width=120)
    buffer = io.BytesIO()
    ones.save(buffer, format="JPEG")
    response = client.post("/predict?mode=text", data=buffer.getvalue(), content_type="image/jpeg")
    assert response.status_code == 200, response.json
    first, second = (c["box"] for c in response.json["characters"])
    assert first[0] < 800 < first[0] + first[2]
    assert second[0] < 2800 < second[0] + second[2]


def test_small_writing_without_canvas_size_is_read(client):
    # Only a canvas size makes "small" meaningful; without one, any extent is scaled to a character.
    tiny_seven = [[[x / 100, y / 100] for x, y in stroke] for stroke in SEVEN]
    response = client.post("/predict", json={"strokes": tiny_seven})
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_small_seven_in_a_large_photo_is_read(client):
    # 5 % of the long side: small, but writing, not a speck (those are under 2 %).
    seven = [[[x / 3 + 600, y / 3 + 400] for x, y in stroke] for stroke in SEVEN]
    response = client.post("/predict", data=png(drawn(seven, size=(1200, 900), width=6)), content_type="image/png")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_text_mode_answers_each_character_with_its_box(client):
    response = client.post("/predict", json={"strokes": ONE_ONE, "mode": "text"})
    assert response.status_code == 200
    answer = response.json
    check_answer(answer)
    assert answer["text"] == answer["prediction"] == "11"
    first, second = answer["characters"]
    assert first["box"][0] < 41 < first["box"][0] + first["box"][2]
    assert second["box"][0] < 141 < second["box"][0] + second["box"][2]
    assert len(first["top"]) == 5


def test_characters_model(client):
    letter_t = [[[40, 50], [240, 50]], [[140, 50], [140, 250]]]
    response = client.post("/predict", json={"strokes": letter_t, "model": "characters"})
    assert response.status_code == 200
    check_answer(response.json, "characters")
    assert response.json["prediction"] == "T"


def test_cors_on_answers_and_preflight(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://site.example")
    ok = client.post("/predict", json={"strokes": SEVEN}, headers={"Origin": "https://site.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://site.example"
    other = client.post("/predict", json={"strokes": SEVEN}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options(
        "/predict", headers={"Origin": "https://site.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204 and "Content-Type" not in preflight.headers  # no body
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://site.example"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"  # what /predict takes, not GET
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    health = client.options("/health", headers={"Origin": "https://site.example"})
    assert health.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size and has no real pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def _bomb() -> bytes:
    """A real 6000x6000 PNG of a few kB: 36 megapixels once decoded."""
    return png(Image.new("1", (6000, 6000), 0))


def _tiff() -> bytes:
    buffer = io.BytesIO()
    drawn().save(buffer, format="TIFF")
    return buffer.getvalue()


def _blank(fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (280, 280), (255, 255, 255)).save(buffer, format=fmt)
    return buffer.getvalue()


def _noise_photo() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray((200 + rng.normal(0, 4, (200, 200))).clip(0, 255).astype(np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _bars(count: int) -> bytes:
    """`count` separate vertical bars on one line: that many characters in text mode."""
    return png(drawn([[[10 + 20 * i, 10], [10 + 20 * i, 110]] for i in range(count)], (20 * count + 20, 120), 6))


J = "application/json"
BAD_REQUESTS = [
    # (name, method, path, body, content type, status, error code)
    ("garbage bytes", "POST", "/predict", b"\x00garbage\xff" * 10, "image/png", 400, "bad_image"),
    ("truncated png", "POST", "/predict", SEVEN_PNG[: len(SEVEN_PNG) // 2], "image/png", 400, "bad_image"),
    ("huge declared size", "POST", "/predict", _png_header(100_000, 100_000), "image/png", 413, "image_too_large"),
    ("decompression bomb", "POST", "/predict", _bomb(), "image/png", 413, "image_too_large"),
    ("tiff", "POST", "/predict", _tiff(), "image/png", 415, "unsupported_image_type"),
    ("empty raw body", "POST", "/predict", b"", "image/png", 400, "empty_image"),
    ("blank canvas", "POST", "/predict", _blank(), "image/png", 422, "nothing_drawn"),
    ("blank jpeg", "POST", "/predict", _blank("JPEG"), "image/jpeg", 422, "nothing_drawn"),
    ("photo of empty paper", "POST", "/predict", _noise_photo(), "image/jpeg", 422, "nothing_drawn"),
    (
        "image of a speck",
        "POST",
        "/predict",
        png(drawn([[[140, 140], [142, 141]]], width=3)),
        "image/png",
        422,
        "nothing_drawn",
    ),
    (
        "a dot in a tiny image",
        "POST",
        "/predict",
        png(drawn([[[14, 14], [14, 14]]], (28, 28), 2)),
        "image/png",
        422,
        "nothing_drawn",
    ),
    ("invalid json", "POST", "/predict", b"{not json", J, 400, "bad_json"),
    ("json array", "POST", "/predict", b"[1, 2]", J, 400, "bad_json"),
    ("json string", "POST", "/predict", b'"image"', J, 400, "bad_json"),
    ("no image or strokes", "POST", "/predict", b'{"model": "digits"}', J, 400, "missing_image"),
    ("both image and strokes", "POST", "/predict", b'{"image": "aGk=", "strokes": []}', J, 400, "missing_image"),
    ("image is a number", "POST", "/predict", b'{"image": 12}', J, 400, "bad_image"),
    ("bad base64", "POST", "/predict", b'{"image": "not base64!!"}', J, 400, "bad_base64"),
    ("data url not base64", "POST", "/predict", b'{"image": "data:image/png,abc"}', J, 400, "bad_base64"),
    ("base64 of text", "POST", "/predict", b'{"image": "aGVsbG8gd29ybGQ="}', J, 400, "bad_image"),
    ("unknown model", "POST", "/predict", b'{"strokes": [[[1, 1]]], "model": "cats"}', J, 404, "unknown_model"),
    ("model not a string", "POST", "/predict", b'{"strokes": [[[1, 1]]], "model": 3}', J, 400, "bad_model"),
    ("unknown mode", "POST", "/predict", b'{"strokes": [[[1, 1]]], "mode": "poem"}', J, 400, "unknown_mode"),
    # Falsy values are mistakes, not requests for the default (only an absent field or null is).
    *[
        (
            f"model {value}",
            "POST",
            "/predict",
            b'{"strokes": [[[1, 1], [9, 9]]], "model": ' + value + b"}",
            J,
            400,
            "bad_model",
        )
        for value in (b"false", b"0", b'""', b"[]", b"{}")
    ],
    *[
        (
            f"mode {value}",
            "POST",
            "/predict",
            b'{"strokes": [[[1, 1], [9, 9]]], "mode": ' + value + b"}",
            J,
            400,
            "bad_mode",
        )
        for value in (b"false", b"0", b'""', b"[]")
    ],
    ("empty model in the query", "POST", "/predict?model=", SEVEN_PNG, "image/png", 400, "bad_model"),
    (
        "multipart without its end",
        "POST",
        "/predict",
        b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
        "multipart/form-data; boundary=XX",
        400,
        None,
    ),
    ("multipart without a boundary", "POST", "/predict", b"abc", "multipart/form-data", 400, None),
    ("seventy characters", "POST", "/predict?mode=text", _bars(70), "image/png", 422, "too_many_characters"),
    ("strokes not a list", "POST", "/predict", b'{"strokes": "abc"}', J, 400, "bad_strokes"),
    ("stroke not a list", "POST", "/predict", b'{"strokes": [5]}', J, 400, "bad_strokes"),
    ("point not a pair", "POST", "/predict", b'{"strokes": [[[1]]]}', J, 400, "bad_strokes"),
    ("point with text", "POST", "/predict", b'{"strokes": [[["a", 1]]]}', J, 400, "bad_strokes"),
    ("point not finite", "POST", "/predict", b'{"strokes": [[[NaN, 1]]]}', J, 400, "bad_strokes"),
    ("point too far", "POST", "/predict", b'{"strokes": [[[100001, 1]]]}', J, 400, "bad_strokes"),
    # An integer too large for a float: math.isfinite would raise OverflowError on it.
    ("point beyond float", "POST", "/predict", b'{"strokes": [[[1' + b"0" * 400 + b", 1]]]}", J, 400, "bad_strokes"),
    ("negative width", "POST", "/predict", b'{"strokes": [[[1, 1]]], "width": -5}', J, 400, "bad_strokes"),
    ("empty strokes", "POST", "/predict", b'{"strokes": []}', J, 422, "nothing_drawn"),
    ("a tap", "POST", "/predict", b'{"strokes": [[[140, 140]]]}', J, 422, "nothing_drawn"),
    ("a speck", "POST", "/predict", b'{"strokes": [[[140, 140], [142, 141]]], "width": 280}', J, 422, "nothing_drawn"),
    ("strokes without points", "POST", "/predict", b'{"strokes": [[], []]}', J, 422, "nothing_drawn"),
    (
        "too many strokes",
        "POST",
        "/predict",
        json.dumps({"strokes": [[[1, 1]]] * (MAX_STROKES + 1)}).encode(),
        J,
        413,
        "too_many_strokes",
    ),
    (
        "too many points",
        "POST",
        "/predict",
        json.dumps({"strokes": [[[1, 1]] * (MAX_POINTS + 1)]}).encode(),
        J,
        413,
        "too_many_points",
    ),
    ("body too large", "POST", "/predict", b"\x00" * (MAX_BODY_BYTES + 1), "image/png", 413, "body_too_large"),
    ("JSON nested too deep", "POST", "/predict", b"[" * 100_000, J, 400, "bad_json"),
    ("text body", "POST", "/predict", b"hello", "text/plain", 415, "unsupported_media_type"),
    ("no content type", "POST", "/predict", b"hello", "", 415, "unsupported_media_type"),
    ("form without image", "POST", "/predict", b"model=digits", "application/x-www-form-urlencoded", 415, None),
    ("GET predict", "GET", "/predict", b"", "", 405, "method_not_allowed"),
    ("PUT root", "PUT", "/", SEVEN_PNG, "image/png", 405, "method_not_allowed"),
    ("POST health", "POST", "/health", b"", "", 405, "method_not_allowed"),
    ("unknown path", "GET", "/admin", b"", "", 404, "not_found"),
    ("unknown nested path", "POST", "/predict/extra", SEVEN_PNG, "image/png", 404, "not_found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status", "code"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_json_errors_with_cors(client, method, path, body, content_type, status, code):
    headers = {"Origin": "http://localhost:8000"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.open(path, method=method, data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["message"] and isinstance(error["message"], str)
    if code:
        assert error["code"] == code
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:8000")


def post_chunked(client, body: bytes, content_type: str):
    """A body with Transfer-Encoding: chunked and no Content-Length, as a server that ends the stream passes it."""
    return client.post(
        "/predict",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": content_type, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("content_type", ["image/png", "multipart/form-data; boundary=XX"])
def test_chunked_body_over_the_limit_is_refused(client, content_type):
    """A chunked body has no Content-Length to check first: the limit holds while reading."""
    part = b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    body = (part if content_type.startswith("multipart") else b"") + SEVEN_PNG + b"\0" * MAX_BODY_BYTES
    response = post_chunked(client, body, content_type)
    assert response.status_code == 413 and response.json["error"]["code"] == "body_too_large"


def test_chunked_body_within_the_limit_is_read(client):
    response = post_chunked(client, SEVEN_PNG, "image/png")
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_multipart_without_image_field(client):
    response = client.post("/predict", data={"model": "digits"}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "missing_image"
    assert "file part named 'image'" in response.json["error"]["message"]


@pytest.mark.parametrize(
    ("path", "kwargs", "named", "suggested"),
    [
        ("/predict", {"json": {"strokes": SEVEN, "modle": "characters"}}, "modle", "model"),
        ("/predict", {"json": {"strokes": SEVEN, "Mode": "text"}}, "Mode", "mode"),
        ("/predict?mdoe=text", {"data": SEVEN_PNG, "content_type": "image/png"}, "mdoe", "mode"),
        ("/predict?contex=none", {"json": {"strokes": SEVEN}}, "contex", "context"),
        ("/predict", {"data": {"file": (io.BytesIO(SEVEN_PNG), "a.png")}}, "file", None),
        ("/predict", {"data": {"image": (io.BytesIO(SEVEN_PNG), "a.png"), "modl": "digits"}}, "modl", "model"),
    ],
)
def test_a_misspelt_field_is_refused_not_ignored(client, path, kwargs, named, suggested):
    response = client.post(path, **kwargs)
    assert response.status_code == 400 and response.json["error"]["code"] == "unknown_field"
    message = response.json["error"]["message"]
    assert repr(named) in message and ("model, mode, context" in message or "file part takes: image" in message)
    assert (repr(suggested) in message.partition("did you mean")[2]) if suggested else "did you mean" not in message


def test_a_canvas_size_sent_with_an_image_is_refused_not_ignored(client):
    """width and height say where strokes were drawn; a client sending them with an image expects them used."""
    image = base64.b64encode(SEVEN_PNG).decode()
    response = client.post("/predict", json={"image": image, "height": 280})
    error = response.json["error"]
    assert response.status_code == 400 and error["code"] == "unknown_field" and "'height'" in error["message"]
    assert client.post("/predict", json={"image": image, "width": None}).status_code == 200  # null: absent


JSON_TWICE = b'{"strokes": [[[1, 1], [9, 9]]], "model": "digits", "model": "characters"}'


@pytest.mark.parametrize(
    ("path", "kwargs", "code", "said"),
    [
        ("/predict?model=digits&model=characters", {"json": {"strokes": SEVEN}}, "duplicate_field", "given 2 times"),
        (
            "/predict",
            {"data": {"image": (io.BytesIO(SEVEN_PNG), "a.png"), "model": ["digits", "characters"]}},
            "duplicate_field",
            "given 2 times",
        ),
        ("/predict", {"data": JSON_TWICE, "content_type": "application/json"}, "duplicate_field", "given 2 times"),
        (  # an option sent as a file part would be read as absent
            "/predict",
            {"data": {"image": (io.BytesIO(SEVEN_PNG), "a.png"), "model": (io.BytesIO(b"digits"), "m.txt")}},
            "unknown_field",
            "file part takes: image",
        ),
    ],
)
def test_a_field_given_twice_is_refused_not_read_once(client, path, kwargs, code, said):
    response = client.post(path, **kwargs)
    error = response.json["error"]
    assert response.status_code == 400 and error["code"] == code and said in error["message"], error
    assert "'model'" in error["message"]


def test_the_query_string_takes_only_options_and_a_long_unknown_name_is_not_looked_up(client):
    image = base64.b64encode(SEVEN_PNG).decode()
    response = client.post(f"/predict?image={image}", data={"model": "digits"}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "unknown_field"
    assert "the query string takes: model, mode, context" in response.json["error"]["message"]
    long_name = "model" + "x" * 100_000  # difflib would cost seconds and hundreds of MB on megabytes of it
    response = client.post("/predict", json={"strokes": SEVEN, long_name: 1})
    message = response.json["error"]["message"]
    assert response.json["error"]["code"] == "unknown_field" and "did you mean" not in message and len(message) < 200


def test_a_transfer_coding_besides_chunked_is_refused_not_read_as_the_image(client):
    """gunicorn hands on a body sent with "Transfer-Encoding: gzip, chunked" still compressed."""
    response = client.post(
        "/predict",
        input_stream=io.BytesIO(gzip.compress(SEVEN_PNG)),
        headers={"Content-Type": "image/png", "Transfer-Encoding": "gzip, chunked", "Origin": "https://a.example"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 501 and response.json["error"]["code"] == "unsupported_transfer_encoding"
    assert response.headers["Access-Control-Allow-Origin"]


@pytest.mark.parametrize(("method", "path", "allowed"), [("GET", "/predict", "POST"), ("POST", "/health", "GET, HEAD")])
def test_a_405_says_which_methods_are_allowed(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405 and response.headers["Allow"] == f"{allowed}, OPTIONS"
    assert client.open(path, method=allowed.split(", ")[-1]).status_code != 405  # each one listed is taken


@pytest.mark.parametrize(
    "body",
    [
        b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nPNG...\r\n',  # no --zz--
        b"--zz\r\nContent-Type: image/png\r\n\r\nPNG...\r\n--zz--\r\n",  # a part without a name
        b'{"image": "..."}',  # JSON sent as multipart
    ],
)
def test_a_multipart_body_that_cannot_be_read_is_a_bad_request_not_a_missing_image(client, body):
    response = client.post("/predict", data=body, content_type="multipart/form-data; boundary=zz")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_request"
    assert "boundary" in response.json["error"]["message"]


def test_an_image_sent_as_json_is_told_to_send_its_own_content_type(client):
    response = client.post("/predict", data=SEVEN_PNG, content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_json"
    assert "is a PNG image, not JSON" in response.json["error"]["message"]
    assert "image/png" in response.json["error"]["message"]
    tiff = client.post("/predict", data=b"II*\x00" + b"\x00" * 60, content_type="application/json")
    assert tiff.json["error"]["message"].endswith("is a TIFF image, not JSON: send a PNG, JPEG, WebP, BMP or GIF file")


@pytest.mark.parametrize(
    ("canvas", "said"),
    [({"width": 280, "height": 280}, "under 2 % of the canvas"), ({}, "all its points in one place")],
)
def test_a_drawing_that_is_only_a_dot_is_told_why(client, canvas, said):
    response = client.post("/predict", json={"strokes": [[[60, 60]], [[60, 60]]], **canvas})
    assert response.status_code == 422 and f"only a dot ({said})" in response.json["error"]["message"]


@pytest.mark.parametrize("prefix", ["DATA:image/png;base64,", " data:image/png;base64,", "Data:image/png;base64,"])
def test_a_data_url_is_read_whatever_the_case_of_its_scheme_and_around_it(client, prefix):
    image = prefix + base64.b64encode(SEVEN_PNG).decode() + "\n"
    response = client.post("/predict", json={"image": image})
    assert response.status_code == 200 and response.json["prediction"] == "7"


def test_pen_points_with_a_time_and_a_pressure_fit_the_limits_of_plain_points(client):
    """Extra numbers per point are ignored, and MAX_POINTS of them fit within the JSON body's limits."""
    line = [[60 + 155 * i / MAX_POINTS, 60 + 175 * i / MAX_POINTS, i, 0.5] for i in range(MAX_POINTS - 2)]
    response = client.post("/predict", json={"strokes": [line, [[215, 60, 0, 0.5], [125, 235, 1, 0.5]]]})
    assert response.status_code == 200, response.json


def test_an_unsupported_content_type_is_told_the_accepted_image_types(client):
    response = client.post("/predict", data=SEVEN_PNG, content_type="image/tiff")
    assert response.status_code == 415 and "image/png" in response.json["error"]["message"]


def test_sixty_four_characters_are_still_read(client):
    response = client.post("/predict?mode=text", data=_bars(64), content_type="image/png")
    assert response.status_code == 200 and len(response.json["characters"]) == 64


def test_a_bug_is_a_json_500_with_cors(client, monkeypatch):
    """An unexpected exception in a stage is answered as JSON the site can show, never an HTML page."""

    def broken(picture):
        raise RuntimeError("a bug")

    monkeypatch.setattr("recognizer.api.find_ink", broken)
    response = client.post("/predict", data=SEVEN_PNG, content_type="image/png", headers={"Origin": "http://x.example"})
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal" and "a bug" not in response.json["error"]["message"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_single_answer_says_how_many_characters_it_saw(client):
    assert client.post("/predict", json={"strokes": SEVEN}).json["pieces"] == 1
    assert client.post("/predict", json={"strokes": ONE_ONE}).json["pieces"] == 2


LETTERS = {  # letters that resemble no digit, as pen strokes on a 280x280 canvas
    "A": [[[40, 240], [140, 40], [240, 240]], [[80, 160], [200, 160]]],
    "W": [[[30, 50], [80, 240], [140, 100], [200, 240], [250, 50]]],
    "X": [[[50, 50], [230, 230]], [[230, 50], [50, 230]]],
    "K": [[[60, 40], [60, 240]], [[220, 40], [60, 150], [220, 240]]],
}


@pytest.mark.parametrize("letter", list(LETTERS))
def test_a_letter_sent_to_the_digits_model_is_rejected(client, letter):
    response = client.post("/predict", json={"strokes": LETTERS[letter], "width": 280, "height": 280})
    answer = response.json
    assert response.status_code == 200  # an answer, not an error: the input was fine, it is just no digit
    assert answer["rejected"] is True and answer["reason"] == "not_a_digit"
    assert answer["prediction"] is None and answer["confidence"] is None
    assert len(answer["top"]) == 5 and all(entry["label"] in list("0123456789") for entry in answer["top"])
    assert answer["input"].startswith("data:image/png;base64,")  # what the model saw is still shown


SCRIBBLES = {  # marks that are no character, as pen strokes on a 280x280 canvas
    "zigzag": [[[40 + 20 * i, 60 if i % 2 else 220] for i in range(11)]],
    "hatching": [[[40, 40 + 25 * i], [240, 60 + 25 * i]] for i in range(8)],
}


@pytest.mark.parametrize("scribble", list(SCRIBBLES))
def test_a_scribble_sent_to_the_characters_model_is_rejected(client, scribble):
    body = {"strokes": SCRIBBLES[scribble], "width": 280, "height": 280, "model": "characters"}
    response = client.post("/predict", json=body)
    answer = response.json
    assert response.status_code == 200
    assert answer["rejected"] is True and answer["reason"] == "not_a_character"
    assert answer["prediction"] is None and answer["confidence"] is None
    labels = client.get("/health").json["models"]["characters"]["labels"]
    assert len(answer["top"]) == 5 and all(entry["label"] in labels for entry in answer["top"])


def test_the_same_letter_is_read_by_the_characters_model(client):
    answer = client.post("/predict", json={"strokes": LETTERS["A"], "model": "characters"}).json
    assert answer["rejected"] is False and answer["prediction"] == "A"


def test_a_line_whose_every_character_is_rejected_is_rejected_as_a_whole(client):
    # "AW" written as a number: both letters are read as the digits the model finds closest, and marked.
    aw = LETTERS["A"] + [[[x + 280, y] for x, y in stroke] for stroke in LETTERS["W"]]
    answer = client.post("/predict", json={"strokes": aw, "width": 560, "height": 280, "mode": "text"}).json
    assert answer["rejected"] is True and answer["reason"] == "not_a_digit"
    assert answer["text"] is None and answer["prediction"] is None and answer["confidence"] is None
    assert len(answer["characters"]) == 2 and all(c["rejected"] for c in answer["characters"])
    assert answer["alternatives"] and all(set(a["text"]) <= set("0123456789") for a in answer["alternatives"])
    # One digit among them: the line is read, and only the letter is marked.
    a7 = LETTERS["A"] + [[[x + 280, y] for x, y in stroke] for stroke in SEVEN]
    answer = client.post("/predict", json={"strokes": a7, "width": 560, "height": 280, "mode": "text"}).json
    assert answer["rejected"] is False and answer["reason"] is None and answer["text"].endswith("7")
    assert [c["rejected"] for c in answer["characters"]] == [True, False]
    answer = client.post("/predict", json={"strokes": aw, "model": "characters", "mode": "text"}).json
    assert answer["rejected"] is False and answer["text"] == "AW"
