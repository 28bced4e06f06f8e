"""Fit what turns a model's logits into honest answers: the temperature and the reject threshold.

Both are fitted on the validation slice of the training data (the images
training held out, training/data.split) and never on a held-out set:
- temperature scaling: the T minimising the negative log-likelihood of
  softmax(logits / T) over the real classes, so a reported probability is the
  share of answers right; expected calibration error (15 bins) before and
  after, and a reliability diagram;
- the reject threshold: at most `task.reject_budget` of the real validation
  images *drawn as canvas PNGs and read through the function's stages* may
  be rejected (drawn, they reach the net framed differently: at the threshold
  set before on the images as they are and as served.py frames them, 0.820,
  the digits net's extra class rejected 1 of the 2,400 as they are and 11 of
  them drawn); the threshold that allows exactly that, for each method, and the share of
  validation negatives each method then rejects, recorded in the card's
  comparison (with --plain, on a net without the reject output too), with
  the trade-off over a range of budgets: drawn digits rejected, accuracy
  counting rejections as errors, negatives rejected (the held-back training
  negatives, and drawn as canvas PNGs: scribbles and blobs from a seed of
  their own, and for digits the training files' letters that no net saw).
  A net with the reject output is served by it; a plain net gets the
  threshold method that rejects more negatives at the same cost.

python -m training.calibrate models/digits.tflite [--plain PLAIN.tflite] [--data-dir ../shared/data]
rewrites the card beside the model with the fitted "calibration" and "rejection".
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from recognizer.inference import Model, load_model
from training.data import DEFAULT_DATA_DIR, SEED, DataError, split
from training.evaluate import as_requested
from training.store import write_json
from training.tasks import TASKS, Task

BINS = 15
TEMPERATURES = np.exp(np.linspace(np.log(0.1), np.log(10.0), 1201))
METHODS = ("extra_class", "max_logit", "energy")
DRAWINGS = 2  # canvas PNGs drawn of each real validation image (each at its own size and place)
DRAWN_NEGATIVES = 2000  # scribbles and blobs (and for digits, unused training letters) drawn for the trade-off
DRAWN_NEGATIVES_SEED = 9  # training's negatives use training.data.SEED (7) and SEED + 1; the tests 20261129
TRADE_OFF_BUDGETS = (0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01)
DOCS = Path(__file__).resolve().parent.parent / "docs"
SHIPPED = DOCS.parent / "models"


def diagram_path(models_dir: Path, name: str) -> Path:
    """Where a model's reliability diagram goes: docs/ for the shipped models (the cards point there), beside
    the model for any other run, so that an experiment never overwrites the shipped model's diagram."""
    folder = DOCS if models_dir.resolve() == SHIPPED.resolve() else models_dir
    return folder / f"calibration-{name}.png"


def softmax(logits: np.ndarray) -> np.ndarray:
    out = np.exp(logits - logits.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (searched on a log grid, 0.1-10) with the lowest mean negative log-likelihood."""
    best, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        p = softmax(logits / t)[np.arange(len(labels)), labels]
        nll = -np.mean(np.log(np.maximum(p, 1e-30)))
        if nll < best_nll:
            best, best_nll = float(t), nll
    return round(best, 4)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width confidence bin: images, mean confidence, share right (empty bins left out)."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return [
        {
            "bin": int(b),
            "images": int(np.sum(which == b)),
            "confidence": float(confidence[which == b].mean()),
            "accuracy": float(right[which == b].mean()),
        }
        for b in range(bins)
        if np.any(which == b)
    ]


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Sum over confidence bins of (share of images) x |accuracy - mean confidence|."""
    table = reliability(probabilities, labels, bins)
    return float(sum(row["images"] * abs(row["accuracy"] - row["confidence"]) for row in table) / len(labels))


def reject_score(outputs: np.ndarray, classes: int, method: str, temperature: float = 1.0) -> np.ndarray:
    """Higher = more like no class: the reject output's probability, or minus the max logit / logsumexp."""
    if method == "extra_class":
        return softmax(outputs / temperature)[:, classes]
    real = outputs[:, :classes]
    if method == "max_logit":
        return -real.max(axis=1)
    top = real.max(axis=1)
    return -(top + np.log(np.exp(real - top[:, None]).sum(axis=1)))


def threshold_for(real_scores: np.ndarray, budget: float) -> float:
    """The score from which to reject so that at most `budget` of the real images are: scores >= it."""
    ordered = np.sort(real_scores)[::-1]
    allowed = int(np.floor(budget * len(ordered)))
    return float(np.nextafter(ordered[allowed], np.inf))


def card_threshold(method: str, score_threshold: float) -> float:
    """The card's threshold for a score threshold (max_logit and energy reject *below* a logit level)."""
    return score_threshold if method == "extra_class" else -score_threshold


def compare(
    outputs_real: np.ndarray, outputs_negative: np.ndarray, classes: int, budget: float, temperature: float
) -> dict:
    """Each method's threshold at the same budget and the shares of real and negative images it rejects."""
    methods = METHODS if outputs_real.shape[1] > classes else METHODS[1:]
    result = {}
    for method in methods:
        real = reject_score(outputs_real, classes, method, temperature)
        negative = reject_score(outputs_negative, classes, method, temperature)
        cut = threshold_for(real, budget)
        result[method] = {
            "threshold": round(card_threshold(method, cut), 6),
            "real_rejected": round(float(np.mean(real >= cut)), 5),
            "negatives_rejected": round(float(np.mean(negative >= cut)), 5),
        }
    return result


def trade_off(
    drawn: np.ndarray,
    labels: np.ndarray,
    originals: np.ndarray,
    negatives: dict[str, np.ndarray],
    classes: int,
    method: str,
    t: float,
) -> list[dict]:
    """For each budget in TRADE_OFF_BUDGETS: its threshold, the drawn real images rejected, their accuracy
    counting a rejection as an error (rejecting a misread costs nothing), the images as they are rejected,
    and each group of negatives rejected. All outputs are the model's raw ones."""
    real = reject_score(drawn, classes, method, t)
    as_they_are = reject_score(originals, classes, method, t)
    right = drawn[:, :classes].argmax(axis=1) == labels
    rows = []
    for budget in TRADE_OFF_BUDGETS:
        cut = threshold_for(real, budget)
        rejected = real >= cut
        rows.append(
            {
                "budget": budget,
                "threshold": round(card_threshold(method, cut), 6),
                "real_rejected": round(float(rejected.mean()), 5),
                "right_rejected": round(float(np.mean(rejected & right)), 5),
                "accuracy_rejections_as_errors": round(float(np.mean(right & ~rejected)), 5),
                "originals_rejected": round(float(np.mean(as_they_are >= cut)), 5),
                **{
                    f"{name}_rejected": round(float(np.mean(reject_score(out, classes, method, t) >= cut)), 4)
                    for name, out in negatives.items()
                },
            }
        )
    return rows


@dataclass(frozen=True)
class Validation:
    """What the calibration fits on: the validation slice training held out, and negatives no net learnt from."""

    images: np.ndarray  # the real validation images as they are, float in [0, 1]: the temperature's
    labels: np.ndarray
    drawn: list[bytes]  # the same images drawn as canvas PNGs, DRAWINGS each: the threshold's
    drawn_labels: np.ndarray
    negatives: np.ndarray  # the training negatives held back from the fit, float in [0, 1] (framed as served)
    drawn_negatives: dict[str, list[bytes]] = field(default_factory=dict)  # more negatives, as canvas PNGs


def validation_data(task: Task, data_dir: Path) -> Validation:
    """The validation slice training held out (training/train.py), rebuilt from the data: see `validation_set`;
    plus negatives drawn as canvas PNGs for the trade-off: scribbles and blobs from their own seed, and for
    digits the training files' letters resembling no digit that the training negatives did not take."""
    from training.data import load_characters_train
    from training.negatives import canvas_png, drawings, training_negatives, unused_letters
    from training.synthetic import canvas_png as glyph_png

    train = task.load_training(data_dir)
    val, _ = split(len(train.images))
    negatives = training_negatives(task, data_dir, SEED)
    neg_val, _ = split(len(negatives), SEED + 1)
    validation = validation_set(train.images[val], train.labels[val], negatives[neg_val])
    marks, _ = drawings(DRAWN_NEGATIVES, DRAWN_NEGATIVES_SEED, ("scribble", "blob"))
    drawn = {"scribbles_and_blobs": [canvas_png(mark) for mark in marks]}
    if task.negative_letter_share:
        characters = load_characters_train(data_dir)
        unused = unused_letters(task.negatives, task.negative_letter_share, SEED, characters.labels)
        rng = np.random.default_rng(DRAWN_NEGATIVES_SEED)
        chosen = rng.choice(unused, min(DRAWN_NEGATIVES, len(unused)), replace=False)
        drawn["unused_letters"] = [glyph_png(characters.images[i], rng) for i in chosen]
    return replace(validation, drawn_negatives=drawn)


def validation_set(images: np.ndarray, labels: np.ndarray, negatives: np.ndarray) -> Validation:
    """The real validation images as they are and drawn as canvas PNGs (DRAWINGS each, seeded), from uint8 images.

    The temperature is fitted on the images as they are; the threshold on the
    drawings, read by `calibrate` through the function's own stages (as a
    request is), since that is where it must hold: the model's own profile
    frames them.
    """
    from training.synthetic import canvas_png as glyph_png

    rng = np.random.default_rng(SEED)
    drawn = [glyph_png(image, rng) for _ in range(DRAWINGS) for image in images]
    return Validation(
        images.astype(np.float32) / 255.0,
        labels,
        drawn,
        np.tile(labels, DRAWINGS),
        negatives.astype(np.float32) / 255.0,
    )


def calibrate(
    model: Model,
    task: Task,
    validation: Validation,
    evaluation: tuple[np.ndarray, np.ndarray],
    plain: Model | None = None,
    diagram: Path | None = None,
) -> tuple[dict, dict]:
    """(the card's "calibration", the card's "rejection") for `model`, fitted on `validation` only.

    `evaluation` (images, labels) is only measured, for the card. `plain`, a model
    without the reject output, adds the threshold methods on it to the comparison.
    """
    classes = len(task.labels)
    n_originals = len(validation.images)
    drawn_inputs = as_requested(model, validation.drawn)
    outputs, drawn_outputs = model.outputs(validation.images), model.outputs(drawn_inputs)
    negative_outputs = model.outputs(validation.negatives)
    eval_outputs = model.outputs(evaluation[0])
    labels = validation.labels
    fit_on = outputs[:, :classes]
    temperature = fit_temperature(fit_on, labels)

    def ece(logits: np.ndarray, truth: np.ndarray, t: float) -> float:
        return round(expected_calibration_error(softmax(logits[:, :classes] / t), truth), 5)

    calibration = {
        "method": "temperature",
        "temperature": temperature,
        "bins": BINS,
        "fitted_on": f"validation slice of the training data ({n_originals:,} images)",
        "ece_before": {
            "validation": ece(fit_on, labels, 1.0),
            "evaluation": ece(eval_outputs, evaluation[1], 1.0),
        },
        "ece_after": {
            "validation": ece(fit_on, labels, temperature),
            "evaluation": ece(eval_outputs, evaluation[1], temperature),
        },
    }
    if diagram is not None:
        draw_diagram(
            diagram,
            f"{task.name}: reliability on {task.evaluation_set}, T = {temperature:.2f}",
            softmax(eval_outputs[:, :classes]),
            softmax(eval_outputs[:, :classes] / temperature),
            evaluation[1],
        )
        root = DOCS.parent
        calibration["diagram"] = str(diagram.relative_to(root)) if diagram.is_relative_to(root) else str(diagram)

    comparison = {
        "budget": (
            f"at most {task.reject_budget:.2%} of the real validation images drawn as canvas PNGs "
            "(read through the function's stages) rejected"
        ),
        "validation_images": n_originals,
        "validation_drawings": len(validation.drawn),
        "validation_negatives": len(validation.negatives),
        "this_model": compare(drawn_outputs, negative_outputs, classes, task.reject_budget, temperature),
    }
    if plain is not None:
        plain_drawn = plain.outputs(drawn_inputs)
        comparison["plain_model"] = {
            "version": plain.version,
            **compare(plain_drawn, plain.outputs(validation.negatives), classes, task.reject_budget, 1.0),
        }
    # A net with the reject output is served by it (serving reads that output's index from the card); the
    # threshold methods on it and on the plain model are the comparison. A plain net gets the better threshold.
    candidates = comparison["this_model"]
    if "extra_class" in candidates:
        best_method = "extra_class"
    else:
        best_method = max(candidates, key=lambda m: candidates[m]["negatives_rejected"])
    chosen = candidates[best_method]
    negatives = {"held_back_negatives": negative_outputs} | {
        name: model.outputs(as_requested(model, pngs)) for name, pngs in validation.drawn_negatives.items()
    }
    comparison["trade_off"] = {
        "method": best_method,
        "drawings": len(validation.drawn),
        "negatives": {name: len(out) for name, out in negatives.items()},
        "rows": trade_off(
            drawn_outputs, validation.drawn_labels, outputs, negatives, classes, best_method, temperature
        ),
    }
    rejection = {
        "method": best_method,
        "threshold": chosen["threshold"],
        "reason": task.reject_reason,
        "comparison": comparison,
    }
    if best_method == "extra_class":
        rejection = {"method": best_method, "output_index": classes, **rejection}
    return calibration, rejection


def draw_diagram(path: Path, title: str, before: np.ndarray, after: np.ndarray, labels: np.ndarray) -> None:
    """Accuracy against confidence per bin, before and after scaling (on the diagonal is honest), and the
    images per bin below: a bin of a handful of images says little."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(5.2, 6.4), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for probabilities, name, style in ((before, "before", "o-"), (after, "after", "s-")):
        table = reliability(probabilities, labels)
        ece = expected_calibration_error(probabilities, labels)
        confidence = [r["confidence"] for r in table]
        ax.plot(confidence, [r["accuracy"] for r in table], style, markersize=4, label=f"{name}: ECE {ece:.2%}")
        counts.plot(confidence, [r["images"] for r in table], style, markersize=4)
    ax.set_ylabel("share of answers right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    counts.set_yscale("log")
    counts.set_ylabel("images")
    counts.set_xlabel(f"reported probability of the answer ({BINS} bins)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a .tflite file with its .json card beside it")
    parser.add_argument("--plain", type=Path, help="a model without the reject output, for the comparison")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--diagram", type=Path, help="the reliability diagram (default: docs/calibration-NAME.png for models/)"
    )
    args = parser.parse_args(argv)
    model = load_model(args.model)
    task = TASKS[model.name]
    try:
        validation = validation_data(task, args.data_dir)
        evaluation = task.load_evaluation(args.data_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plain = load_model(args.plain) if args.plain else None
    diagram = args.diagram or diagram_path(args.model.parent, task.name)
    calibration, rejection = calibrate(
        model, task, validation, (evaluation.images / np.float32(255), evaluation.labels), plain, diagram
    )
    card_path = args.model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["calibration"], card["rejection"] = calibration, rejection
    write_json(card_path, card)
    print(json.dumps({"calibration": calibration, "rejection": rejection}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
