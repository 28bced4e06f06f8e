"""HTTP end to end: the real functions-framework server on 127.0.0.1 under a bounded load.

Each worker thread keeps one persistent (keep-alive) http.client connection
and sends requests back to back until the level's request count or its time
cap is reached. The client runs on the same cores as the server.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass, field

from bench import report, server
from bench.samples import Probe, probes
from infra.run_local import free_port

LEVELS = (1, 8, 32)
CONFIGS = {"default (1 worker)": {}, "WORKERS=2": {"WORKERS": "2"}}


@dataclass
class Load:
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


def run_load(port: int, probe: Probe, concurrency: int, count: int, max_seconds: float) -> Load:
    """Send `count` requests (fewer if `max_seconds` runs out) from `concurrency` keep-alive connections."""
    load = Load(concurrency)
    tickets = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    headers = {"Content-Type": probe.content_type}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies, errors = [], []
        while next(tickets) < count and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("POST", probe.path, probe.body, headers)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors.append(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()
        with lock:
            load.latencies += latencies
            load.errors += errors

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.wall = time.perf_counter() - started
    return load


def run(quick: bool = False) -> report.Section:
    count, max_seconds = (20, 2.0) if quick else (500, 4.0)
    requests = probes()
    rows, notes, targets = [], [], []
    for config, env in CONFIGS.items():
        port = free_port()
        process = server.start_function(port, **env)
        try:
            for probe in requests:
                answer = server.first_answer(process, port, probe.path, probe.body, probe.content_type)
                notes.append(_answer_note(config, probe, answer))
                run_load(port, probe, 8, 16 if quick else 100, max_seconds)  # warm up every worker and model
                for level in LEVELS:
                    load = run_load(port, probe, level, count, max_seconds)
                    rows.append(_row(config, probe, load))
                    if load.errors:
                        notes.append(f"{config}, {probe.name}, concurrency {level}: first error {load.errors[0]}")
                    if probe is requests[0]:
                        targets += _targets(config, load)
            notes.append(
                f"{config}: server RSS after its load (master and workers) {report.mb(server.rss_bytes(process.pid))}"
            )
        finally:
            server.stop(process)
    section = report.Section("HTTP end to end (functions-framework on 127.0.0.1)")
    section.body += [
        f"Each level: {count} requests or {max_seconds:.0f} s, whichever comes first, after a warm-up; "
        "one keep-alive http.client connection per client thread. The Python client shares the CPU cores with "
        "the server, so these are lower bounds on what the server alone would do.",
        report.table(
            ["server", "request", "concurrency", "requests", "errors", "p50 ms", "p99 ms", "requests/s"], rows
        ),
        "\n".join(f"- {note}" for note in notes),
    ]
    section.targets += targets
    return section


def _row(config: str, probe: Probe, load: Load) -> list:
    p50, p99 = (report.ms(report.percentile_ms(load.latencies, q)) for q in (50, 99))
    return [
        config,
        probe.name,
        load.concurrency,
        len(load.latencies),
        len(load.errors),
        p50,
        p99,
        f"{load.per_second:.0f}",
    ]


def _answer_note(config: str, probe: Probe, answer: dict) -> str:
    timing = answer["timing_ms"]
    return (
        f"{config}, {probe.name}: answered {answer['prediction']!r} (expected {probe.expected!r}); server timing_ms "
        f"decode {timing['decode']}, preprocess {timing['preprocess']}, inference {timing['inference']}, "
        f"total {timing['total']}"
    )


def _targets(config: str, load: Load) -> list[report.Target]:
    name = f"HTTP canvas PNG, {config}"
    if load.concurrency == 1:
        p50 = report.percentile_ms(load.latencies, 50)
        return [report.Target(f"{name}, concurrency 1: p50", "<= 5 ms", f"{report.ms(p50)} ms", p50 <= 5)]
    if load.concurrency == 8:
        measured = f"{load.per_second:.0f} requests/s, {len(load.errors)} errors"
        passed = load.per_second >= 500 and not load.errors
        return [report.Target(f"{name}, concurrency 8: throughput", ">= 500 requests/s, 0 errors", measured, passed)]
    return []


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "a few requests per level: a smoke test, not a measurement")


if __name__ == "__main__":
    main()
