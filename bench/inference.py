"""Inference alone, per model: LiteRT int8 (shipped) vs LiteRT float vs the Keras model in TensorFlow.

Batch 1: median and p99 of one call (for LiteRT: `invoke()` alone, inputs
already set). Batch 64: images per second. LiteRT runs with one thread, as
the function does; TensorFlow with its default thread pools (all cores).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bench import MODELS_DIR, report
from bench.keras_models import card, converted_tflite, keras_file
from bench.samples import digit_images
from recognizer.cards import find_models
from recognizer.inference import load_model, quantize

BATCH = 64


def timed(call: Callable[[], object], count: int, max_seconds: float) -> list[float]:
    """Seconds per call, for `count` calls or until `max_seconds` is spent (after a few warm-up calls)."""
    for _ in range(3):
        call()
    times, deadline = [], time.perf_counter() + max_seconds
    while len(times) < count and time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def litert(path: Path, images: np.ndarray, batch: int) -> Interpreter:
    """An interpreter (one thread, as served) with `batch` images set as its input."""
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [batch, 28, 28, 1])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], quantize(images[:batch, :, :, None], detail))
    return interpreter


def measure(name: str, images: np.ndarray, count: int, max_seconds: float) -> list[dict]:
    """One row per runtime: batch-1 latencies (seconds) and batch-64 images per second."""
    import keras

    shipped = MODELS_DIR / f"{name}.tflite"
    # The shipped file, and a file of the other kind (int8 or float32) converted here for the comparison.
    shipped_kind = "int8" if card(name)["quantization"] == "int8" else "float32"
    other_kind = "float32" if shipped_kind == "int8" else "int8"
    other = converted_tflite(name, int8=other_kind == "int8")
    model = keras.models.load_model(keras_file(name))
    served = load_model(shipped)
    one, many = images[:1, :, :, None], images[:BATCH, :, :, None]
    rows = []

    def row(runtime: str, single: Callable, batch: Callable, calls: int = count, target: bool = False) -> None:
        latencies = timed(single, calls, max_seconds)
        batches = timed(batch, max(calls // BATCH, 3), max_seconds)
        per_second = BATCH / float(np.median(batches))
        rows.append({"runtime": runtime, "latencies": latencies, "per_second": per_second, "target": target})

    for label, path in (
        (f"LiteRT {shipped_kind} (shipped file)", shipped),
        (f"LiteRT {other_kind} (converted here)", other),
    ):
        single, batch = litert(path, images, 1), litert(path, images, BATCH)
        row(f"{label}, invoke()", single.invoke, batch.invoke, target=path == shipped)
    row(
        "function Model.probabilities (shipped file: quantize, invoke per image, dequantize)",
        lambda: served.probabilities(images[:1]),
        lambda: served.probabilities(images[:BATCH]),
    )
    row(
        "Keras in TensorFlow, model(x)",
        lambda: model(one, training=False).numpy(),
        lambda: model(many, training=False).numpy(),
    )
    row(
        "Keras in TensorFlow, model.predict(x)",
        lambda: model.predict(one, verbose=0),
        lambda: model.predict(many, batch_size=BATCH, verbose=0),
        calls=max(count // 10, 3),
    )
    return rows


def run(quick: bool = False) -> report.Section:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    count, max_seconds = (20, 0.3) if quick else (2000, 3.0)
    images = digit_images(BATCH).astype(np.float32) / 255.0
    section = report.Section("Inference (one model call, no HTTP)")
    rows, targets = [], []
    for name in find_models(MODELS_DIR):
        for result in measure(name, images, count, max_seconds):
            p50, p99 = (report.percentile_ms(result["latencies"], q) for q in (50, 99))
            calls, per_second = len(result["latencies"]), f"{result['per_second']:,.0f}"
            rows.append([name, result["runtime"], calls, report.ms(p50), report.ms(p99), per_second])
            if result["target"]:
                measured = f"{report.ms(p50)} ms"
                targets.append(
                    report.Target(
                        f"single inference, {name} (LiteRT invoke, batch 1, median)", "<= 0.2 ms", measured, p50 <= 0.2
                    )
                )
    section.body += [
        "LiteRT uses one thread (as the function does); TensorFlow its default thread pools over all cores. "
        "The Keras models, and the .tflite files marked 'converted here' (training.convert.to_tflite of that Keras "
        "model), have the shipped models' architectures and class counts but fresh weights (the trained Keras checkpoints "
        "are not committed, so a fresh clone has none): weights do not change the speed.",
        report.table(
            ["model", "runtime", "calls", "batch 1 p50 ms", "batch 1 p99 ms", f"batch {BATCH} images/s"], rows
        ),
    ]
    section.targets += targets
    return section


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "a few calls each: a smoke test, not a measurement")


if __name__ == "__main__":
    main()
