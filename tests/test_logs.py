"""The function's log: one Cloud Logging JSON line per request, read from the real server's stdout.

What an operator filters on must be there (severity, httpRequest with status,
latency and sizes, model, mode, outcome, timing_ms, the trace), and what a
user sent must not be (no image, no strokes, no answer).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import re
import subprocess
import urllib.error
import urllib.request

import pytest
from test_api_contract import SEVEN, SEVEN_PNG
from test_hostile import raw_answer

from conftest import MODELS_DIR
from infra.run_local import free_port, function_command, wait_until_answering
from recognizer.request_log import severity_of, trace_fields

PROJECT = "demo-project"
TRACE = "105445aa7843bc8bf206b12000100000"
SPOOFED_IP, FRONT_END_SAW = "192.0.2.1", "203.0.113.9"  # what a client wrote in X-Forwarded-For, what Google added
HUGE_HEADERS = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n"  # over 32 KB


def send(url: str, body: bytes | None, content_type: str, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


@pytest.fixture(scope="module")
def served_log() -> tuple[list[tuple[str, int]], list[str]]:
    """Run the real server, send a known set of requests, stop it: (what was sent with its status, stdout lines)."""
    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(MODELS_DIR), "GOOGLE_CLOUD_PROJECT": PROJECT, "WORKERS": "1"}
    process = subprocess.Popen(
        function_command(port), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    url = f"http://127.0.0.1:{port}"
    sent = []
    try:
        wait_until_answering(url + "/health", process)
        sent.append(("health", 200))
        trace = {"X-Cloud-Trace-Context": f"{TRACE}/12345678901234567890;o=1"}  # a span id as large as they come
        sent.append(("canvas", send(url + "/predict", SEVEN_PNG, "image/png", trace)))
        strokes = json.dumps({"strokes": SEVEN, "model": "characters", "mode": "text"}).encode()
        sent.append(("strokes", send(url + "/predict", strokes, "application/json")))
        sent.append(("not an image", send(url + "/predict", b"not an image", "image/png")))
        sent.append(("unknown model", send(url + "/predict?model=nope", SEVEN_PNG, "image/png")))
        sent.append(("chunked", send_chunked(port, SEVEN_PNG, {"X-Forwarded-For": f"{SPOOFED_IP}, {FRONT_END_SAW}"})))
        # Refused before the app sees them: by the server layer (the headers' size) and by the HTTP parser.
        sent.append(("headers too large", raw_answer(port, HUGE_HEADERS)[0]))
        sent.append(("not HTTP", raw_answer(port, b"GARBAGE\r\n\r\n")[0]))
        unknown_coding = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n"
        sent.append(("transfer coding", raw_answer(port, unknown_coding)[0]))
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    return sent, output.splitlines()


def send_chunked(port: int, body: bytes, headers: dict) -> int:
    """POST the body in chunks, as a client streaming an upload does: no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunks = iter([body[: len(body) // 2], body[len(body) // 2 :]])
        connection.request("POST", "/predict", chunks, {"Content-Type": "image/png", **headers}, encode_chunked=True)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def request_entries(lines: list[str]) -> list[dict]:
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if "httpRequest" in entry]


def test_every_stdout_line_is_a_structured_entry(served_log):
    _, lines = served_log
    assert lines
    for line in lines:
        entry = json.loads(line)  # a line that is not JSON would reach Cloud Logging as unstructured text
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(entry["message"], str)


def test_one_entry_per_request_with_what_an_operator_filters_on(served_log):
    sent, lines = served_log
    entries = request_entries(lines)
    assert [entry["httpRequest"]["status"] for entry in entries] == [status for _, status in sent]
    assert [status for _, status in sent] == [200, 200, 200, 400, 404, 200, 431, 400, 501]
    health, canvas, strokes, bad, unknown, chunked, huge, garbage, coding = entries
    assert coding["severity"] == "WARNING" and coding["outcome"] == "unsupported_transfer_encoding"  # the client's
    assert "Traceback" not in coding["message"]
    assert huge["severity"] == "WARNING" and huge["outcome"] == "headers_too_large"
    assert huge["httpRequest"]["requestMethod"] == "GET" and huge["httpRequest"]["requestUrl"] == "/health"
    assert huge["httpRequest"]["remoteIp"] == "127.0.0.1" and huge["httpRequest"]["latency"].endswith("s")
    assert garbage["severity"] == "WARNING" and garbage["outcome"] == "bad_request"
    assert "requestMethod" not in garbage["httpRequest"]
    assert int(chunked["httpRequest"]["requestSize"]) == len(SEVEN_PNG)  # no Content-Length: the bytes read
    assert chunked["httpRequest"]["remoteIp"] == FRONT_END_SAW  # not the address the client claimed
    assert canvas["httpRequest"]["remoteIp"] == "127.0.0.1"  # no X-Forwarded-For: the peer
    for entry in (health, canvas, strokes, bad, unknown, chunked):
        http = entry["httpRequest"]
        assert re.fullmatch(r"\d+\.\d{6}s", http["latency"]) and float(http["latency"][:-1]) > 0
        assert int(http["responseSize"]) > 0
        assert http["requestMethod"] in ("GET", "POST") and http["requestUrl"].startswith("http://127.0.0.1:")
    assert canvas["severity"] == "INFO" and canvas["outcome"] == "ok"
    assert (canvas["model"], canvas["mode"]) == ("digits", "single")
    assert int(canvas["httpRequest"]["requestSize"]) == len(SEVEN_PNG)
    assert set(canvas["timing_ms"]) >= {"decode", "preprocess", "inference", "total"}
    assert canvas["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE}"
    assert canvas["logging.googleapis.com/spanId"] == "ab54a98ceb1f0ad2"  # the header's decimal, as 16 hex digits
    assert canvas["logging.googleapis.com/trace_sampled"] is True
    assert (strokes["model"], strokes["mode"], strokes["outcome"]) == ("characters", "text", "ok")
    assert "logging.googleapis.com/trace" not in strokes
    assert bad["severity"] == "WARNING" and bad["outcome"] == "bad_image"
    assert unknown["severity"] == "WARNING" and unknown["outcome"] == "unknown_model"
    assert health["outcome"] == "ok" and "model" not in health


def test_no_entry_carries_what_the_user_sent_or_got(served_log):
    _, lines = served_log
    text = "\n".join(lines)
    assert "data:image" not in text  # the answer's input strip
    assert base64.b64encode(SEVEN_PNG[:48]).decode()[:40] not in text
    assert "[[60, 60]" not in text and "[[60,60]" not in text  # the strokes
    assert all(len(line) < 2000 for line in lines)


def test_an_unexpected_error_is_logged_at_error_with_its_traceback(client, capsys, monkeypatch):
    import main

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(main, "recognize", broken)
    response = client.post("/predict", data=SEVEN_PNG, content_type="image/png")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal"
    (entry,) = request_entries(capsys.readouterr().out.splitlines())
    assert entry["severity"] == "ERROR" and entry["outcome"] == "internal"
    assert entry["message"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: a bug of ours" in entry["message"]


def test_answers_tell_browsers_not_to_sniff_or_cache(client):
    for response in (
        client.post("/predict", data=SEVEN_PNG, content_type="image/png"),
        client.post("/predict", data=b"", content_type="image/png"),
        client.get("/health"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("header", "span"),
    [("abc/1;o=0", "0000000000000001"), ("abc/0", None), (f"abc/{2**64}", None), ("abc/1f;o=1", None), ("abc", None)],
)
def test_a_span_id_is_logged_in_hex_and_only_when_valid(header, span):
    """X-Cloud-Trace-Context names the span in decimal; Cloud Logging wants 16 hex digits (googleapis/python-logging
    issue 942). Zero, 2**64 and more, and anything not decimal name no span."""
    assert trace_fields(header).get("logging.googleapis.com/spanId") == span


@pytest.mark.parametrize(
    ("status", "severity"),
    [(200, logging.INFO), (404, logging.WARNING), (500, logging.ERROR), (501, logging.WARNING), (503, logging.ERROR)],
)
def test_only_faults_of_the_server_are_logged_as_errors(status, severity):
    """501 is the answer to a client's transfer coding (unsupported_transfer_encoding): a warning, not a fault."""
    assert severity_of(status) == severity
