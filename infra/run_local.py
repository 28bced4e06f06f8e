"""`make run`: the function under functions-framework and the site on a second port.

The browser makes a real cross-origin call from the site's origin to the
function's, as in the cloud. The site's config.js is served with this run's
API address, so nothing on disk is rewritten. Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from recognizer.cards import find_models

ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = ROOT / "site"


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from site/, with config.js pointing at this run's function."""

    api_url = "http://localhost:8080"

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.js":
            body = f'window.HANDWRITING_CONFIG = {{ apiUrl: "{self.api_url}" }};\n'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # keep the terminal for the function's log
        pass


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_setup(port: int, site_port: int, models_dir: Path) -> str | None:
    """The first thing that stops a local run, as a one-line instruction; None if all is well."""
    for path in sorted(models_dir.glob("*.tflite")):
        if not path.with_suffix(".json").is_file():
            return f"model card {path.with_suffix('.json')} is missing: restore it with `git checkout -- models/` or rebuild it with `make train`"
    names = find_models(models_dir)
    if not names:
        return f"no model cards in {models_dir}: restore them with `git checkout -- models/` or rebuild them with `make train`"
    for name in names:
        path = models_dir / f"{name}.tflite"
        if not path.is_file():
            return f"model file {path} is missing: restore it with `git checkout -- models/` or rebuild it with `make train`"
    for what, p, var in (("function", port, "PORT"), ("site", site_port, "SITE_PORT")):
        if not port_is_free(p):
            return f"port {p} (for the {what}) is busy: stop what uses it (`ss -ltnp 'sport = :{p}'`) or run `make run {var}=<free port>`"
    return None


def start_site(site_port: int, api_url: str) -> http.server.ThreadingHTTPServer:
    SiteHandler.api_url = api_url
    handler = functools.partial(SiteHandler, directory=str(SITE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", site_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    """A loopback port nothing listens on now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def function_command(port: int) -> list[str]:
    """functions-framework serving function/main.py's `predict` on 127.0.0.1, as `make run` starts it."""
    return [
        *(sys.executable, "-m", "functions_framework", "--source", str(ROOT / "function" / "main.py")),
        *("--target", "predict", "--host", "127.0.0.1", "--port", str(port)),
    ]


def compile_function(folder: Path = ROOT / "function") -> None:
    """Compile the function's modules to bytecode, as the cloud build does before any instance starts.

    Google's Python functions buildpack runs `python3 -m compileall -f -q .` on
    the source (GoogleCloudPlatform/buildpacks, cmd/python/functions_framework),
    so a deployed instance never compiles at start. Locally Python caches the
    bytecode at the first import, unless PYTHONDONTWRITEBYTECODE is set: then
    every start compiled all of the function's modules again (about 35 ms).
    """
    compileall.compile_dir(folder, quiet=1)


def start_function(port: int, site_port: int, models_dir: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault("ALLOWED_ORIGINS", f"http://localhost:{site_port},http://127.0.0.1:{site_port}")
    env["MODELS_DIR"] = str(models_dir)
    env.setdefault("WORKERS", str(os.cpu_count() or 1))  # one gunicorn process per core (bench/RESULTS.md)
    return subprocess.Popen(function_command(port), env=env)


def wait_until_answering(url: str, process: subprocess.Popen, seconds: float = 60) -> int:
    """Poll `url` until the server gives any HTTP answer, and return its status.

    The one wait used by `make run`, the tests and the benchmarks. Raises
    RuntimeError when the process exits first, TimeoutError when `seconds` pass.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:  # an error status is still an answer
            return error.code
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no answer from {url} within {seconds:g} s")


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 30) -> bool:
    """Whether the function at `url` answers /health with 200 within `seconds`."""
    try:
        return wait_until_answering(url + "/health", process, seconds) == 200
    except (RuntimeError, TimeoutError):
        return False


def stop(process: subprocess.Popen, seconds: float = 10) -> None:
    """Terminate; kill if still running after `seconds` (or if this wait is interrupted), so no server outlives
    whoever started it."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


ENDINGS = (signal.SIGTERM, signal.SIGHUP)  # a `kill`, a closed terminal


def _end(signum: int, frame: object) -> None:
    """End as the signal asks, through `finally` (which stops the function), and once: a second one waits."""
    for ending in ENDINGS:
        signal.signal(ending, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main() -> int:
    # Without this the function server would outlive `make run`, holding its port. A signal that is ignored
    # (`nohup make run`) stays ignored.
    for ending in ENDINGS:
        if signal.getsignal(ending) is not signal.SIG_IGN:
            signal.signal(ending, _end)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="the function's port")
    parser.add_argument("--site-port", type=int, default=8000, help="the site's port")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    problem = check_setup(args.port, args.site_port, args.models_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    api_url = f"http://localhost:{args.port}"
    compile_function()
    function = None
    try:
        function = start_function(args.port, args.site_port, args.models_dir)
        if not wait_healthy(api_url, function):
            print(f"error: the function did not answer on {api_url}/health; see its log above", file=sys.stderr)
            return 1
        site = start_site(args.site_port, api_url)
        print(f"\n  Handwriting recognition is running: open http://localhost:{args.site_port}/")
        print(f"  API: {api_url}/predict   health: {api_url}/health   stop: Ctrl-C\n", flush=True)
        while function.poll() is None:  # not function.wait(): a signal the site's thread takes would not wake it
            time.sleep(0.25)
        site.shutdown()
        if function.returncode:  # the page without its function would only answer "service unreachable"
            print(f"error: the function stopped (status {function.returncode}); see its log above", file=sys.stderr)
        return function.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        for ending in (*ENDINGS, signal.SIGINT):  # one shutdown, not interrupted by a second signal
            signal.signal(ending, signal.SIG_IGN)
        if function is not None:
            stop(function)


if __name__ == "__main__":
    sys.exit(main())
