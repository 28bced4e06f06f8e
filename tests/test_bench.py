"""`make bench` runs end to end: `python -m bench.run_all --quick` completes and writes its tables.

No timing is asserted here, ever: the numbers live in bench/RESULTS.md.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from bench.http_load import CUT_OFF, IN_FLIGHT_GRACE_S, run_load
from bench.samples import Probe
from conftest import ROOT, needs_data


@pytest.mark.slow
@needs_data
def test_quick_run_writes_the_results_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "| target | goal | measured | result |" in text
    for section in ("## Inference", "## HTTP end to end", "## Cold start", "## Size and memory"):
        assert section in text
    for part in ("### Side by side", "bare LiteRT, WORKERS=2", "### One worker, N threads", "### The first request"):
        assert part in text
    for target in (
        "share of the bare LiteRT function",
        "app call (no socket), canvas PNG",
        "first request after start",
        "text line, 60 characters",
    ):
        assert target in text


@pytest.mark.slow
def test_loadtest_reports_rate_latency_and_errors():
    """`make loadtest` without URL: the local function, a bounded number of requests, the three numbers printed."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.loadtest", "--requests", "40", "--seconds", "20", "--kind", "strokes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "answered (2xx): 40 in" in result.stdout and "requests/s" in result.stdout
    assert "latency: p50" in result.stdout and "p99" in result.stdout
    assert "errors: none" in result.stdout


def test_loadtest_refuses_an_unbounded_run():
    result = subprocess.run(
        [sys.executable, "-m", "bench.loadtest", "--requests", "10000000"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "--requests" in result.stderr


def test_a_load_on_a_server_that_never_answers_stops_at_its_time_limit():
    """The load's --seconds bounds the run: a request still in flight then waits IN_FLIGHT_GRACE_S more, not the
    30 s a request may otherwise take, and is counted as unanswered, not as an answer."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel's backlog), never answers
    with listener:
        probe = Probe("silent", "/predict", "image/png", b"x" * 100, "7")
        load = run_load(listener.getsockname()[1], probe, concurrency=2, count=10, max_seconds=0.5)
    assert load.latencies == [] and load.errors == {CUT_OFF: 2}
    assert load.wall < 0.5 + IN_FLIGHT_GRACE_S + 3  # before, each connection waited out its 30 s timeout
