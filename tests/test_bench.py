"""`make bench` runs end to end: `python -m bench.run_all --quick` completes and writes its tables.

No timing is asserted here, ever: the numbers live in bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

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
