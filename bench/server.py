"""Start, probe and stop the servers under test (all on 127.0.0.1), and read their resident memory."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import MODELS_DIR, ROOT
from infra import run_local


def start_function(port: int, **env: str) -> subprocess.Popen:
    """`functions-framework --target predict` as `make run` starts it, with the shipped models."""
    return _spawn(run_local.function_command(port), {"MODELS_DIR": str(MODELS_DIR), **env})


def start_bare(port: int, **env: str) -> subprocess.Popen:
    """bench/bare_function.py under the same functions-framework command: the stack with one invoke behind it."""
    command = run_local.function_command(port)
    command[command.index("--source") + 1] = str(ROOT / "bench" / "bare_function.py")
    return _spawn(command, {"MODELS_DIR": str(MODELS_DIR), **env})


def start_tf_server(port: int, keras_file: Path) -> subprocess.Popen:
    """bench/tf_server.py: Flask + TensorFlow + keras `model.predict`, the original app's way."""
    command = [sys.executable, "-m", "bench.tf_server", "--model", str(keras_file), "--port", str(port)]
    return _spawn(command, {"TF_CPP_MIN_LOG_LEVEL": "2"})


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start in the repository root; stderr goes to a temporary file (a pipe nobody reads could fill and block)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)
    process.log = log
    return process


def error_output(process: subprocess.Popen) -> str:
    process.log.seek(0)
    return process.log.read().decode(errors="replace")[-2000:]


def post(port: int, path: str, body: bytes, content_type: str, timeout: float = 30) -> tuple[int, dict]:
    """One POST on a fresh connection: (status, JSON answer). Raises OSError while nothing listens."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def first_answer(
    process: subprocess.Popen, port: int, path: str, body: bytes, content_type: str, seconds: float = 60
) -> dict:
    """Poll with a POST (every 5 ms while nothing listens) until the first 200, and return its answer."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {error_output(process)}")
        try:
            status, answer = post(port, path, body, content_type)
        except (OSError, http.client.HTTPException):
            time.sleep(0.005)
            continue
        if status == 200:
            return answer
        raise RuntimeError(f"server answered {status}: {answer}")
    raise TimeoutError(f"no answer from 127.0.0.1:{port}{path} within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    run_local.stop(process)
    process.log.close()


def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of a process and its descendants (gunicorn's master and workers)."""
    total = 0
    for process in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{process}/status") as status:
                line = next((line for line in status if line.startswith("VmRSS:")), "VmRSS: 0 kB")
            total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found
