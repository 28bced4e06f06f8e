"""The model card: everything serving needs, and the evidence for the numbers."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np

from training.store import RUNS_DIR, load_runs, write_json
from training.tasks import Task

# What the .tflite outputs: training/convert.py strips the softmax, and serving applies it in float.
OUTPUT_VALUES = "logits"


def accuracy_report(labels: list[str], truth: np.ndarray, predicted: np.ndarray, top_pairs: int = 10) -> dict:
    """Overall and per-class accuracy, and the confusions that cost the most."""
    per_class = {
        label: round(float(np.mean(predicted[truth == i] == i)), 4)
        for i, label in enumerate(labels)
        if np.any(truth == i)
    }
    pairs = np.zeros((len(labels), len(labels)), np.int64)
    np.add.at(pairs, (truth, predicted), 1)
    np.fill_diagonal(pairs, 0)
    worst = np.argsort(pairs, axis=None)[::-1][:top_pairs]
    confusions = [
        {"true": labels[t], "predicted": labels[p], "count": int(pairs[t, p])}
        for t, p in zip(*np.unravel_index(worst, pairs.shape), strict=True)
        if pairs[t, p] > 0
    ]
    return {
        "accuracy": round(float(np.mean(truth == predicted)), 5),
        "per_class": per_class,
        "top_confusions": confusions,
    }


def build_card(
    *,
    task: Task,
    tflite: bytes,
    input_details: dict,
    output_details: dict,
    keras_accuracy: float,
    tflite_report: dict,
    quantization: str,
    data_files: dict[str, str],
    training: dict,
    rejection: dict | None,
    calibration: dict | None,
    runs_dir: Path = RUNS_DIR,
) -> dict:
    """The card serving reads (labels, profile, output values, rejection, calibration) plus the evidence."""
    baseline, experiments = load_runs(task.name, runs_dir)
    card = {
        "name": task.name,
        "version": hashlib.sha256(tflite).hexdigest(),
        "file": f"{task.name}.tflite",
        "size_bytes": len(tflite),
        "labels": task.labels,
        "input": _tensor(input_details),
        "output": {**_tensor(output_details), "values": OUTPUT_VALUES},
        "quantization": quantization,
        "preprocessing": task.profile,
        "accuracy": {
            "evaluation_set": task.evaluation_set,
            "keras": keras_accuracy,
            "tflite": tflite_report["accuracy"],
        },
        "per_class_accuracy": tflite_report["per_class"],
        "top_confusions": tflite_report["top_confusions"],
        "training_data": data_files,
        "training": training,
        "baseline": baseline,
        "experiments": experiments,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if task.evaluation_note:
        card["accuracy"]["note"] = task.evaluation_note
    if rejection:
        card["rejection"] = rejection
    if calibration:
        card["calibration"] = calibration
    return card


def _tensor(details: dict) -> dict:
    scale, zero_point = details["quantization"]
    return {
        "shape": [int(d) for d in details["shape"]],
        "dtype": np.dtype(details["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def refresh_comparison(card_path: Path, runs_dir: Path) -> dict:
    """Rewrite a card's baseline and experiments from the run summaries (baselines may finish later)."""
    card = json.loads(card_path.read_text())
    card["baseline"], card["experiments"] = load_runs(card["name"], runs_dir)
    write_json(card_path, card)
    return card


if __name__ == "__main__":
    import sys

    for path in sys.argv[1:]:
        refreshed = refresh_comparison(Path(path), RUNS_DIR)
        print(
            f"{path}: baseline {'found' if refreshed['baseline'] else 'missing'}, {len(refreshed['experiments'])} runs"
        )
