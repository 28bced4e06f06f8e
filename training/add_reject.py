"""Give a shipped int8 model a reject output without retraining it: its last layer, refitted on negatives.

    python -m training.add_reject models/characters.tflite --data-dir ../shared/data --out /tmp/candidate

The full recipe with the reject class (training/train.py, `reject: True`)
takes over an hour on two cores. This is the short way, used when that did
not fit: the convolutions are rebuilt in Keras from the `.tflite` file's own
(dequantized, batch-norm-folded) weights and frozen; their features of the
training images and of the task's negatives (training/negatives.py) are
computed once; a softmax layer with one more output, started from the
file's own last layer, is fitted on them (class-balanced, as the recipe;
half the images framed as the function frames them, as in the recipe's served
epochs); then the net goes through training/train.py's conversion, scoring,
calibration and card as any run (`--resume-from` with no epochs left).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from training.data import DEFAULT_DATA_DIR, SEED
from training.store import CHECKPOINT_DIR
from training.tasks import TASKS

EPOCHS = 4
BATCH = 256
LEARNING_RATE = 3e-4


def read_layers(tflite_path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """The file's layers in order: ("conv", [kernel HWIO, bias]), ("pool", []), ("dense", [kernel IO, bias])."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}

    def weights(index: int) -> np.ndarray:
        detail = tensors[index]
        scales = detail["quantization_parameters"]["scales"]
        zeros = detail["quantization_parameters"]["zero_points"]
        values = interpreter.get_tensor(index).astype(np.float32)
        shape = (-1,) + (1,) * (values.ndim - 1)
        return (values - zeros.reshape(shape)) * scales.reshape(shape) if len(scales) else values

    layers = []
    for op in interpreter._get_ops_details():
        inputs = [int(i) for i in op["inputs"]]
        if op["op_name"] == "CONV_2D":
            kernel = weights(inputs[1]).transpose(1, 2, 3, 0)  # OHWI -> HWIO
            layers.append(("conv", [kernel, weights(inputs[2])]))
        elif op["op_name"] == "MAX_POOL_2D":
            layers.append(("pool", []))
        elif op["op_name"] == "FULLY_CONNECTED":
            layers.append(("dense", [weights(inputs[1]).T, weights(inputs[2])]))
    return layers


def rebuild(layers: list[tuple[str, list[np.ndarray]]], outputs: int):
    """(frozen feature net, its features -> softmax head with `outputs` outputs, started from the file's layer)."""
    import keras

    stack = [keras.Input((28, 28, 1))]
    for kind, _ in layers:
        if kind == "conv":
            stack.append(keras.layers.Conv2D(_[0].shape[-1], _[0].shape[0], padding="same", activation="relu"))
        elif kind == "pool":
            stack.append(keras.layers.MaxPooling2D())
    stack.append(keras.layers.Flatten())
    features = keras.Sequential(stack)
    convs = [w for kind, w in layers if kind == "conv"]
    for layer, w in zip([la for la in features.layers if isinstance(la, keras.layers.Conv2D)], convs, strict=True):
        layer.set_weights(w)
    features.trainable = False
    kernel, bias = next(w for kind, w in layers if kind == "dense")
    head = keras.Sequential([keras.Input((kernel.shape[0],)), keras.layers.Dense(outputs, activation="softmax")])
    start_kernel = np.zeros((kernel.shape[0], outputs), np.float32)
    start_bias = np.full(outputs, float(bias.min()), np.float32)  # the reject output starts unlikely
    start_kernel[:, : kernel.shape[1]], start_bias[: kernel.shape[1]] = kernel, bias
    head.layers[-1].set_weights([start_kernel, start_bias])
    return features, head


def refit(model_path: Path, card: dict, data, evaluation, checkpoint: Path) -> None:
    """Rebuild the file's net, fit its last layer with the reject output on frozen features, save it."""
    import keras

    from training.served import as_served

    classes = len(card["labels"])
    features, head = rebuild(read_layers(model_path), classes + 1)
    # Half the images as the function's preprocessing gives them back, as in the recipe's served epochs
    # (training/served.py): refitted on the originals alone, canvas drawings scored 0.8 point lower.
    images = as_served(data.images, card["preprocessing"], SEED)
    x = features.predict(images[..., None] / np.float32(255), batch_size=1024, verbose=0)
    rebuilt = head.predict(features.predict(evaluation.images[..., None] / np.float32(255), verbose=0), verbose=0)
    print(f"rebuilt float net before refitting: {np.mean(rebuilt[:, :classes].argmax(1) == evaluation.labels):.4f}")
    counts = np.bincount(data.labels[data.fit], minlength=classes + 1).astype(np.float64)
    class_weight = {i: float(len(data.fit) / (len(counts) * c)) for i, c in enumerate(counts)}
    head.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(
        x[data.fit],
        data.labels[data.fit],
        batch_size=BATCH,
        epochs=EPOCHS,
        class_weight=class_weight,
        validation_data=(x[data.val], data.labels[data.val]),
        verbose=2,
    )
    net = keras.Sequential(
        [keras.Input((28, 28, 1)), *features.layers, *head.layers], name=card["training"]["recipe"]["architecture"]
    )
    net.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    net.save(checkpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.add_reject", description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a shipped .tflite with its card beside it")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true", help="convert and card the last refitted net again")
    args = parser.parse_args(argv)

    import keras

    from training.negatives import training_negatives
    from training.train import Options, prepare, run

    card = json.loads(args.model.with_suffix(".json").read_text())
    task = TASKS[card["name"]]
    keras.utils.set_random_seed(SEED)
    train, evaluation = task.load_training(args.data_dir), task.load_evaluation(args.data_dir)
    negatives = training_negatives(task, args.data_dir, SEED)
    checkpoint = CHECKPOINT_DIR / f"{task.name}-reject-head.keras"
    if not args.reuse:
        refit(args.model, card, prepare(train, negatives, len(task.labels), None), evaluation, checkpoint)
    recipe = {
        "architecture": card["training"]["recipe"]["architecture"],
        "epochs": 0,
        "augment": False,
        "lr_decay": 1.0,
        "balance_classes": True,
        "reject": True,
        "reject_head": {
            "from": f"{args.model.name} version {card['version'][:12]}",
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "learning_rate": LEARNING_RATE,
            "frozen": "every layer but the last (weights dequantized from the int8 file, batch norm folded)",
        },
    }
    run(Options(task, recipe, args.out, resume_from=checkpoint, plain=args.model), train, evaluation, negatives)
    return 0


if __name__ == "__main__":
    sys.exit(main())
