"""Hostile traffic: framing, limits on work per request, slow clients and corrupt models (issue 17).

The server tests start the real functions-framework process as the cloud does
(one worker, recognizer/server_limits.py's worker), so what they check is what
the deployed function's server layer does. bench/hostile.py measures the costs.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from test_api_contract import SEVEN, SEVEN_PNG, drawn, png
from test_server import call, start_function, wait_for

from bench import hostile
from conftest import MODELS_DIR
from infra.run_local import free_port
from recognizer import server_limits
from recognizer import strokes as strokes_module
from recognizer.decode import MAX_DECODED_BYTES, decode_image
from recognizer.errors import ApiError
from recognizer.reader import stroke_atoms
from recognizer.server_limits import Incoming, Refusal
from recognizer.strokes import (
    MAX_DRAWN_POINTS,
    check_json_structure,
    drawing_scale,
    parse_strokes,
    render_strokes,
    thin,
)

ORIGIN = "http://127.0.0.1:9"


# --- the server configuration ---------------------------------------------------------------------------------


def test_functions_framework_builds_its_server_with_these_settings(client):
    """It reads no gunicorn.conf.py: the settings reach it because main.py (imported first) installs them."""
    from functions_framework._http.gunicorn import GunicornApplication

    config = GunicornApplication(client.application, "127.0.0.1", 0, False).cfg
    assert config.worker_class is server_limits.ReceivingWorker
    assert config.limit_request_line == server_limits.MAX_REQUEST_LINE > 0  # functions-framework's own is 0
    assert config.keepalive == server_limits.KEEPALIVE_IDLE_S


# --- framing, as the worker's event loop sees the bytes (no server) ---------------------------------------


def fed(*pieces: bytes) -> Incoming:
    incoming = Incoming(b"", time.monotonic())
    for piece in pieces:
        incoming.feed(piece, time.monotonic())
    return incoming


def test_a_request_is_complete_only_with_its_whole_body():
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    assert not fed(head).done and not fed(head, b"12345").done
    assert fed(head, b"12345", b"67890").done
    assert fed(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").done


def test_a_chunked_body_is_complete_at_its_last_chunk():
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not fed(head, b"5\r\nhello\r\n").done
    assert not fed(head, b"5\r\nhello\r\n0\r\n").done
    assert fed(head, b"5\r\nhel", b"lo\r\n0\r\n\r\n").done


@pytest.mark.parametrize("body", [b"ZZ\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX0\r\n\r\n", b"3;" + b"x" * 9000])
def test_broken_chunking_goes_to_the_parser_at_once(body):
    """No waiting for more bytes: the parser refuses these from what has arrived."""
    assert fed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", body).done


def test_a_chunk_over_the_body_limit_is_refused_from_its_size_line():
    with pytest.raises(Refusal) as refusal:
        fed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"F" * 20 + b"\r\nabc")
    assert refusal.value.status == 413


def test_oversized_request_lines_and_headers_are_refused_before_they_are_whole():
    with pytest.raises(Refusal) as line:
        fed(b"GET /" + b"a" * (server_limits.MAX_REQUEST_LINE + 10))
    assert line.value.status == 414
    with pytest.raises(Refusal) as headers:
        fed(b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * (server_limits.MAX_HEADER_BYTES // 8 + 1))
    assert headers.value.status == 431
    # The same limit when the whole header block arrives at once, in fields each under the per-field limit.
    field = b"X-A: " + b"b" * (server_limits.MAX_HEADER_FIELD_BYTES - 10) + b"\r\n"
    with pytest.raises(Refusal) as at_once:
        fed(b"GET / HTTP/1.1\r\n" + field * 5 + b"\r\n")
    assert at_once.value.status == 431
    assert fed(b"GET / HTTP/1.1\r\n" + field * 3 + b"\r\n").done  # 24 KB of headers: within the limit


def test_expect_continue_is_answered_here_and_not_passed_on():
    incoming = fed(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok")
    assert incoming.expects_continue and incoming.done
    assert b"expect" not in incoming.request_bytes().lower()


# --- bounded work per request (no server) -----------------------------------------------------------------


def code_of(call_, *args) -> tuple[int, str]:
    with pytest.raises(ApiError) as error:
        call_(*args)
    return error.value.status, error.value.code


def _never_decoded(image: ImageFile.ImageFile) -> None:
    raise AssertionError(f"a {image.size} image was decoded")


def test_images_that_would_decode_too_large_are_refused_before_decoding(monkeypatch):
    side = int((MAX_DECODED_BYTES / 4) ** 0.5) + 1
    sixteen_bit, colour = hostile.png(5000, 5000, 16), hostile.png(side, side)
    with monkeypatch.context() as patch:  # refused from the header: not one pixel decoded
        patch.setattr(ImageFile.ImageFile, "load", _never_decoded)
        assert code_of(decode_image, sixteen_bit) == (413, "image_too_large")
        assert code_of(decode_image, colour) == (413, "image_too_large")
    gray, _ = decode_image(hostile.png(side - 1, side - 1))
    assert max(gray.shape) == 512


def test_progressive_jpeg_coefficients_count_against_the_limit():
    assert code_of(decode_image, hostile.big_jpeg(progressive=True)) == (413, "image_too_large")
    gray, scale = decode_image(hostile.big_jpeg(progressive=False))
    assert max(gray.shape) == 512 and scale == pytest.approx(5000 / 512)


def test_sixteen_bit_grey_keeps_its_ink():
    """convert('L') clips 16-bit values at 255: the whole image would read as white paper."""
    ink = np.asarray(drawn(), np.uint16) * 257  # 0..65535
    buffer = io.BytesIO()
    Image.fromarray(ink).save(buffer, format="PNG")
    gray, _ = decode_image(buffer.getvalue())
    assert gray.min() < 0.1 and gray.max() > 0.9


@pytest.mark.parametrize(
    "document", [b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', b"%PDF-1.7\n%\xe2\xe3"]
)
def test_svg_and_pdf_are_unsupported_types(document):
    assert code_of(decode_image, document) == (415, "unsupported_image_type")


def test_png_text_bombs_are_refused():
    assert code_of(decode_image, hostile.png(280, 280, text_bytes=60 * 2**20))[0] == 400


def test_strokes_too_long_to_draw_are_refused_and_dense_ones_thinned(monkeypatch):
    zigzag = [[0, 0] if i % 2 else [10_000, 10_000] for i in range(20_000)]
    strokes = parse_strokes([zigzag], None, None)
    assert code_of(render_strokes, strokes, False) == (413, "strokes_too_long")
    circle = [[140 + 100 * np.cos(i / 3000), 140 + 100 * np.sin(i / 3000)] for i in range(20_000)]
    drawn = []  # each point drawn costs work: 20,000 round joints took 0.15 s before thinning

    def thinned(strokes_: list[np.ndarray]) -> list[np.ndarray]:
        result = thin(strokes_)
        drawn.extend(result)
        return result

    monkeypatch.setattr(strokes_module, "thin", thinned)
    image, _, _ = render_strokes(parse_strokes([circle], None, None), False)
    assert 0 < sum(map(len, drawn)) <= MAX_DRAWN_POINTS + 2
    assert image.max() == 1.0


def test_dense_strokes_are_thinned_once_for_drawing_and_for_text_modes_stroke_labels():
    circle = np.array([[140 + 100 * np.cos(i / 3000), 140 + 100 * np.sin(i / 3000)] for i in range(20_000)])
    line = np.array([[0.0, 0.0], [50.0, 0.0]])
    thinned = thin([circle, line])
    assert sum(map(len, thinned)) <= MAX_DRAWN_POINTS + 2  # and each stroke keeps its first and last points
    assert all((t[[0, -1]] == s[[0, -1]]).all() for t, s in zip(thinned, [circle, line], strict=True))
    assert thin([line])[0] is line  # a normal drawing is left as it is
    ink = np.ones((300, 300), np.float32)
    atoms = stroke_atoms(thinned, ink, 1.0, (0.0, 0.0), drawing_scale(np.concatenate(thinned), True)[1])
    assert set(np.unique(atoms)) >= {1, 2}  # both strokes labelled from the thinned points


def test_json_with_more_elements_than_a_request_needs_is_refused_unparsed():
    assert code_of(check_json_structure, b'{"strokes":[[' + b",".join([b"[1,1]"] * 100_000) + b"]]}")[0] == 413
    check_json_structure(json.dumps({"strokes": [[[1, 1]] * 20_000]}).encode())  # the most points allowed


def test_multipart_part_count_is_capped(client):
    body, content_type = hostile.multipart(server_limits.MAX_FORM_PARTS + 1)
    response = client.post("/predict", data=body, content_type=content_type)
    assert response.status_code == 413 and response.json["error"]["code"] == "form_too_large"
    body, content_type = hostile.multipart(2)
    assert client.post("/predict", data=body, content_type=content_type).json["prediction"] == "7"


# --- the real server ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = start_function(port, ALLOWED_ORIGINS=ORIGIN)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def raw_answer(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(raw)  # the server reads what it refuses, so this never fails on a reset
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request"),
        (b"GET /health?" + b"a" * 2**20 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request_line_too_long"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n", 431, "headers_too_large"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, "headers_too_large"),
    ],
    ids=["bad request line", "HTTP/2 prior knowledge", "1 MB request line", "1 MB of headers", "200 fields"],
)
def test_what_the_server_layer_refuses_is_json(server, raw, status, code):
    answer_status, headers, body = raw_answer(server, raw)
    assert answer_status == status and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"  # as the app's


CHUNKED = b"POST /predict HTTP/1.1\r\nHost: x\r\nOrigin: " + ORIGIN.encode() + b"\r\nContent-Type: image/png\r\n"


@pytest.mark.parametrize(
    "body",
    [b"ZZ\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX0\r\n\r\n", b"-3\r\nabc\r\n0\r\n\r\n"],
    ids=["bad chunk size", "missing chunk terminator", "negative chunk size"],
)
def test_malformed_chunked_bodies_are_400_json_with_cors(server, body):
    status, headers, answer = raw_answer(server, CHUNKED + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert status == 400 and json.loads(answer)["error"]["code"] in ("bad_body", "bad_chunked_body")
    if json.loads(answer)["error"]["code"] == "bad_body":  # read by the app: CORS like every app answer
        assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_pipelined_and_kept_alive_requests_are_all_answered(server):
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(SEVEN_PNG)
        + SEVEN_PNG
    )
    with socket.create_connection(("127.0.0.1", server), timeout=30) as connection:
        connection.sendall(request * 2 + request.replace(b"Host: x", b"Host: x\r\nConnection: close"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 OK") == 3 and answer.count(b'"prediction":"7"') == 3
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    for _ in range(3):
        connection.request("POST", "/predict", SEVEN_PNG, {"Content-Type": "image/png"})
        assert json.loads(connection.getresponse().read())["prediction"] == "7"
    connection.close()


def test_expect_100_continue_gets_one_interim_answer(server):
    with socket.create_connection(("127.0.0.1", server), timeout=30) as connection:
        head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nExpect: 100-continue\r\n"
        connection.sendall(head + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(SEVEN_PNG))
        assert connection.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(SEVEN_PNG)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"100 Continue" not in answer


def hold(port: int, head: bytes, trickle: bool, stop: threading.Event) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))

    def feed() -> None:
        try:
            connection.sendall(head)
            while trickle and not stop.wait(1.0):
                connection.sendall(b"\0")
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    return connection


def test_slow_and_idle_clients_do_not_take_the_threads(server):
    """Stock gthread gave each of these a thread until it finished: 28 held connections blocked all 8."""
    head = CHUNKED.replace(b"Content-Type: image/png\r\n", b"Content-Type: image/png\r\nContent-Length: 100000\r\n")
    stop = threading.Event()
    held = [hold(server, head + b"\r\n", trickle, stop) for trickle in [True] * 20 + [False] * 8]
    try:
        time.sleep(1.5)
        for _ in range(5):
            status, _, answer = call(f"http://127.0.0.1:{server}/predict", SEVEN_PNG, "image/png")
            assert status == 200 and answer["prediction"] == "7"
    finally:
        stop.set()
        for connection in held:
            connection.close()


@pytest.mark.slow
def test_idle_and_slow_connections_are_closed_within_the_timeouts(server):
    """Silent: closed after HEADER_TIMEOUT_S. Headers then a trickle: 408 JSON after BODY_TIMEOUT_S."""
    stop = threading.Event()
    silent = hold(server, b"", False, stop)
    head = CHUNKED.replace(b"Content-Type: image/png\r\n", b"Content-Type: image/png\r\nContent-Length: 100000\r\n")
    slow = hold(server, head + b"\r\n", True, stop)
    started = time.monotonic()
    try:
        silent.settimeout(server_limits.HEADER_TIMEOUT_S + 5)
        assert silent.recv(100) == b""
        assert server_limits.HEADER_TIMEOUT_S - 1 <= time.monotonic() - started <= server_limits.HEADER_TIMEOUT_S + 3
        slow.settimeout(server_limits.BODY_TIMEOUT_S + 5)
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in answer
        assert time.monotonic() - started <= server_limits.BODY_TIMEOUT_S + 3
    finally:
        stop.set()
        silent.close()
        slow.close()


@pytest.mark.slow
def test_every_hostile_request_gets_its_documented_answer_and_never_a_500(server):
    for attack in hostile.attacks():
        status, _ = hostile.send(server, attack.raw)
        assert status in attack.statuses and status != 500, attack.name
    assert call(f"http://127.0.0.1:{server}/predict", json.dumps({"strokes": SEVEN}).encode())[0] == 200


# --- corrupt models -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving_models_with_one_byte_changed(folder: Path, name: str):
    """The function serving a copy of models/ in which one byte of `name` is flipped; yields its URL."""
    for path in MODELS_DIR.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    port = free_port()
    process = start_function(port, MODELS_DIR=str(folder))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/nowhere", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_changed_language_model_is_refused_health_says_so_and_the_rest_serves(tmp_path):
    with serving_models_with_one_byte_changed(tmp_path, "english-lm.npz") as url:
        status, _, health = call(url + "/health")
        assert status == 200 and health["status"] == "degraded" and health["unavailable"] == ["english-lm"]
        assert set(health["models"]) == {"characters", "digits"}
        status, _, answer = call(url + "/predict?model=characters&mode=text", png(drawn()), "image/png")
        assert status == 503 and answer["error"]["code"] == "model_unavailable"
        status, _, answer = call(url + "/predict?model=characters&mode=text&context=none", png(drawn()), "image/png")
        assert status == 200 and answer["text"]


def test_a_model_file_with_one_byte_changed_is_refused_and_the_other_serves(tmp_path):
    """The lead's integrity check, end to end: one flipped byte in a copy of the digits model."""
    with serving_models_with_one_byte_changed(tmp_path, "digits.tflite") as url:
        status, _, health = call(url + "/health")
        assert status == 200 and health["status"] == "degraded" and health["unavailable"] == ["digits"]
        assert set(health["models"]) == {"characters"}
        status, headers, answer = call(url + "/predict", SEVEN_PNG, "image/png")
        assert status == 503 and answer["error"]["code"] == "model_unavailable"
        assert "Access-Control-Allow-Origin" in headers
        status, _, answer = call(url + "/predict?model=characters", png(drawn()), "image/png")
        characters = hashlib.sha256((tmp_path / "characters.tflite").read_bytes()).hexdigest()
        assert status == 200 and answer["model_version"] == characters
