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
from playwright.sync_api import sync_playwright
from test_api_contract import SEVEN_PNG
from test_site_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    DIGITS,
    choose,
    draw_with_mouse,
    layout,
    open_page,
    pad_box,
    wait_for_answer,
)

from conftest import MODELS_DIR, ROOT
from infra.run_local import free_port, function_command, start_site, stop, wait_healthy

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


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_page_offers_the_new_model(server):
    """The page builds its choices from /health: the new model is offered and answers a drawn 7."""
    site_port = free_port()
    site = start_site(site_port, server)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page, errors = open_page(browser, f"http://127.0.0.1:{site_port}", **DESKTOP)
            choose(page, f"model:{NEW_MODEL}")
            draw_with_mouse(page, layout([DIGITS["7"]], pad_box(page)))
            page.click("#predict")
            assert wait_for_answer(page).startswith("7")
            assert errors == []
            browser.close()
    finally:
        site.shutdown()
        site.server_close()
