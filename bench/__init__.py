"""Benchmarks behind `make bench`: inference, where a request's time goes, text reading, HTTP load, cold start, hostile traffic, size. See bench/RESULTS.md."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("MODELS_DIR") or ROOT / "models")
DATA_DIR = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "data")
ARTIFACTS = ROOT / "bench" / "artifacts"  # git-ignored caches: Keras and float models, the install-size measurement
