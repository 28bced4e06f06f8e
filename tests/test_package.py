"""infra/package.py builds the zip the cloud runs, and that zip works on its own.

The last test is a deploy rehearsal: it does to the zip what Cloud Functions
does (unpack, install requirements.txt into a fresh environment, serve
`predict` from the unpacked folder, which finds models/ inside it) and sends a
drawn digit to it. It catches a missing file or dependency before a deploy
would.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from conftest import MODELS_DIR, ROOT
from infra.run_local import free_port, stop, wait_until_answering

PACKAGE_PY = ROOT / "infra" / "package.py"
MODEL_FILES = sorted(path.name for path in MODELS_DIR.iterdir() if path.is_file())  # every model and what it uses
SITE_ORIGIN = "https://storage.googleapis.com"  # what infra/main.tf puts in ALLOWED_ORIGINS by default
NETWORK_ERRORS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Max retries exceeded",
)


def package(out: Path, *args: str) -> subprocess.CompletedProcess:
    """package.py as `make package` runs it, with no site-packages (-S): the standard library must be enough, so that
    `make deploy` works where the function's requirements do not install."""
    return subprocess.run(
        [sys.executable, "-S", str(PACKAGE_PY), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "function")},
    )


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def function_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "function.zip"
    result = package(out)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "MB" in result.stdout, "package.py should print the path and size"
    return out


def test_zip_holds_the_function_and_the_models_only(function_zip):
    names = zipfile.ZipFile(function_zip).namelist()
    expected_code = {
        p.relative_to(ROOT / "function").as_posix()
        for p in (ROOT / "function" / "recognizer").glob("*.py")
        if not p.name.startswith("test_")
    }
    assert {"main.py", "requirements.txt"} | expected_code <= set(names)
    assert {f"models/{name}" for name in MODEL_FILES} <= set(names)
    assert names == sorted(names), "entries should be sorted, for a deterministic zip"
    for name in names:
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo"))
        assert not name.startswith(("tests/", "training/")) and "/test_" not in name
        assert name.split("/")[0] in {"main.py", "requirements.txt", "recognizer", "models"}, name
    with zipfile.ZipFile(function_zip) as archive:
        assert archive.read("models/digits.tflite") == (MODELS_DIR / "digits.tflite").read_bytes()
        assert archive.read("main.py") == (ROOT / "function" / "main.py").read_bytes()


def test_two_builds_give_the_same_md5(function_zip, tmp_path):
    """Copying the models (new timestamps) must not change the zip: only content may change its md5."""
    models = tmp_path / "models"
    models.mkdir()
    for name in MODEL_FILES:
        shutil.copy(MODELS_DIR / name, models / name)
    again = tmp_path / "again.zip"
    result = package(again, "--models-dir", str(models))
    assert result.returncode == 0, result.stderr
    assert md5(again) == md5(function_zip)


def test_a_missing_model_is_one_clear_line(tmp_path):
    result = package(tmp_path / "function.zip", "--models-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "no model cards" in result.stderr and "make train" in result.stderr
    assert "git checkout -- models/" in result.stderr
    shutil.copy(MODELS_DIR / "digits.json", tmp_path / "digits.json")  # a card without its model
    result = package(tmp_path / "function.zip", "--models-dir", str(tmp_path))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "digits.tflite is missing" in result.stderr and "make train" in result.stderr
    assert not (tmp_path / "function.zip").exists()


def draw_seven() -> bytes:
    """A 7 as thick dark strokes on white, the way someone would draw it on the site's canvas."""
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(70, 60), (210, 60), (120, 225)], fill=0, width=26, joint="curve")
    for x, y in ((70, 60), (120, 225)):
        draw.ellipse((x - 13, y - 13, x + 13, y + 13), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def get_json(url: str, data: bytes | None = None) -> tuple[int, dict, dict]:
    headers = {"Origin": SITE_ORIGIN, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def start_server(folder: Path, venv: Path, port: int, log: Path) -> subprocess.Popen:
    """functions-framework as Cloud Functions runs it: from the unpacked source, with no MODELS_DIR."""
    env = {k: v for k, v in os.environ.items() if k not in ("MODELS_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env["ALLOWED_ORIGINS"] = SITE_ORIGIN
    command = [str(venv / "bin" / "functions-framework"), "--target", "predict", "--source", "main.py"]
    with log.open("w") as out:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)], cwd=folder, env=env, stdout=out, stderr=out
        )


def wait_for_health(server: subprocess.Popen, url: str, log: Path) -> dict:
    try:
        wait_until_answering(url, server, seconds=90)
    except (RuntimeError, TimeoutError) as error:
        pytest.fail(f"{error}:\n{log.read_text()[-3000:]}")
    status, _, body = get_json(url)
    assert status == 200, body
    return body


@pytest.mark.slow
def test_deploy_rehearsal_from_the_zip_alone(function_zip, tmp_path):
    """Unpack, install requirements.txt into a fresh venv, serve, recognise a drawn 7."""
    source = tmp_path / "source"
    zipfile.ZipFile(function_zip).extractall(source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-r", "requirements.txt"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if install.returncode != 0:
        output = install.stdout + install.stderr
        network = [line for line in output.splitlines() if any(marker in line for marker in NETWORK_ERRORS)]
        if network:
            pytest.skip(
                f"the package registry cannot be reached, so requirements.txt cannot be installed: {network[0]}"
            )
        pytest.fail(f"pip install -r requirements.txt from the zip failed:\n{output[-3000:]}")

    port, log = free_port(), tmp_path / "server.log"
    server = start_server(source, venv, port, log)
    try:
        health = wait_for_health(server, f"http://127.0.0.1:{port}/health", log)
        assert health["status"] == "ok"
        for name in ("digits", "characters"):
            card = json.loads((MODELS_DIR / f"{name}.json").read_text())
            assert health["models"][name]["version"] == card["version"], "the zip must carry the shipped models"

        payload = {"image": base64.b64encode(draw_seven()).decode(), "model": "digits"}
        status, headers, body = get_json(f"http://127.0.0.1:{port}/predict", json.dumps(payload).encode())
        assert status == 200, body
        assert headers.get("Access-Control-Allow-Origin") == SITE_ORIGIN
        assert body["model"] == "digits"
        assert body["prediction"] == "7", body["top"]
        assert 0 <= body["confidence"] <= 1
        assert len(body["top"]) == 5
    finally:
        stop(server, seconds=15)
