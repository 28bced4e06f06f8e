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


# The files that take longest (about 6, 4 and 4 minutes on two cores), run first: make test hands files to two
# processes in this order, and one that starts last keeps the other waiting.
LONGEST_FIRST = ("test_fidelity.py", "test_training.py", "test_site_browser.py", "test_bench.py", "test_rejection.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def client():
    """The function as deployed, through functions-framework's own app (no server process)."""
    import functions_framework

    app = functions_framework.create_app(target="predict", source=str(ROOT / "function" / "main.py"))
    return app.test_client()


def card(name: str) -> dict:
    import json

    return json.loads((MODELS_DIR / f"{name}.json").read_text())
