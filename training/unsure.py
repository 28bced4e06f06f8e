"""Where the page's "not sure" line belongs: the calibrated confidence of drawn validation images against how often
those answers are right.

The page (site/js/ui.js, UNSURE_BELOW) says it is not sure below a confidence.
That line is worth drawing where the answers below it are about as often
wrong as right, and those above it mostly right. Measured on the validation
slice drawn as canvas PNGs (training/calibrate.py's validation data: never
the evaluation sets), read through the function's stages; rejected drawings
are not answers and are left out.

    python -m training.unsure [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recognizer.inference import load_model
from training.calibrate import validation_data
from training.data import DEFAULT_DATA_DIR
from training.evaluate import as_requested
from training.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    for name in TASKS:
        model = load_model(args.models_dir / f"{name}.tflite")
        validation = validation_data(TASKS[name], args.data_dir)
        probabilities, rejected = model.predict(as_requested(model, validation.drawn))
        confidence = probabilities.max(axis=1)[~rejected]
        right = (probabilities.argmax(axis=1) == validation.drawn_labels)[~rejected]
        print(f"{name}: {len(right)} answers to {len(rejected)} drawn validation images, {right.mean():.1%} right")
        for threshold in THRESHOLDS:
            below = confidence < threshold
            print(
                f"  below {threshold}: {below.mean():6.2%} of answers ({below.sum()}), right {np.mean(right[below]):.1%};"
                f" from {threshold} up right {np.mean(right[~below]):.1%}"
            )


if __name__ == "__main__":
    main()
