"""`make bench`: every benchmark in turn, each table printed as it is done, all written to bench/RESULTS.md.

python -m bench.run_all            # the full run (a few minutes; keep the machine otherwise idle)
python -m bench.run_all --quick    # tiny counts: checks that everything runs, measures nothing
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import MODELS_DIR, ROOT, cold_start, hostile, http_load, inference, report, size, stages, text_reading

BENCHMARKS = (inference, stages, text_reading, http_load, cold_start, size, hostile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke test, not a measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md", help="where to write the results")
    args = parser.parse_args(argv)
    started, load = time.monotonic(), _load()
    sections = []
    for benchmark in BENCHMARKS:
        section = benchmark.run(args.quick)
        print(section.markdown(), end="\n\n", flush=True)
        sections.append(section)
    targets = [target for section in sections for target in section.targets]
    print(report.targets_table(targets))
    command = "python -m bench.run_all " + shlex.join(sys.argv[1:] if argv is None else argv)
    facts = [
        f"machine: {report.machine()}",
        f"load average before the run: {load}, after it: {_load()} (1, 5, 15 min; a value well above 2 means "
        "the two cores were shared with other work, which slows every number here)",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: `{command.strip()}` ({time.monotonic() - started:.0f} s)",
        f"models: `{_shown(MODELS_DIR)}`",
    ]
    if args.quick:
        facts.append("**--quick: tiny counts, these numbers measure nothing**")
    header = [
        "# Benchmark results",
        "Written by `make bench` (`python -m bench.run_all`); rerun it to refresh these numbers.",
        "\n".join(f"- {fact}" for fact in facts),
        "## Acceptance targets",
        report.targets_table(targets),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n\n".join(header + [section.markdown() for section in sections]) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
