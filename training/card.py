"""The model card: everything serving needs, and the evidence for the numbers."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np

# What the .tflite outputs: training/convert.py strips the softmax, and serving applies it in float.
OUTPUT_VALUES = "logits"
HELDOUT_NOTE = (
    "emnist-balanced-heldout is not the official EMNIST Balanced test set: it is 3,482 Balanced images "
    "that occur in neither training file; numbers on it are close to, not the same as, published "
    "EMNIST Balanced results (state of the art 91.06 %)."
)


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
    name: str,
    tflite: bytes,
    labels: list[str],
    profile: str,
    input_details: dict,
    output_details: dict,
    evaluation_set: str,
    keras_accuracy: float,
    tflite_report: dict,
    quantization: str,
    data_files: dict[str, str],
    training: dict,
    baseline: dict | None,
    experiments: list[dict],
) -> dict:
    card = {
        "name": name,
        "version": hashlib.sha256(tflite).hexdigest(),
        "file": f"{name}.tflite",
        "size_bytes": len(tflite),
        "labels": labels,
        "input": _tensor(input_details),
        "output": {**_tensor(output_details), "values": OUTPUT_VALUES},
        "quantization": quantization,
        "preprocessing": profile,
        "accuracy": {
            "evaluation_set": evaluation_set,
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
    if "heldout" in evaluation_set:
        card["accuracy"]["note"] = HELDOUT_NOTE
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
    from training.train import write_atomically

    card = json.loads(card_path.read_text())
    baseline_path = runs_dir / f"{card['name']}-baseline.json"
    card["baseline"] = json.loads(baseline_path.read_text()) if baseline_path.exists() else None
    card["experiments"] = [
        json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"{card['name']}-*.json")) if p != baseline_path
    ]
    write_atomically(card_path, (json.dumps(card, indent=2) + "\n").encode())
    return card


if __name__ == "__main__":
    import sys

    from training.train import RUNS_DIR

    for path in sys.argv[1:]:
        refreshed = refresh_comparison(Path(path), RUNS_DIR)
        print(
            f"{path}: baseline {'found' if refreshed['baseline'] else 'missing'}, {len(refreshed['experiments'])} runs"
        )
