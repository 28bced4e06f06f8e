"""Where a request's time goes, without sockets: the function's own timing_ms per stage, and the app around it.

Each kind of request goes N times through functions-framework's WSGI app,
called directly on a prepared environ (what a server's worker thread runs for
a request: routing, body reading, the stages, the JSON answer, CORS and
headers, the log line). The calls run in a fresh process that imports only
the function, like a server instance: a process that has loaded the data sets
keeps a different malloc state, and numpy's large temporaries cost less there
than in a real instance. The table holds medians of the stages the answer
reports (decode, preprocess, inference, recognize total), of the whole app
call (wall and CPU time) and the page faults per call. `--profile` adds a
cProfile listing per request kind.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
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
APP_CALL_GOALS_MS = {"canvas PNG 280x280": 1.0, "strokes JSON": 0.6}


def measure(requests: list[dict], count: int, profile: bool) -> list[dict]:
    """In this process: per request kind, the median stages, app call and page faults (and a profile)."""
    import functions_framework
    from werkzeug.test import EnvironBuilder

    app = functions_framework.create_app(target="predict", source=str(ROOT / "function" / "main.py"))
    results = []
    for request in requests:
        body = base64.b64decode(request["body"])
        path, _, query = request["path"].partition("?")
        environ = EnvironBuilder(
            path=path, query_string=query, method="POST", data=body, content_type=request["content_type"]
        ).get_environ()

        def call(request=request, body=body, environ=environ) -> dict:
            """The WSGI app itself, on a prepared environ: what a server's worker thread runs per request."""
            statuses = []
            answer = b"".join(app({**environ, "wsgi.input": io.BytesIO(body)}, lambda s, h, e=None: statuses.append(s)))
            if not statuses[0].startswith("200"):
                raise RuntimeError(f"{request['name']}: HTTP {statuses[0]} {answer[:300]!r}")
            return json.loads(answer)["timing_ms"]

        for _ in range(10):
            call()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        timings, walls, cpus = [], [], []
        for _ in range(count):
            started, cpu = time.perf_counter(), time.thread_time()
            timings.append(call())
            walls.append(time.perf_counter() - started)
            cpus.append(time.thread_time() - cpu)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / count
        result = {"name": request["name"], "faults": faults, "app": report.percentile_ms(walls, 50)}
        result["app_cpu"] = report.percentile_ms(cpus, 50)
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
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # as in the function (main.py sets it before numpy loads)
        # stdout (the function's log lines, then the results) goes to a file: a pipe would wake this process at
        # every line, and on a busy machine that switch lands in the function's wall time.
        with (Path(folder) / "stdout").open("w+") as output:
            subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.PIPE, check=True)
            output.seek(0)
            results = json.loads(output.read().splitlines()[-1])
    rows = [
        [
            r["name"],
            *(report.ms(r[s]) for s in STAGES),
            report.ms(r["app"]),
            report.ms(r["app_cpu"]),
            f"{r['faults']:.0f}",
        ]
        for r in results
    ]
    section = report.Section("Where the time goes (in a fresh process, no sockets)")
    section.body += [
        f"Medians of {count} calls per kind through functions-framework's WSGI app, called directly (no test "
        "client, no socket) in a process that imports only the function. The stage columns are the function's own "
        "`timing_ms`; `app call` adds routing, body reading, the JSON answer, CORS and headers and the log line, as "
        "wall time and as this thread's CPU time (the CPU column is what contention from other processes does not "
        "inflate). What the HTTP table adds on top of `app call` is gunicorn, the socket and the client.",
        report.table(
            [
                "request",
                *(f"{s} ms" for s in STAGES[:3]),
                "recognize total ms",
                "app call ms",
                "app call CPU ms",
                "page faults/call",
            ],
            rows,
        ),
    ]
    by_name = {r["name"]: r for r in results}
    for name, goal in APP_CALL_GOALS_MS.items():
        if name in by_name:
            measured = by_name[name]["app"]
            section.targets.append(
                report.Target(
                    f"app call (no socket), {name}: median",
                    f"<= {goal} ms",
                    f"{report.ms(measured)} ms (CPU {report.ms(by_name[name]['app_cpu'])} ms)",
                    measured <= goal,
                )
            )
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
