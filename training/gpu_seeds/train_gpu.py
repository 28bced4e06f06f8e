"""Digits nets on Keras's JAX backend (a GPU machine without TensorFlow): the shipped recipe and the
served-throughout recipe, several seeds each, side by side. Mirrors training/train.py's _fit and
training/augment.py on arrays prepared here by .gpu/prep.py.

    python .gpu/train_gpu.py all OUTDIR SEEDS...     # served arrays, then one process per (recipe, seed)
    python .gpu/train_gpu.py one OUTDIR RECIPE SEED  # one run
"""

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "function")]

import numpy as np  # noqa: E402

DATA = os.path.join(HERE, "digits.npz")
SERVED = "/tmp/served.npz"
SEED = 7  # training.data.SEED: the served draws of train.py
BATCH = 128
LR, DECAY = 1e-3, 0.9
EPOCHS, CLEAN, SERVED_EPOCHS = 26, 2, 2
THICKEN = 0.2
CHUNK = 8192


def served_arrays(limit: int | None) -> None:
    from multiprocessing import Pool

    from training.served import as_served

    d = np.load(DATA)
    x = d["images"][d["fit"]][:limit]
    out = {}
    with Pool(16) as pool:
        for name, seed in (("last", SEED), ("throughout", SEED + 1)):
            # as_served draws which images and which sides from one generator: split into parts with their own
            # seeds would differ from train.py's draw, but only in which half is served (same share)
            parts = np.array_split(np.arange(len(x)), 16)
            res = pool.starmap(as_served, [(x[p], "mnist", seed * 1000 + i) for i, p in enumerate(parts)])
            out[name] = np.concatenate(res)
    np.savez(SERVED, **out)


def one(outdir: str, recipe: str, seed: int, limit: int | None) -> None:
    import keras
    from keras import layers

    from training.model import build_model

    keras.utils.set_random_seed(seed)
    d, s = np.load(DATA), np.load(SERVED)
    fit = d["fit"][:limit]
    y = d["labels"][fit]
    plain = d["images"][fit]
    first = s["throughout"] if recipe == "throughout" else plain
    last = s["last"]
    model = build_model("seed-nopool-head", 11)
    model.compile(keras.optimizers.Adam(LR), "sparse_categorical_crossentropy", metrics=["accuracy"])
    augmenter = keras.Sequential(
        [
            layers.RandomRotation(10 / 360, fill_mode="constant", seed=seed),
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 2),
        ]
    )
    thicken_seed = keras.random.SeedGenerator(seed + 3)

    def augmented(images: np.ndarray) -> np.ndarray:
        parts = []
        for i in range(0, len(images), CHUNK):
            x = keras.ops.convert_to_tensor(images[i : i + CHUNK, ..., None].astype(np.float32) / 255.0)
            x = augmenter(x, training=True)
            thick = keras.ops.max_pool(x, 2, strides=1, padding="same")
            pick = keras.random.uniform((x.shape[0], 1, 1, 1), seed=thicken_seed) < THICKEN
            parts.append(np.asarray(keras.ops.where(pick, thick, x)))
        return np.concatenate(parts)

    started = time.time()
    for epoch in range(EPOCHS + CLEAN + SERVED_EPOCHS):
        model.optimizer.learning_rate.assign(LR * DECAY**epoch)
        if epoch < EPOCHS:
            x = augmented(first)
        elif epoch < EPOCHS + CLEAN:
            x = first[..., None].astype(np.float32) / 255.0
        else:
            x = last[..., None].astype(np.float32) / 255.0
        h = model.fit(x, y, batch_size=BATCH, epochs=epoch + 1, initial_epoch=epoch, shuffle=True, verbose=0)
        if epoch % 5 == 4 or epoch >= EPOCHS:
            loss, acc = h.history["loss"][-1], h.history["accuracy"][-1]
            print(recipe, seed, epoch, f"{loss:.4f} {acc:.4f} {time.time() - started:.0f}s", flush=True)
    val = d["val"]
    xv = d["images"][val][..., None].astype(np.float32) / 255.0
    pv = model.predict(xv, verbose=0).argmax(1)
    print(recipe, seed, "validation accuracy (11 outputs)", float(np.mean(pv == d["labels"][val])), flush=True)
    model.save(os.path.join(outdir, f"digits-{recipe}-seed{seed}.keras"))


def main() -> None:
    verb, outdir = sys.argv[1], sys.argv[2]
    limit = int(os.environ["LIMIT"]) if os.environ.get("LIMIT") else None
    if verb == "one":
        one(outdir, sys.argv[3], int(sys.argv[4]), limit)
        return
    import subprocess

    import jax

    print(jax.devices(), flush=True)
    if os.environ.get("NEED_GPU") and jax.devices()[0].platform != "gpu":
        sys.exit("no GPU")
    started = time.time()
    served_arrays(limit)
    print(f"served arrays {time.time() - started:.0f}s", flush=True)
    runs = [(r, s) for s in sys.argv[3:] for r in ("last", "throughout")]
    env = dict(os.environ, XLA_PYTHON_CLIENT_MEM_FRACTION="0.1", OMP_NUM_THREADS="2")
    procs = [
        subprocess.Popen([sys.executable, __file__, "one", outdir, r, s], env=env, stderr=subprocess.STDOUT)
        for r, s in runs
    ]
    codes = [p.wait() for p in procs]
    print("exit codes", codes, f"{time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
