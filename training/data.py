"""Load the verified MNIST and EMNIST IDX files from a data directory.

Every file is checked against its published sha256 before use, so a model is
never trained or scored on a truncated or substituted file. EMNIST images are
stored transposed in the IDX files; they are turned upright here, once, so
everything downstream (training, evaluation, tests) sees upright characters.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

SHA256 = {
    "mnist/train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "emnist/emnist-byclass-test-images-idx3-ubyte.gz": "5ec835bd5d5b1a66378a132e727fef20fe994b3cc666899befcca5ac766f50cd",
    "emnist/emnist-byclass-test-labels-idx1-ubyte.gz": "501e305eeeacb093b162592d80e8a2632040872360fa6d85cfcb2200d91ca92a",
    "emnist/emnist-byclass-mapping.txt": "68fa9091ed325830418b5a8d732f32316e54a480b9f8994a161abb4eddd0d078",
    "emnist/emnist-bymerge-test-images-idx3-ubyte.gz": "5e5815ec1b522089134435f7c55e75a00960b58414793593ffff23efc0821683",
    "emnist/emnist-bymerge-test-labels-idx1-ubyte.gz": "8bda1516255683ba9071e141947ca0c91a911176065cdd6259b0b4d8dc5b5f35",
    "emnist/emnist-bymerge-mapping.txt": "956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede",
    "emnist/emnist-balanced-heldout-images-idx3-ubyte.gz": "4777cddf8927afc2f02b56e40b2bb4708660c4c97fcb8ba61c63adb4d947ae59",
    "emnist/emnist-balanced-heldout-labels-idx1-ubyte.gz": "d69d5f5a22de6d59582555d97d0f5efaf84aba7104cffe6e9a69b4380476c838",
}

DIGIT_LABELS = list("0123456789")
# EMNIST Balanced / ByMerge: digits, capitals, and the lower-case letters that do not look
# like their capitals. Written out because serving has no data files; training checks the
# list against the official mapping file.
CHARACTER_LABELS = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")


class DataError(Exception):
    """A data file is missing or not the verified file; the message says what to do."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (n, 28, 28) uint8, upright, white ink on black
    labels: np.ndarray  # (n,) uint8 indices into the task's labels
    files: dict[str, str]  # relative path -> sha256 of every file used


def verified_path(data_dir: Path, relative: str) -> Path:
    """Return the file's path after checking that it is the published file."""
    path = Path(data_dir) / relative
    if not Path(data_dir).is_dir():
        raise DataError(
            f"data directory {data_dir} does not exist; pass --data-dir pointing at the "
            "folder that holds mnist/ and emnist/ (default ../shared/data)"
        )
    if not path.is_file():
        raise DataError(f"missing data file {path}; copy the verified file there or pass another --data-dir")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[relative]:
        raise DataError(
            f"{path} has sha256 {digest[:12]}..., expected {SHA256[relative][:12]}...: "
            "the file is truncated or not the official one; replace it with the verified copy"
        )
    return path


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped IDX file (ubyte images or labels) into a uint8 array."""
    try:
        with gzip.open(path) as f:
            raw = f.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    except (OSError, EOFError, IndexError, ValueError) as exc:
        raise DataError(f"{path} is not a readable IDX .gz file ({exc}); replace it with the verified copy") from exc


def _load(data_dir: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    x = read_idx(verified_path(data_dir, images))
    y = read_idx(verified_path(data_dir, labels))
    return x, y, {images: SHA256[images], labels: SHA256[labels]}


def read_mapping(data_dir: Path, name: str) -> tuple[list[str], dict[str, str]]:
    """(characters, {file: sha256}) of an EMNIST mapping file (`byclass`, `bymerge`): `label ascii_code` lines."""
    relative = f"emnist/emnist-{name}-mapping.txt"
    text = verified_path(data_dir, relative).read_text()
    return [chr(int(line.split()[1])) for line in text.splitlines() if line.strip()], {relative: SHA256[relative]}


def load_mnist(data_dir: Path, split: str) -> Split:
    """MNIST `train` (60,000) or `t10k` (10,000), the standard protocol."""
    x, y, files = _load(data_dir, f"mnist/{split}-images-idx3-ubyte.gz", f"mnist/{split}-labels-idx1-ubyte.gz")
    return Split(x, y, files)


def load_emnist(data_dir: Path, name: str) -> Split:
    """One EMNIST file pair (`byclass-test`, `bymerge-test`, `balanced-heldout`), upright."""
    x, y, files = _load(
        data_dir, f"emnist/emnist-{name}-images-idx3-ubyte.gz", f"emnist/emnist-{name}-labels-idx1-ubyte.gz"
    )
    return Split(np.ascontiguousarray(x.transpose(0, 2, 1)), y, files)


def load_characters_train(data_dir: Path) -> Split:
    """ByMerge test + ByClass test (labels mapped to the 47 classes), each distinct image once.

    The two files are different random splits of one pool and share ~16k
    images; hashing the pixels keeps each image once. Nothing from the
    balanced held-out set is used here.
    """
    merge_labels, merge_mapping = read_mapping(data_dir, "bymerge")
    byclass_labels, byclass_mapping = read_mapping(data_dir, "byclass")
    if merge_labels != CHARACTER_LABELS:
        raise DataError(
            "emnist-bymerge-mapping.txt does not list CHARACTER_LABELS in training/data.py; fix the constant"
        )
    merge = load_emnist(data_dir, "bymerge-test")
    byclass = load_emnist(data_dir, "byclass-test")
    to_47 = np.array([CHARACTER_LABELS.index(c if c in CHARACTER_LABELS else c.upper()) for c in byclass_labels])
    x = np.concatenate([merge.images, byclass.images])
    y = np.concatenate([merge.labels, to_47[byclass.labels]]).astype(np.uint8)
    _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
    keep = np.sort(first)
    return Split(x[keep], y[keep], {**merge.files, **byclass.files, **merge_mapping, **byclass_mapping})


def load_mnist_or_download(data_dir: Path, split: str) -> Split:
    """`load_mnist`, or where the data directory is absent, Keras' own MNIST download (needs internet)."""
    try:
        return load_mnist(data_dir, split)
    except DataError:
        if Path(data_dir).is_dir():
            raise
    import keras

    try:
        (xt, yt), (xe, ye) = keras.datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"data directory {data_dir} does not exist and the keras.datasets.mnist download failed ({exc}); "
            "pass --data-dir pointing at the folder that holds mnist/"
        ) from exc
    x, y = (xt, yt) if split == "train" else (xe, ye)
    return Split(x, y, {"keras.datasets.mnist": "downloaded"})


VALIDATION_FRACTION = 0.04
SEED = 7


def split(
    n: int, seed: int = SEED, limit: int | None = None, fraction: float = VALIDATION_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """(validation, fit) indices of n images: a seeded shuffle, the first `fraction` for validation.

    Training holds the validation slice out and the calibration fits on it: both take it from here.
    """
    order = np.random.default_rng(seed).permutation(n)
    if limit:
        order = order[:limit]
    n_val = max(1, int(len(order) * fraction))
    return order[:n_val], order[n_val:]
