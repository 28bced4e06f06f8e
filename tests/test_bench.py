"""`make bench` runs end to end: `python -m bench.run_all --quick` completes and writes its tables.

No timing is asserted here, ever: the numbers live in bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, needs_data


@pytest.mark.slow
@needs_data
def test_quick_run_writes_the_results_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "| target | goal | measured | result |" in text
    for section in ("## Inference", "## HTTP end to end", "## Cold start", "## Size and memory"):
        assert section in text
