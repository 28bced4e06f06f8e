"""Cold start: process start to the first correct 200 answer, the function vs the TensorFlow comparison server.

Both are started as fresh processes and polled with the same POST /predict
(a canvas PNG of an MNIST test digit) until they answer; the median of the
runs counts. The comparison server (bench/tf_server.py) imports TensorFlow,
loads a `.keras` model and answers with `model.predict`, as the original app did.
Then the function's first request once it listens is set against the warm
ones after it (what an instance's first user waits).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench import report, server
from bench.keras_models import keras_file
from bench.samples import Probe, probes
from infra.run_local import compile_function, free_port, wait_until_answering

COLD_START_GOAL_S = 0.3
FIRST_REQUEST_GOAL = 3.0
FIRST_REQUEST_RUNS = 9  # one first request per fresh process: the median of several says more than one


def cold_start(start: Callable[[int], object], probe: Probe, path: str) -> tuple[float, dict]:
    """(seconds from process start to the first 200, that answer)."""
    port = free_port()
    started = time.perf_counter()
    process = start(port)
    try:
        answer = server.first_answer(process, port, path, probe.body, probe.content_type)
        return time.perf_counter() - started, answer
    finally:
        server.stop(process)


def first_request(probe: Probe, warm: int) -> tuple[float, float]:
    """(the first request's seconds, the median of the `warm` after it), on a fresh function once it is listening.

    Once /health answers the server is up; the first POST then meets whatever
    the instance has not done yet. One connection per request, as a browser's
    first visit has.
    """
    port = free_port()
    process = server.start_function(port, WORKERS="1", THREADS="8")
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", process)
        seconds = []
        for _ in range(1 + warm):
            started = time.perf_counter()
            status, answer = server.post(port, probe.path, probe.body, probe.content_type)
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"the function answered {status}: {answer}")
        return seconds[0], statistics.median(seconds[1:])
    finally:
        server.stop(process)


def run(quick: bool = False) -> report.Section:
    runs = 1 if quick else 5
    probe = probes()[0]
    compile_function()  # as `make run` and the cloud build do: an instance starts from compiled modules
    model = keras_file("digits")
    function = [cold_start(server.start_function, probe, probe.path) for _ in range(runs)]
    comparison = [cold_start(lambda port: server.start_tf_server(port, model), probe, "/predict") for _ in range(runs)]
    rows = []
    for name, results in (
        ("function (functions-framework + LiteRT)", function),
        ("comparison (Flask + TensorFlow, model.predict)", comparison),
    ):
        times = ", ".join(f"{seconds:.2f}" for seconds, _ in results)
        median = statistics.median(seconds for seconds, _ in results)
        rows.append([name, times, f"{median:.2f}", results[0][1]["prediction"]])
    firsts = [first_request(probe, 5 if quick else 30) for _ in range(1 if quick else FIRST_REQUEST_RUNS)]
    function_s = statistics.median(seconds for seconds, _ in function)
    comparison_s = statistics.median(seconds for seconds, _ in comparison)
    ratio = comparison_s / function_s
    first_ratio = statistics.median(first / warm for first, warm in firsts)
    answered = function[0][1]["prediction"]
    wrong = "" if answered == probe.expected else f" (but answered {answered!r}, not {probe.expected!r})"
    section = report.Section("Cold start (process start to the first answer)")
    section.body += [
        f"A fresh process per run, polled every 5 ms with POST /predict (a canvas PNG of an MNIST test "
        f"{probe.expected!r}) until it answers 200; {runs} run(s) each, the median counts. The comparison server's "
        "Keras model has untrained weights, so its answer is not checked; the function's is.",
        report.table(["server", "runs (s)", "median s", "first answer"], rows),
        f"The function starts {ratio:.1f}x faster than the comparison server.",
        "### The first request against the warm ones",
        "A fresh function (1 worker, 8 threads) is started and waited for on GET /health; then the canvas PNG is "
        f"posted {1 + (5 if quick else 30)} times, one connection each. The instance warms up at start "
        "(recognizer/warm_up.py), so the first request should cost a few milliseconds more than the others, "
        "not the ~100 ms of first use.",
        report.table(
            ["run", "first request ms", "warm median ms", "first / warm"],
            [[k + 1, report.ms(f * 1000), report.ms(w * 1000), f"{f / w:.1f}x"] for k, (f, w) in enumerate(firsts)],
        ),
    ]
    section.targets += [
        report.Target(
            "cold start of the function (median)",
            f"<= {COLD_START_GOAL_S} s, correct answer",
            f"{function_s:.2f} s{wrong}",
            function_s <= COLD_START_GOAL_S and not wrong,
        ),
        report.Target(
            "first request after start vs the warm median (median of the runs)",
            f"<= {FIRST_REQUEST_GOAL}x",
            f"{first_ratio:.1f}x",
            first_ratio <= FIRST_REQUEST_GOAL,
        ),
        report.Target(
            "cold start vs the TF comparison server",
            ">= 5x faster",
            f"{ratio:.1f}x ({comparison_s:.2f} s vs {function_s:.2f} s)",
            ratio >= 5,
        ),
    ]
    return section


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "one run each: a smoke test, not a measurement")


if __name__ == "__main__":
    main()
