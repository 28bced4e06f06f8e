"""HTTP end to end: the real functions-framework server on 127.0.0.1 under a bounded load, beside its limit.

Each client thread keeps one persistent (keep-alive) http.client connection
and sends requests back to back until the level's request count or its time
cap is reached. The client runs on the same cores as the server.

Three parts, all in one run so they share the machine's state:
- side by side: the canvas PNG on the function and on bench/bare_function.py
  (the same server with one LiteRT invoke behind it: the stack's limit), one
  and two workers, interleaved and repeated, so contention hits all alike;
- every request kind at concurrency 1, 8 and 32 on the function;
- one worker with N threads at concurrency N (the Cloud Run setting
  infra/main.tf takes from it): throughput against p99.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from bench import report, server
from bench.samples import Probe, digit, probes
from infra.run_local import free_port

LEVELS = (1, 8, 32)
THREADS = 8  # gunicorn threads per worker: the per-instance concurrency infra/main.tf sets
REPEATS = 3  # side-by-side rounds; the median counts and the spread is shown
SWEEP = (1, 2, 4, 8, 16, 32)  # N threads at concurrency N, one worker
SERVERS = {  # name -> (which server, its environment)
    "bare LiteRT, 1 worker": ("bare", {"WORKERS": "1"}),
    "bare LiteRT, WORKERS=2": ("bare", {"WORKERS": "2"}),
    "function, 1 worker": ("function", {"WORKERS": "1"}),
    "function, WORKERS=2": ("function", {"WORKERS": "2"}),
}
GOALS = {  # canvas PNG at concurrency 8: requests/s per configuration
    "function, 1 worker": 700,
    "function, WORKERS=2": 1500,
}
SHARE_OF_BARE = 0.8
P50_GOAL_MS = 1.5  # canvas PNG at concurrency 1
REQUEST_TIMEOUT_S = 30  # one request's wait for its answer
IN_FLIGHT_GRACE_S = 2  # a request in flight when the time is up gets this long more to be answered
CUT_OFF = "unanswered when the time was up"


@dataclass
class Load:
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful (2xx) requests only
    errors: collections.Counter = field(default_factory=collections.Counter)  # "HTTP 429", "ConnectionResetError"...
    wall: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def run_load(target: int | str, probe: Probe, concurrency: int, count: int, max_seconds: float) -> Load:
    """Send `count` requests (fewer if `max_seconds` runs out) from `concurrency` keep-alive connections.

    `target` is a port on 127.0.0.1 or a base URL (http or https) whose path the probe's path is appended to.
    No request starts after `max_seconds`, and one still unanswered IN_FLIGHT_GRACE_S later is given up and
    counted as CUT_OFF, so a server that stops answering cannot stretch the run.
    """
    url = urllib.parse.urlsplit(target if isinstance(target, str) else f"http://127.0.0.1:{target}")
    connect = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    path = url.path.rstrip("/") + probe.path
    load = Load(concurrency)
    tickets = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    headers = {"Content-Type": probe.content_type}

    def patience() -> float:
        """Seconds the next socket operation may wait: REQUEST_TIMEOUT_S, or less near the deadline."""
        return max(0.001, min(REQUEST_TIMEOUT_S, deadline + IN_FLIGHT_GRACE_S - time.monotonic()))

    def worker() -> None:
        connection = None
        latencies, errors = [], collections.Counter()
        while next(tickets) < count and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection = connection or connect(url.netloc)
                connection.timeout = patience()
                if connection.sock is None:  # new, or closed by the server after its last answer
                    connection.connect()
                connection.sock.settimeout(connection.timeout)
                connection.request("POST", path, probe.body, headers)
                connection.sock.settimeout(patience())  # sending took some of it
                response = connection.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[f"HTTP {response.status}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                late = isinstance(exc, TimeoutError) and time.monotonic() >= deadline
                errors[CUT_OFF if late else type(exc).__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
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


def bare_probe() -> Probe:
    """The bare function's request: an MNIST test digit as 784 raw bytes."""
    image, label = digit(0)
    return Probe("raw 28x28 (bare LiteRT)", "/predict", "application/octet-stream", image.tobytes(), label)


def start(kind: str, env: dict[str, str]) -> tuple[object, int]:
    port = free_port()
    start_server = server.start_bare if kind == "bare" else server.start_function
    return start_server(port, **{"THREADS": str(THREADS), **env}), port


def run(quick: bool = False) -> report.Section:
    count, max_seconds, repeats = (20, 1.0, 1) if quick else (3000, 3.0, REPEATS)
    canvas, raw = probes()[0], bare_probe()
    section = report.Section("HTTP end to end (functions-framework on 127.0.0.1)")
    section.body.append(
        f"Each measurement: {count} requests or {max_seconds:.0f} s, whichever comes first, after a warm-up; one "
        "keep-alive http.client connection per client thread. The Python client shares the CPU cores with the "
        f"server (it costs about 0.14 ms of CPU per request), so these are lower bounds. Every server has "
        f"THREADS={THREADS} (gunicorn threads per worker)."
    )
    side, targets = _side_by_side(canvas, raw, count, max_seconds, repeats)
    section.body += side
    rows, kind_notes = _every_kind(count, max_seconds)
    section.body += [
        "### Every request kind (function)",
        report.table(
            ["server", "request", "concurrency", "requests", "errors", "p50 ms", "p99 ms", "requests/s"], rows
        ),
        "\n".join(f"- {note}" for note in kind_notes),
        "### One worker, N threads at concurrency N (canvas PNG)",
        "What infra/main.tf's per-instance concurrency is chosen from: past the point where throughput stops "
        "growing, more concurrent requests per instance only queue inside it (p99 grows, throughput does not).",
        _sweep(canvas, count, max_seconds),
    ]
    section.targets += targets
    return section


def _side_by_side(canvas: Probe, raw: Probe, count: int, seconds: float, repeats: int) -> tuple[list, list]:
    """Canvas PNG on the function and raw bytes on the bare function, all servers up at once, rounds interleaved."""
    running = {name: start(kind, env) for name, (kind, env) in SERVERS.items()}
    rates: dict[tuple[str, int], list[Load]] = collections.defaultdict(list)
    try:
        for name, (process, port) in running.items():
            probe = raw if SERVERS[name][0] == "bare" else canvas
            server.first_answer(process, port, probe.path, probe.body, probe.content_type)
            run_load(port, probe, 8, 200, seconds)  # every worker and thread has answered once
        for _ in range(repeats):
            for level in (1, 8):
                for name, (_, port) in running.items():
                    probe = raw if SERVERS[name][0] == "bare" else canvas
                    rates[name, level].append(run_load(port, probe, level, count, seconds))
    finally:
        for process, _ in running.values():
            server.stop(process)
    rows = []
    for (name, level), loads in rates.items():
        per_second = [load.per_second for load in loads]
        p50 = [report.percentile_ms(load.latencies, 50) for load in loads]
        p99 = [report.percentile_ms(load.latencies, 99) for load in loads]
        rows.append(
            [
                name,
                level,
                sum(len(load.latencies) for load in loads),
                sum(load.error_count for load in loads),
                _spread(p50, report.ms),
                _spread(p99, report.ms),
                _spread(per_second, lambda v: f"{v:.0f}"),
            ]
        )
    targets = []
    median = {key: statistics.median(load.per_second for load in loads) for key, loads in rates.items()}
    for name, goal in GOALS.items():
        bare_name = name.replace("function", "bare LiteRT")
        errors = sum(load.error_count for load in rates[name, 8])
        measured, limit = median[name, 8], median[bare_name, 8]
        targets.append(
            report.Target(
                f"HTTP canvas PNG, {name}, concurrency 8: throughput",
                f">= {goal} requests/s, 0 errors",
                f"{measured:.0f} requests/s, {errors} errors",
                measured >= goal and not errors,
            )
        )
        targets.append(
            report.Target(
                f"HTTP canvas PNG, {name}, concurrency 8: share of the bare LiteRT function ({bare_name})",
                f">= {SHARE_OF_BARE:.1f}x",
                f"{measured / limit:.2f}x ({measured:.0f} vs {limit:.0f} requests/s)",
                measured >= SHARE_OF_BARE * limit,
            )
        )
    p50 = statistics.median(report.percentile_ms(load.latencies, 50) for load in rates["function, 1 worker", 1])
    targets.append(
        report.Target(
            "HTTP canvas PNG, function, 1 worker, concurrency 1: p50",
            f"<= {P50_GOAL_MS} ms",
            f"{report.ms(p50)} ms",
            p50 <= P50_GOAL_MS,
        )
    )
    body = [
        f"### Side by side: the function (canvas PNG 280x280) and the bare LiteRT function (raw 28x28), {repeats} "
        "interleaved rounds",
        "Cells are the median of the rounds with the lowest and highest in brackets; requests and errors are totals.",
        report.table(["server", "concurrency", "requests", "errors", "p50 ms", "p99 ms", "requests/s"], rows),
    ]
    return body, targets


def _spread(values: list[float], show) -> str:
    if len(values) == 1:
        return show(values[0])
    return f"{show(statistics.median(values))} ({show(min(values))}-{show(max(values))})"


def _every_kind(count: int, seconds: float) -> tuple[list, list]:
    rows, notes = [], []
    for name in ("function, 1 worker", "function, WORKERS=2"):
        process, port = start(*SERVERS[name])
        try:
            for probe in probes():
                answer = server.first_answer(process, port, probe.path, probe.body, probe.content_type)
                notes.append(_answer_note(name, probe, answer))
                run_load(port, probe, 8, 100, seconds)  # warm every thread
                for level in LEVELS:
                    load = run_load(port, probe, level, count, seconds)
                    rows.append(_row(name, probe, load))
                    if load.errors:
                        notes.append(f"{name}, {probe.name}, concurrency {level}: errors {dict(load.errors)}")
            notes.append(
                f"{name}: server RSS after its load (master and workers) {report.mb(server.rss_bytes(process.pid))}"
            )
        finally:
            server.stop(process)
    return rows, notes


def _sweep(canvas: Probe, count: int, seconds: float) -> str:
    rows = []
    for threads in SWEEP:
        port = free_port()
        process = server.start_function(port, WORKERS="1", THREADS=str(threads))
        try:
            server.first_answer(process, port, canvas.path, canvas.body, canvas.content_type)
            run_load(port, canvas, threads, 100, seconds)
            load = run_load(port, canvas, threads, count, seconds)
            rss = server.rss_bytes(process.pid)
        finally:
            server.stop(process)
        p50, p99 = (report.ms(report.percentile_ms(load.latencies, q)) for q in (50, 99))
        rows.append(
            [threads, len(load.latencies), load.error_count, p50, p99, f"{load.per_second:.0f}", report.mb(rss)]
        )
    return report.table(["threads = concurrency", "requests", "errors", "p50 ms", "p99 ms", "requests/s", "RSS"], rows)


def _row(config: str, probe: Probe, load: Load) -> list:
    p50, p99 = (report.ms(report.percentile_ms(load.latencies, q)) for q in (50, 99))
    return [
        config,
        probe.name,
        load.concurrency,
        len(load.latencies),
        load.error_count,
        p50,
        p99,
        f"{load.per_second:.0f}",
    ]


def _answer_note(config: str, probe: Probe, answer: dict) -> str:
    timing = answer["timing_ms"]
    return (
        f"{config}, {probe.name}: answered {answer['prediction']!r} (expected {probe.expected!r}); first answer's "
        f"timing_ms decode {timing['decode']}, preprocess {timing['preprocess']}, inference {timing['inference']}, "
        f"total {timing['total']}"
    )


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "a few requests per level: a smoke test, not a measurement")


if __name__ == "__main__":
    main()
