"""`make loadtest [URL=https://...]`: a bounded load on a deployment, or on the function started here.

    python -m bench.loadtest                                  # the local function, as one Cloud Run instance
    python -m bench.loadtest --url https://REGION-PROJECT.cloudfunctions.net/handwriting-api
    python -m bench.loadtest --url ... --requests 5000 --seconds 60 --concurrency 32 --kind strokes

Sends POST /predict back to back from `--concurrency` keep-alive connections
until `--requests` have been sent or `--seconds` have passed, whichever comes
first (both capped, so a typo cannot run up a bill; a request still unanswered
IN_FLIGHT_GRACE_S after the time is up is given up and counted), and prints requests/s,
p50/p99 latency and the errors by status. The requests are built in (the
same "7" the function warms up on), so no data set is needed. Without --url
the function is started here with one worker and THREADS threads, what one
deployed instance runs (infra/main.tf), and stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench import report, server
from bench.http_load import THREADS, run_load
from bench.samples import Probe
from infra.run_local import free_port
from recognizer.warm_up import SEVEN, images

MAX_REQUESTS = 100_000
MAX_SECONDS = 600


def built_in(kind: str) -> Probe:
    """The request of one kind: a canvas PNG, a photo JPEG or pen strokes of a "7"."""
    (_, png), (_, jpeg) = images()
    if kind == "canvas":
        return Probe("canvas PNG 280x280", "/predict", "image/png", png, "7")
    if kind == "photo":
        return Probe("photo JPEG 280x280", "/predict", "image/jpeg", jpeg, "7")
    body = json.dumps({"strokes": SEVEN, "width": 280, "height": 280}).encode()
    return Probe("strokes JSON", "/predict", "application/json", body, "7")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the function's base URL (default: start the function here)")
    parser.add_argument("--requests", type=int, default=2000, help=f"at most this many (<= {MAX_REQUESTS:,})")
    parser.add_argument("--seconds", type=float, default=20, help=f"for at most this long (<= {MAX_SECONDS})")
    parser.add_argument("--concurrency", type=int, default=8, help="connections sending at once")
    parser.add_argument("--kind", choices=("canvas", "photo", "strokes"), default="canvas")
    args = parser.parse_args(argv)
    if not 0 < args.requests <= MAX_REQUESTS or not 0 < args.seconds <= MAX_SECONDS or not 0 < args.concurrency <= 256:
        parser.error(f"--requests 1..{MAX_REQUESTS}, --seconds up to {MAX_SECONDS}, --concurrency 1..256")
    probe = built_in(args.kind)
    process = None
    target = args.url
    if target is None:
        port = free_port()
        process = server.start_function(port, WORKERS="1", THREADS=str(THREADS))
        server.first_answer(process, port, probe.path, probe.body, probe.content_type)
        target = f"http://127.0.0.1:{port}"
    try:
        where = args.url or f"the local function ({target}, 1 worker, {THREADS} threads)"
        print(f"{probe.name} to {where}: {args.requests} requests or {args.seconds:g} s, {args.concurrency} at once")
        load = run_load(target, probe, args.concurrency, args.requests, args.seconds)
    finally:
        if process is not None:
            server.stop(process)
    print(f"  answered (2xx): {len(load.latencies)} in {load.wall:.1f} s = {load.per_second:.0f} requests/s")
    if load.latencies:
        p50, p99 = (report.percentile_ms(load.latencies, q) for q in (50, 99))
        print(f"  latency: p50 {report.ms(p50)} ms, p99 {report.ms(p99)} ms")
    errors = ", ".join(f"{what}: {n}" for what, n in sorted(load.errors.items())) or "none"
    print(f"  errors: {errors}")
    return 1 if load.errors and not load.latencies else 0


if __name__ == "__main__":
    sys.exit(main())
