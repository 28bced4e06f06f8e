"""Accuracy of a shipped `.tflite` file, measured with the LiteRT interpreter (as served).

python -m training.evaluate models/digits.tflite [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from function.recognizer.inference import ModelFileError, load_model
from training.card import accuracy_report
from training.data import DEFAULT_DATA_DIR, DataError, load_evaluation

EVALUATION_SETS = {"digits": "MNIST t10k", "characters": "emnist-balanced-heldout"}


def evaluate(tflite_path: Path, data_dir: Path) -> dict:
    """Accuracy report of the model on its full evaluation set, plus the time per image."""
    model = load_model(tflite_path)
    data = load_evaluation(model.name, data_dir)
    started = time.perf_counter()
    predicted = model.probabilities(data.images.astype(np.float32) / 255.0).argmax(axis=1)
    seconds = time.perf_counter() - started
    report = accuracy_report(model.labels, data.labels, predicted)
    return {**report, "name": model.name, "images": len(data.images), "ms_per_image": seconds * 1000 / len(data.images)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a .tflite file with its .json card beside it")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.model, args.data_dir)
    except (DataError, ModelFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.model}: accuracy {result['accuracy'] * 100:.2f} % on {EVALUATION_SETS[result['name']]} "
        f"({result['images']:,} images), LiteRT, {result['ms_per_image']:.3f} ms per image"
    )
    for pair in result["top_confusions"][:5]:
        print(f"  {pair['true']} read as {pair['predicted']}: {pair['count']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
