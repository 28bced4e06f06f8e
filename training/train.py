"""Train a model, convert it to int8 TFLite, calibrate it and write it with its card.

    python -m training.train digits --data-dir ../shared/data --out models/
    python -m training.train characters --data-dir ../shared/data --out models/
    python -m training.train digits --baseline   # the plain seed recipe, for comparison

A baseline run writes only its summary to training/runs/; a full run writes
`<task>.tflite` and `<task>.json` into --out, each to a temporary file first
and renamed, so an interrupted run never leaves a half-written model. The
tasks and their shipped recipes live in training/tasks.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.inference import Model, load_model
from training.calibrate import calibrate, diagram_path, validation_set
from training.card import OUTPUT_VALUES, accuracy_report, build_card
from training.data import DEFAULT_DATA_DIR, SEED, DataError, Split, split
from training.store import CHECKPOINT_DIR, RUNS_DIR, write_atomically, write_json
from training.tasks import TASKS, Task

# The seed recipe, kept as the baseline every model is compared with.
BASELINE = {"architecture": "seed", "epochs": 10, "augment": False, "lr_decay": 1.0, "balance_classes": False}
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
# Images the int8 quantizer calibrates on: the first of the real training images in the split's
# order (without the negatives, as before the reject class). With 1,000, the characters net with the
# Conv128 head lost 0.17 point in int8; with 4,000 it lost nothing. Which 4,000 matters by about
# 0.2 point: the reject-head characters net scored 89.35 % on the validation slice with these and
# 89.32 % with 4,000 others (held-out: 90.09 against 89.86 %).
CALIBRATION_IMAGES = 4000
INT8_LOSS_LIMIT = 0.001  # ship float32 only if int8 costs more than 0.1 point


@dataclass(frozen=True)
class Options:
    """One training run: which task, with which recipe, written where."""

    task: Task
    recipe: dict
    out: Path = Path("models")
    baseline: bool = False  # the plain seed recipe: write the run summary only
    limit: int | None = None  # train on the first N images only (smoke tests); nothing is kept
    resume_from: Path | None = None  # a finished run's .keras file: train on up to the recipe's epochs
    plain: Path | None = None  # a model without the reject output, for the card's rejection comparison


@dataclass(frozen=True)
class Prepared:
    """The training images with the negatives appended, and the validation/fit split of both."""

    images: np.ndarray  # (n, 28, 28) uint8
    labels: np.ndarray  # the real classes, then len(labels) for a negative
    val: np.ndarray  # real validation images first, then the negatives'
    fit: np.ndarray
    real_val: np.ndarray
    negative_val: np.ndarray
    outputs: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("task", help=" or ".join(TASKS))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--baseline", action="store_true", help="run the plain seed recipe; writes no model")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--clean-epochs", type=int, help="override the recipe's epochs without augmentation")
    parser.add_argument("--served-epochs", type=int, help="override the recipe's final epochs on served images")
    parser.add_argument("--augment", type=float, help="override the augmentation strength (1.0: see augment.py)")
    parser.add_argument("--architecture", help="override the recipe's architecture (see training/model.py)")
    parser.add_argument("--no-reject", action="store_true", help="train without the reject class")
    parser.add_argument("--limit", type=int, help="train on the first N images only (smoke tests)")
    parser.add_argument("--resume-from", type=Path, help="a finished run's .keras file: train on up to --epochs")
    parser.add_argument("--plain", type=Path, help="a model without the reject output, for the card's comparison")
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        print(f"error: unknown task {args.task!r}; use one of: {', '.join(TASKS)}", file=sys.stderr)
        return 2
    task = TASKS[args.task]
    recipe = dict(BASELINE if args.baseline else task.recipe)
    overrides = {
        "epochs": args.epochs,
        "clean_epochs": args.clean_epochs,
        "served_epochs": args.served_epochs,
        "augment": args.augment,
        "architecture": args.architecture,
    }
    recipe |= {key: value for key, value in overrides.items() if value is not None}
    if args.no_reject:
        recipe["reject"] = False
    from training.model import ARCHITECTURES  # here, not at the top: it imports TensorFlow

    if recipe["architecture"] not in ARCHITECTURES:
        names = ", ".join(ARCHITECTURES)
        print(f"error: unknown architecture {recipe['architecture']!r}; use one of: {names}", file=sys.stderr)
        return 2
    try:
        train, evaluation = task.load_training(args.data_dir), task.load_evaluation(args.data_dir)
        negatives = None
        if recipe.get("reject"):
            from training.negatives import training_negatives

            share = args.limit / len(train.images) if args.limit else 1.0  # a smoke run: the same share
            negatives = training_negatives(task, args.data_dir, SEED, share)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = Options(task, recipe, args.out, args.baseline, args.limit, args.resume_from, args.plain)
    run(options, train, evaluation, negatives)
    return 0


def prepare(train: Split, negatives: np.ndarray | None, classes: int, limit: int | None) -> Prepared:
    """Append the negatives (label `classes`) and split real images and negatives alike (data.split)."""
    real_val, fit = split(len(train.images), limit=limit)
    if negatives is None:
        return Prepared(train.images, train.labels, real_val, fit, real_val, real_val[:0], classes)
    neg_val, neg_fit = split(len(negatives), SEED + 1)  # main() gave a --limit run its share of negatives
    offset = len(train.images)
    images = np.concatenate([train.images, negatives])
    labels = np.concatenate([train.labels, np.full(len(negatives), classes, train.labels.dtype)])
    fit = np.random.default_rng(SEED + 2).permutation(np.concatenate([fit, offset + neg_fit]))
    val = np.concatenate([real_val, offset + neg_val])
    return Prepared(images, labels, val, fit, real_val, offset + neg_val, classes + 1)


def run_name(options: Options) -> str:
    recipe = options.recipe
    if options.baseline:
        return f"{options.task.name}-baseline"
    name = f"{options.task.name}-{recipe['architecture']}-{recipe['epochs']}ep"
    if recipe.get("reject"):
        name += "-reject"
    if float(recipe["augment"]) not in (0.0, 1.0):
        name += f"-augment{recipe['augment']}"
    if recipe.get("clean_epochs"):
        name += f"-{recipe['clean_epochs']}clean"
    if recipe.get("served_epochs"):
        name += f"-{recipe['served_epochs']}served"
    return name


def run(options: Options, train: Split, evaluation: Split, negatives: np.ndarray | None = None) -> dict:
    """Train, convert, score, calibrate and write the model and its card; return the run summary."""
    import keras

    from training.convert import to_tflite

    keras.utils.set_random_seed(SEED)
    task, recipe = options.task, options.recipe
    classes = len(task.labels)
    data = prepare(train, negatives if recipe.get("reject") else None, classes, options.limit)
    name = run_name(options)
    model, resumed_from_epoch = _build(options, data)
    started = time.time()
    _fit(model, options, data, name)
    seconds = round(time.time() - started)
    if not options.limit:  # kept (git-ignored) for fine-tuning and re-conversion with --resume-from
        CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
        model.save(CHECKPOINT_DIR / f"{name}.keras")
    x_eval = evaluation.images.astype(np.float32) / 255.0
    keras_predicted = model.predict(x_eval[..., None], verbose=0)[:, :classes].argmax(1)
    keras_accuracy = round(float(np.mean(keras_predicted == evaluation.labels)), 5)

    fit_images = train.images[split(len(train.images), limit=options.limit)[1][:CALIBRATION_IMAGES]]
    tflite, quantization = to_tflite(model, fit_images[:CALIBRATION_IMAGES]), "int8"
    report, details = _score(tflite, task, data.outputs, x_eval, evaluation.labels)
    if keras_accuracy - report["accuracy"] > INT8_LOSS_LIMIT:
        print(f"int8 lost {keras_accuracy - report['accuracy']:.4f}; shipping float", file=sys.stderr)
        tflite, quantization = to_tflite(model, fit_images[:CALIBRATION_IMAGES], int8=False), "float32"
        report, details = _score(tflite, task, data.outputs, x_eval, evaluation.labels)

    summary = {
        "recipe": recipe,
        "batch_size": BATCH_SIZE,
        "learning_rate": f"{LEARNING_RATE} * {recipe['lr_decay']} ** epoch",
        "optimizer": "adam",
        "train_images": len(data.fit),
        "negatives": int(np.sum(data.labels[data.fit] == classes)) if data.outputs > classes else None,
        "validation_images": len(data.val),
        "parameters": model.count_params(),
        "seconds": seconds,
        "resumed_from_epoch": resumed_from_epoch,
        "keras_accuracy": keras_accuracy,
        "tflite_accuracy": report["accuracy"],
        "tflite_bytes": len(tflite),
    }
    print(json.dumps(summary))
    if not options.limit:  # a smoke run on a subset is no evidence worth keeping
        write_json(RUNS_DIR / f"{name}.json", summary)
    if options.baseline:
        return summary
    validation = validation_set(data.images[data.real_val], data.labels[data.real_val], data.images[data.negative_val])
    calibration, rejection = calibrate(
        _candidate(tflite, task, data.outputs),
        task,
        validation,
        (x_eval, evaluation.labels),
        plain=load_model(options.plain) if options.plain else None,
        diagram=None if options.limit else diagram_path(options.out, task.name),
    )
    card = build_card(
        task=task,
        tflite=tflite,
        input_details=details[0],
        output_details=details[1],
        keras_accuracy=keras_accuracy,
        tflite_report=report,
        quantization=quantization,
        data_files=train.files | evaluation.files,
        training=summary,
        rejection=rejection,
        calibration=calibration,
    )
    write_atomically(options.out / f"{task.name}.tflite", tflite)
    write_json(options.out / f"{task.name}.json", card)
    return summary


def _build(options: Options, data: Prepared):
    """(the Keras model, compiled, the epoch it resumes from) for a new run or --resume-from."""
    import keras

    from training.model import build_model

    if options.resume_from:  # the saved optimizer state and step count carry the schedule on
        model = keras.saving.load_model(options.resume_from)
        return model, int(model.optimizer.iterations.numpy()) // -(-len(data.fit) // BATCH_SIZE)
    model = build_model(options.recipe["architecture"], data.outputs)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, 0


def _fit(model, options: Options, data: Prepared, name: str) -> None:
    """The augmented epochs, then `clean_epochs` on the images as they are (the evaluation images are not
    augmented), then `served_epochs` with half of them as the function's preprocessing gives them back."""
    import keras

    from training.augment import augmented_batches
    from training.served import as_served

    recipe = options.recipe
    x, y, fit = data.images, data.labels, data.fit
    class_weight = None
    if recipe["balance_classes"]:  # the evaluation set is balanced; weight each class equally
        counts = np.bincount(y[fit], minlength=data.outputs).astype(np.float64)
        class_weight = {i: float(len(fit) / (len(counts) * c)) for i, c in enumerate(counts) if c}
    callbacks = [keras.callbacks.LearningRateScheduler(lambda epoch: LEARNING_RATE * recipe["lr_decay"] ** epoch)]
    if not options.limit:  # resume a long run after an interruption
        callbacks.append(keras.callbacks.BackupAndRestore(str(CHECKPOINT_DIR / name)))
    ends = np.cumsum([recipe["epochs"], recipe.get("clean_epochs", 0), recipe.get("served_epochs", 0)])
    phases = [
        (lambda: x[fit], float(recipe["augment"]), int(ends[0])),
        (lambda: x[fit], 0.0, int(ends[1])),
        (lambda: as_served(x[fit], options.task.profile, SEED), 0.0, int(ends[2])),
    ]
    initial_epoch = int(model.optimizer.iterations.numpy()) // -(-len(fit) // BATCH_SIZE)
    for images, augment, until in phases:
        if initial_epoch >= until:
            continue
        model.fit(
            augmented_batches(images(), y[fit], BATCH_SIZE, augment, SEED),
            validation_data=(x[data.val][..., None] / 255.0, y[data.val]),
            epochs=until,
            initial_epoch=initial_epoch,
            class_weight=class_weight,
            callbacks=callbacks,
            verbose=2,
        )
        # BackupAndRestore sets the epoch a restored fit starts from, and Keras keeps it for every later
        # fit: the clean phase of a resumed run would start again at the restored epoch.
        model._initial_epoch = None
        initial_epoch = until


def _candidate(tflite: bytes, task: Task, outputs: int) -> Model:
    """The converted bytes as a Model with a minimal card (rejection by the extra output at 0.5 until calibrated)."""
    card = {
        "name": task.name,
        "labels": task.labels,
        "preprocessing": task.profile,
        "version": "",
        "output": {"values": OUTPUT_VALUES},
    }
    if outputs > len(task.labels):
        card["rejection"] = {"method": "extra_class", "output_index": len(task.labels), "threshold": 0.5}
    return Model(tflite, card)


def _score(tflite: bytes, task: Task, outputs: int, images: np.ndarray, labels: np.ndarray) -> tuple[dict, tuple]:
    """The accuracy report of the converted model (argmax over the real classes) and its tensor details."""
    model = _candidate(tflite, task, outputs)
    predicted = model.probabilities(images).argmax(1)
    return accuracy_report(task.labels, labels, predicted), (model._input, model._output)


if __name__ == "__main__":
    sys.exit(main())
