"""Shared paths and fixtures. `recognizer`, `training`, `bench` and `infra` import from the editable install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", ROOT.parent / "shared" / "data"))
MODELS_DIR = Path(os.environ.get("MODELS_DIR") or ROOT / "models")
ARTIFACTS = ROOT / "tests" / "artifacts"

needs_data = pytest.mark.skipif(
    not (DATA_DIR / "mnist").is_dir(), reason=f"the real data sets are not on this machine ({DATA_DIR})"
)


@pytest.fixture(scope="session")
def client():
    """The function as deployed, through functions-framework's own app (no server process)."""
    import functions_framework

    app = functions_framework.create_app(target="predict", source=str(ROOT / "function" / "main.py"))
    return app.test_client()


def card(name: str) -> dict:
    import json

    return json.loads((MODELS_DIR / f"{name}.json").read_text())
