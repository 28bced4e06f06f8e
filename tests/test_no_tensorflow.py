"""Serving must never import TensorFlow: a fresh interpreter serves requests, then checks sys.modules.

Nor numpy.ma, which np.median and np.percentile import on first use: about 20 ms
that the first text-mode request of every instance paid after its warm-up.
"""

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
three = [[[x, 10], [x + 2, 90]] for x in (10, 60, 90)]  # gaps between letters: the loose-space rule's percentile
answer = client.post("/predict", json={{"strokes": three, "mode": "text", "model": "characters"}})
assert answer.status_code == 200, answer.json
print("MASKED", "numpy.ma" in sys.modules)
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
    assert "MASKED False" in result.stdout
