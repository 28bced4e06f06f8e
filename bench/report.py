"""What every benchmark hands back (a Section), markdown tables, statistics and the machine's description."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Target:
    """An acceptance target: `passed` is None where it was not measured in this run."""

    name: str
    goal: str
    measured: str
    passed: bool | None


@dataclass
class Section:
    title: str
    body: list[str] = field(default_factory=list)  # markdown paragraphs and tables
    targets: list[Target] = field(default_factory=list)

    def markdown(self) -> str:
        return "\n\n".join([f"## {self.title}", *self.body])


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    verdicts = {True: "PASS", False: "FAIL", None: "n/a"}
    return table(
        ["target", "goal", "measured", "result"],
        [[t.name, t.goal, t.measured, verdicts[t.passed]] for t in targets],
    )


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q)) * 1000 if seconds else float("nan")


def ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.1f}" if value >= 100 else f"{value:.2f}"


def mb(size_bytes: float) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} KB"


def machine() -> str:
    """CPU model and cores, memory, OS and Python: the line every number in RESULTS.md belongs to."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f", {int(meminfo.readline().split()[1]) / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def run_standalone(run, description: str, quick_help: str) -> None:
    """`python -m bench.<module> [--quick]`: run one benchmark and print its tables."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    section = run(parser.parse_args().quick)
    print(section.markdown())
    print()
    print(targets_table(section.targets))
