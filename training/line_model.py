"""Train the digit-line model: a small CNN that reads a whole line of digits at once (CTC).

Lines are written with MNIST training digits (the fit slice, each digit
varied a little: never the validation slice or t10k) side by side by text_eval.compose, as the text
evaluation writes its lines, with gaps from touching to wide apart; each is
decoded and turned to ink by the function's own code and made a strip by
preprocess.line_strip, the function's input for this model. The net turns a
28 x width strip into width / 4 steps of 11 logits (the digits, then the CTC
blank); trained with CTC loss, converted to int8 with a free width.

    python -m training.line_model --data-dir ../shared/data --out models
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from recognizer.decode import decode_image
from recognizer.line_model import LineModel, LineReading
from recognizer.preprocess import STRIP_HEIGHT, line_strip, to_ink
from training.data import DEFAULT_DATA_DIR, DIGIT_LABELS, load_mnist, split
from training.text_eval import APART, TOUCHING, Glyphs, compose

NAME = "digit-lines"
LINES = 160_000
VALIDATION_LINES = 2_000  # the first lines made: the net never trains on them
PARTS = 20  # lines are made in this many seeded parts, two processes at once
FIRST_SEED = 1000
MAX_DIGITS = 9
TRAIN_WIDTH = 256  # columns a training strip is cut or padded to (the widest 9-digit lines are ~250)
EPOCHS = 7
BATCH = 64
LEARNING_RATE = 1e-3
STRIDE = 4  # input columns per output step


def varied(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 digit turned, sheared and stretched a little, its stroke sometimes thicker or thinner.

    Without it the net learns the training digits' images: lines of the fit
    slice's digits read 96 % exactly after two epochs, lines of unseen digits 91 %.
    """
    angle = np.radians(rng.uniform(-12, 12))
    shear, stretch = rng.uniform(-0.25, 0.25), rng.uniform(0.85, 1.15)
    cos, sin = np.cos(angle), np.sin(angle)
    a, b, d, e = cos / stretch, sin + shear, -sin / stretch, cos  # output -> input pixel, about the centre
    c, f = 14 - a * 14 - b * 14, 14 - d * 14 - e * 14
    image = Image.fromarray(glyph).transform((28, 28), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.BILINEAR)
    thickness = rng.random()
    if thickness < 0.25:
        image = image.filter(ImageFilter.MaxFilter(3))
    elif thickness < 0.33:
        image = image.filter(ImageFilter.MinFilter(3))
    return np.asarray(image)


def _part(args: tuple[Path, int, int, bool]) -> list[tuple[np.ndarray, str]]:
    """`count` lines from seed `seed`: 1-9 random digits, touching (45 %), apart (45 %) or anything between;
    of the validation slice's digits as they are, or of the fit slice's, varied."""
    data_dir, seed, count, validation = args
    mnist = load_mnist(data_dir, "train")
    held, fit = split(len(mnist.images))
    chosen = held if validation else fit
    glyphs = Glyphs(mnist.images[chosen], mnist.labels[chosen], DIGIT_LABELS)
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        length = int(rng.integers(1, MAX_DIGITS + 1))
        truth = "".join(rng.choice(DIGIT_LABELS, length))
        kind = rng.random()
        gaps = rng.uniform(*(TOUCHING if kind < 0.45 else APART), length)
        if kind > 0.9:
            gaps = rng.uniform(-0.1, 0.6, length)
        drawn = [glyphs.draw(c, rng) for c in truth]
        png, _ = compose(drawn if validation else [varied(g, rng) for g in drawn], list(gaps), rng)
        ink = to_ink(decode_image(png)[0])
        if ink.any():  # a lone digit thinned to a trace can be read as no ink at all, as the function would
            lines.append((line_strip(ink), truth))
    return lines


def make_lines(data_dir: Path, count: int) -> dict[str, np.ndarray]:
    """Strips (uint8, cut or padded to TRAIN_WIDTH), labels (-1 padded), true widths; the first
    VALIDATION_LINES of the validation slice's digits, the rest of the fit slice's."""
    jobs = [(data_dir, FIRST_SEED - 1, VALIDATION_LINES, True)]
    jobs += [(data_dir, FIRST_SEED + i, (count - VALIDATION_LINES) // PARTS, False) for i in range(PARTS)]
    with Pool(2) as pool:
        parts = pool.map(_part, jobs)
    lines = [line for part in parts for line in part]
    x = np.zeros((len(lines), STRIP_HEIGHT, TRAIN_WIDTH), np.uint8)
    labels = np.full((len(lines), MAX_DIGITS + 1), -1, np.int32)
    widths = np.zeros(len(lines), np.int32)
    for i, (strip, truth) in enumerate(lines):
        width = min(TRAIN_WIDTH, strip.shape[1])
        x[i, :, :width] = np.round(strip[:, :width] * 255)
        labels[i, : len(truth)] = [int(c) for c in truth]
        widths[i] = strip.shape[1]
    return {"x": x, "labels": labels, "widths": widths}


def build():
    import keras
    from keras import layers

    x = inputs = keras.Input((STRIP_HEIGHT, None, 1))
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)  # 14 rows, width / 2
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)  # 7 rows, width / 4
    x = layers.Conv2D(96, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, (7, 1), activation="relu")(x)  # one row: a step per 4 columns
    x = layers.Conv2D(128, (1, 5), padding="same", activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Conv2D(128, (1, 5), padding="same", activation="relu")(x)
    x = layers.Conv2D(len(DIGIT_LABELS) + 1, 1)(x)  # logits; the blank last
    return keras.Model(inputs, x)


def ctc_loss(labels, logits):
    import tensorflow as tf

    logits = tf.squeeze(logits, 1)
    labels = tf.cast(labels, tf.int32)
    batch, steps = tf.shape(logits)[0], tf.shape(logits)[1]
    loss = tf.nn.ctc_loss(
        labels=tf.where(labels >= 0, labels, 0),
        logits=logits,
        label_length=tf.reduce_sum(tf.cast(labels >= 0, tf.int32), axis=1),
        logit_length=tf.fill([batch], steps),
        logits_time_major=False,
        blank_index=len(DIGIT_LABELS),
    )
    return tf.reduce_mean(loss)


def train(lines: dict[str, np.ndarray], epochs: int, checkpoint: Path | None = None):
    """Fit on all but the first VALIDATION_LINES; batches of similar widths, cut to their widest line."""
    import keras
    import tensorflow as tf

    x, labels, widths = lines["x"], lines["labels"], lines["widths"]
    indices = np.arange(VALIDATION_LINES, len(x))
    rng = np.random.default_rng(0)
    steps = -(-len(indices) // BATCH)

    def batches():
        order = indices[rng.permutation(len(indices))]
        order = order[np.argsort(np.minimum(widths[order], TRAIN_WIDTH) // 32, kind="stable")]
        chunks = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
        for k in rng.permutation(len(chunks)):
            batch = chunks[k]
            width = min(TRAIN_WIDTH, int(np.ceil(widths[batch].max() / 32) * 32))
            yield x[batch, :, :width, None].astype(np.float32) / 255, labels[batch]

    signature = (
        tf.TensorSpec((None, STRIP_HEIGHT, None, 1), tf.float32),
        tf.TensorSpec((None, MAX_DIGITS + 1), tf.int32),
    )
    data = tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)
    model = build()
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=ctc_loss)
    for epoch in range(epochs):
        model.fit(data, epochs=1, verbose=2)
        print(f"epoch {epoch + 1}: validation lines read exactly {validation_exact(model, lines):.4f}", flush=True)
        if checkpoint:
            model.save(checkpoint)
    return model


def validation_exact(model, lines: dict[str, np.ndarray]) -> float:
    """The share of validation lines whose best path is the truth (the net alone, float)."""
    right = 0
    for i in range(VALIDATION_LINES):
        width = min(TRAIN_WIDTH, int(lines["widths"][i]))
        logits = model(lines["x"][i : i + 1, :, :width, None].astype(np.float32) / 255).numpy()[0, 0]
        truth = "".join(DIGIT_LABELS[k] for k in lines["labels"][i] if k >= 0)
        right += LineReading(logits, DIGIT_LABELS).best == truth  # the best path: the same from logits
    return right / VALIDATION_LINES


def to_tflite(model, lines: dict[str, np.ndarray]) -> bytes:
    """Full-integer int8 with a free width; the quantizer calibrates on 300 training strips of their own widths."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def samples():
            for i in range(VALIDATION_LINES, VALIDATION_LINES + 300):
                width = min(TRAIN_WIDTH, int(lines["widths"][i]))
                yield [lines["x"][i : i + 1, :, :width, None].astype(np.float32) / 255]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return converter.convert()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, help="write NAME.tflite and its card here")
    parser.add_argument("--lines", type=int, default=LINES)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--checkpoint", type=Path, help="save the Keras model here after each epoch (.keras)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.time()
    lines = make_lines(args.data_dir, args.lines)
    made = time.time()
    model = train(lines, args.epochs, args.checkpoint)
    tflite = to_tflite(model, lines)
    if args.out:
        write(args.out, tflite, lines, args, made - started, time.time() - made)


def write(out: Path, tflite: bytes, lines: dict[str, np.ndarray], args, making: float, training: float) -> None:
    """NAME.tflite and its card; the card's validation figure is the int8 file's own."""
    card = {"name": NAME, "version": hashlib.sha256(tflite).hexdigest(), "alphabet": DIGIT_LABELS}
    line_model = LineModel(tflite, card)
    right = 0
    for i in range(VALIDATION_LINES):
        width = min(TRAIN_WIDTH, int(lines["widths"][i]))
        truth = "".join(DIGIT_LABELS[k] for k in lines["labels"][i] if k >= 0)
        strip = lines["x"][i, :, :width].astype(np.float32) / 255
        right += LineReading(line_model.log_probabilities(strip), DIGIT_LABELS).best == truth
    card |= {
        "file": f"{NAME}.tflite",
        "size_bytes": len(tflite),
        "kind": "line_model",
        "description": "reads a line of digits at once; weighs the digits model's readings in text mode",
        "input": {"height": STRIP_HEIGHT, "width": "any multiple of 4", "preprocessing": "preprocess.line_strip"},
        "output": {"steps": f"width / {STRIDE}", "values": "logits", "blank": len(DIGIT_LABELS), "loss": "CTC"},
        "training_data": {
            "source": "MNIST train, the fit slice of training.data.split (never its validation slice, never t10k)",
            "variation": "each digit turned (12 degrees), sheared (0.25), stretched (15 %), thickened or thinned",
            "lines": args.lines - VALIDATION_LINES,
            "digits_per_line": [1, MAX_DIGITS],
            "gaps": "touching (45 %), apart (45 %), anything between (10 %): training/line_model.py",
        },
        "training": {"epochs": args.epochs, "batch": BATCH, "learning_rate": LEARNING_RATE, "seconds": round(training)},
        "validation": {
            "lines": VALIDATION_LINES,
            "exact_best_path": round(right / VALIDATION_LINES, 4),
            "what": "lines of the same making, of the validation slice's digits; the int8 file's best path alone",
        },
        "created": time.strftime("%Y-%m-%d"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.tflite").write_bytes(tflite)
    (out / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["validation"]), f"lines made in {making:.0f} s")


if __name__ == "__main__":
    main()
