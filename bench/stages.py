"""Where a request's time goes, without sockets: the function's own timing_ms per stage, and the app around it.

Each kind of request goes N times through functions-framework's Flask app
(its test client, as tests/conftest.py uses it). The calls run in a fresh
process that imports only the function, like a server instance: a process
that has loaded the data sets keeps a different malloc state, and numpy's
large temporaries cost less there than in a real instance. The table holds
medians of the stages the answer reports (decode, preprocess, inference,
recognize total), of the whole app call (routing, body reading, JSON, CORS
included) and the page faults per call. `--profile` adds a cProfile listing
per request kind.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import ROOT, report
from bench.samples import probes

STAGES = ("decode", "preprocess", "inference", "total")


def measure(requests: list[dict], count: int, profile: bool) -> list[dict]:
    """In this process: per request kind, the median stages, app call and page faults (and a profile)."""
    import functions_framework

    client = functions_framework.create_app(target="predict", source=str(ROOT / "function" / "main.py")).test_client()
    results = []
    for request in requests:
        body = base64.b64decode(request["body"])

        def call(request=request, body=body) -> dict:
            response = client.post(request["path"], data=body, content_type=request["content_type"])
            if response.status_code != 200:
                raise RuntimeError(f"{request['name']}: HTTP {response.status_code} {response.get_data(as_text=True)}")
            return response.json["timing_ms"]

        for _ in range(10):
            call()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        timings, walls = [], []
        for _ in range(count):
            started = time.perf_counter()
            timings.append(call())
            walls.append(time.perf_counter() - started)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / count
        result = {"name": request["name"], "faults": faults, "app": report.percentile_ms(walls, 50)}
        result |= {stage: float(np.median([t[stage] for t in timings])) for stage in STAGES}
        if profile:
            profiler = cProfile.Profile()
            profiler.runcall(lambda call=call: [call() for _ in range(count)])
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(15)
            result["profile"] = text.getvalue().strip()
        results.append(result)
    return results


def run(quick: bool = False, profile: bool = False) -> report.Section:
    count = 10 if quick else 300
    requests = [
        {"name": p.name, "path": p.path, "content_type": p.content_type, "body": base64.b64encode(p.body).decode()}
        for p in probes()
    ]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "requests.json").write_text(json.dumps(requests))
        command = [sys.executable, "-m", "bench.stages", "--measure", str(Path(folder) / "requests.json")]
        command += ["--count", str(count)] + (["--profile"] if profile else [])
        output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    results = json.loads(output.splitlines()[-1])
    rows = [
        [r["name"], *(report.ms(r[stage]) for stage in STAGES), report.ms(r["app"]), f"{r['faults']:.0f}"]
        for r in results
    ]
    section = report.Section("Where the time goes (in a fresh process, no sockets)")
    section.body += [
        f"Medians of {count} calls per kind through functions-framework's Flask app (test client) in a process that "
        "imports only the function. The stage columns are the function's own `timing_ms`; `app call` adds routing, "
        "body reading, the JSON answer and CORS. What the HTTP table adds on top of `app call` is gunicorn, the "
        "socket and the client.",
        report.table(
            ["request", *(f"{s} ms" for s in STAGES[:3]), "recognize total ms", "app call ms", "page faults/call"],
            rows,
        ),
    ]
    for r in results:
        if "profile" in r:
            section.body.append(
                f"### {r['name']}: cProfile of {count} app calls, by own time\n\n```\n{r['profile']}\n```"
            )
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few calls each: a smoke test, not a measurement")
    parser.add_argument("--profile", action="store_true", help="add a cProfile listing per request kind")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process: requests.json
    parser.add_argument("--count", type=int, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure.read_text()), args.count, args.profile)))
    else:
        print(run(args.quick, args.profile).markdown())


if __name__ == "__main__":
    main()
