"""`make run`'s set-up checks: each problem is one line that says what to do."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MODELS_DIR, ROOT
from infra.run_local import compile_function

RUN_LOCAL = [sys.executable, str(ROOT / "infra" / "run_local.py")]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN_LOCAL, *args], capture_output=True, text=True, timeout=60)


def test_busy_port_is_explained():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("--port", str(port), "--site-port", "0", "--models-dir", str(MODELS_DIR))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "make run PORT=" in lines[0]


def test_missing_model_is_explained(tmp_path):
    shutil.copy(MODELS_DIR / "digits.tflite", tmp_path)
    result = run("--models-dir", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "digits.json is missing" in lines[0] and "make train" in lines[0]


def test_missing_python_is_explained():
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "run", "PYTHON=python-that-does-not-exist", "VENV=/nonexistent/venv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "python-that-does-not-exist not found; install Python 3.11" in result.stderr


def test_the_function_starts_from_compiled_modules(tmp_path):
    """`make run` compiles the function as the cloud build does, so no start compiles it again."""
    shutil.copytree(ROOT / "function", tmp_path / "function", ignore=shutil.ignore_patterns("__pycache__"))
    sources = sorted((tmp_path / "function").rglob("*.py"))
    compile_function(tmp_path / "function")
    assert sources and all(Path(importlib.util.cache_from_source(str(path))).is_file() for path in sources)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_make_run(hangup: signal.Handlers = signal.SIG_DFL) -> tuple[subprocess.Popen, int, int]:
    """`make run`'s script on free ports, once it says it is running; `hangup` is SIGHUP's disposition it inherits."""
    port, site_port = free_port(), free_port()
    args = ["--port", str(port), "--site-port", str(site_port), "--models-dir", str(MODELS_DIR)]
    process = subprocess.Popen(
        [*RUN_LOCAL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup),
        start_new_session=True,  # its own process group: a failed test kills the function with it
    )
    for line in process.stdout:
        if "is running" in line:
            break
    assert listening(port) and listening(site_port)
    return process, port, site_port


def stopped(port: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not listening(port)


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGHUP])
def test_make_run_ended_by_a_signal_stops_the_function_too(ending):
    """A closed terminal or a `kill` must not leave the function server behind, holding its port."""
    process, port, _ = start_make_run()
    try:
        process.send_signal(ending)
        assert process.wait(timeout=20) == 128 + ending
        assert stopped(port), "the function outlived make run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_make_run_under_nohup_outlives_its_terminal():
    process, port, site_port = start_make_run(hangup=signal.SIG_IGN)
    try:
        process.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert process.poll() is None and listening(port) and listening(site_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 128 + signal.SIGTERM and stopped(port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
