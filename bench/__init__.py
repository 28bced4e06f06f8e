"""Benchmarks behind `make bench`: inference, HTTP load, cold start, size. See bench/RESULTS.md.

Importing the package puts function/ (the deployed `recognizer` package) and
tests/ (the `synthetic` request generators) on sys.path, as tests/conftest.py does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("MODELS_DIR") or ROOT / "models")
DATA_DIR = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "data")
ARTIFACTS = ROOT / "bench" / "artifacts"  # git-ignored caches: Keras and float models, the install-size measurement

for folder in (ROOT / "function", ROOT / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
