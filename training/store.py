"""Where training keeps what it produces, and how it writes it (no TensorFlow).

Run summaries go to training/runs/ (committed, the evidence the cards cite),
Keras checkpoints to training/checkpoints/ (git-ignored, for --resume-from).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RUNS_DIR = Path(__file__).resolve().parent / "runs"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
    try:
        os.chmod(f.name, 0o644)
        os.replace(f.name, path)
    except BaseException:
        os.unlink(f.name)
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())


def load_runs(task: str, runs_dir: Path = RUNS_DIR) -> tuple[dict | None, list[dict]]:
    """(the task's baseline run summary or None, every other run summary of the task) from runs_dir."""
    baseline_path = runs_dir / f"{task}-baseline.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.exists() else None
    experiments = [json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"{task}-*.json")) if p != baseline_path]
    return baseline, experiments
