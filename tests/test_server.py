"""The real `functions-framework --target predict` process on 127.0.0.1, over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_api_contract import ONE_ONE, SEVEN, SEVEN_PNG

from conftest import MODELS_DIR
from infra.run_local import free_port, function_command, wait_until_answering
from recognizer.api import MAX_BODY_BYTES


def start_function(port: int, log: int = subprocess.DEVNULL, **env: str) -> subprocess.Popen:
    """The function as `make run` starts it; stderr is kept for errors, stdout (one log line a request) goes to `log`."""
    environment = {**os.environ, "MODELS_DIR": str(MODELS_DIR), **env}
    return subprocess.Popen(function_command(port), env=environment, stdout=log, stderr=subprocess.PIPE)


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    try:
        wait_until_answering(url, process, seconds)
    except RuntimeError as error:
        raise RuntimeError(f"{error}: {process.stderr.read().decode()[-2000:]}") from error


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = start_function(port, ALLOWED_ORIGINS="http://127.0.0.1:9")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def call(url: str, body: bytes | None = None, content_type: str = "application/json", method: str | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers={"Origin": "http://127.0.0.1:9"})
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_health(server):
    status, headers, body = call(server + "/health")
    assert status == 200 and body["status"] == "ok"
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"


def test_each_input_form(server):
    assert call(server + "/predict", SEVEN_PNG, "image/png")[2]["prediction"] == "7"
    assert call(server + "/predict", json.dumps({"strokes": SEVEN}).encode())[2]["prediction"] == "7"
    text = call(server + "/predict", json.dumps({"strokes": ONE_ONE, "mode": "text"}).encode())[2]
    assert text["text"] == "11"


def test_errors_over_the_wire(server):
    status, headers, body = call(server + "/predict", b"\x00junk", "image/png")
    assert status == 400 and body["error"]["code"] == "bad_image"
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    assert call(server + "/nowhere")[0] == 404
    assert call(server + "/predict", method="GET")[0] == 405


def chunked_post(url: str, chunks: list[bytes]) -> tuple[int, dict]:
    """POST with Transfer-Encoding: chunked (no Content-Length), as a streaming client sends."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", "/predict", iter(chunks), {"Content-Type": "image/png"}, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_chunked_uploads_over_the_wire(server):
    status, body = chunked_post(server, [SEVEN_PNG[:100], SEVEN_PNG[100:]])
    assert status == 200 and body["prediction"] == "7"
    status, body = chunked_post(server, [SEVEN_PNG] + [b"\0" * 65536] * (MAX_BODY_BYTES // 65536 + 1))
    assert status == 413 and body["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 25 * 2**20])
def test_a_body_over_the_limit_sent_whole_before_reading_gets_its_413(server, size):
    """The function answers 413 from the Content-Length without reading the body. The connection then closes (the
    answer says so), but only once the client is done sending: a client that writes the whole body before it reads
    (urllib, http.client) gets the 413, not a reset connection, up to the 32 MB Cloud Run lets through."""
    status, headers, body = call(server + "/predict", b"\0" * size, "image/png")
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert headers["Connection"] == "close" and headers["Access-Control-Allow-Origin"]


def test_a_declared_body_over_the_limit_on_another_path_is_answered_not_waited_for(server):
    """GET /health declaring 20 MB it never sends: answered at once, not a crash once the thread gives up on it."""
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
        head = connection.recv(65536).split(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200") and "Connection: close" in head and "application/json" in head


def test_concurrent_requests_all_answered_correctly(server):
    bodies = [(SEVEN_PNG, "image/png"), (json.dumps({"strokes": SEVEN}).encode(), "application/json")] * 40
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda b: call(server + "/predict", *b), bodies))
    assert [status for status, _, _ in results] == [200] * len(bodies)
    assert {answer["prediction"] for _, _, answer in results} == {"7"}


def test_missing_models_are_reported_not_crashed(tmp_path):
    port = free_port()
    process = start_function(port, log=subprocess.PIPE, MODELS_DIR=str(tmp_path))
    try:
        wait_for(f"http://127.0.0.1:{port}/nowhere", process)
        status, _, body = call(f"http://127.0.0.1:{port}/health")
        assert status == 503 and body["error"]["code"] == "model_unavailable"
        assert str(tmp_path) not in body["error"]["message"]  # server paths are not for clients
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
        log = (out + err).decode()
    assert "make train" in log and str(tmp_path) in log  # the operator's log says what is missing and the fix
