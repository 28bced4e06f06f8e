"""Serving must never import TensorFlow: a fresh interpreter serves requests, then checks sys.modules."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

SCRIPT = """
import sys
import functions_framework
app = functions_framework.create_app(target="predict", source=r"{main}")
client = app.test_client()
assert client.get("/health").status_code == 200
answer = client.post("/predict", json={{"strokes": [[[10, 10], [12, 90]]], "mode": "text"}})
assert answer.status_code == 200, answer.json
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print("LOADED", loaded)
sys.exit(1 if loaded else 0)
"""


def test_serving_imports_no_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(main=ROOT / "function" / "main.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOADED []" in result.stdout
