"""Adding a model is adding its files: a third model in models/ is served, listed and packaged with no code edit."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from test_api_contract import SEVEN_PNG

from conftest import MODELS_DIR, ROOT
from infra.run_local import free_port, function_command, stop, wait_healthy

NEW_MODEL = "numerals"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """The shipped models plus `numerals`: a copy of the digits model under a new name and card."""
    folder = tmp_path_factory.mktemp("models")
    for path in MODELS_DIR.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    shutil.copy(MODELS_DIR / "digits.tflite", folder / f"{NEW_MODEL}.tflite")
    card = json.loads((MODELS_DIR / "digits.json").read_text())
    (folder / f"{NEW_MODEL}.json").write_text(json.dumps({**card, "name": NEW_MODEL}))
    return folder


@pytest.fixture(scope="module")
def server(models_dir):
    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(models_dir)}
    process = subprocess.Popen(function_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(url, process, seconds=60)
        yield url
    finally:
        stop(process)


def test_health_lists_the_new_model(server):
    with urllib.request.urlopen(server + "/health", timeout=10) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok"
    assert next(iter(health["models"])) == "digits", "the default model is listed first"
    assert {"digits", "characters", NEW_MODEL} <= set(health["models"])
    assert health["models"][NEW_MODEL]["labels"] == list("0123456789")


def test_predict_answers_with_the_new_model(server):
    body = json.dumps({"image": base64.b64encode(SEVEN_PNG).decode(), "model": NEW_MODEL}).encode()
    request = urllib.request.Request(server + "/predict", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["model"] == NEW_MODEL and answer["prediction"] == "7"


def test_the_packager_includes_the_new_model(models_dir, tmp_path):
    out = tmp_path / "function.zip"
    command = [sys.executable, str(ROOT / "infra" / "package.py"), "--out", str(out), "--models-dir", str(models_dir)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    names = zipfile.ZipFile(out).namelist()
    assert {f"models/{NEW_MODEL}.tflite", f"models/{NEW_MODEL}.json"} <= set(names)
