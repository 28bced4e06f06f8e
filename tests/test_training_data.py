"""Data loading: verified files, upright EMNIST, the 47-class union, clear errors."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA_DIR, ROOT, needs_data
from training.data import CHARACTER_LABELS, DataError, load_characters_train, load_emnist, load_mnist, read_idx

pytestmark = needs_data


def test_mnist_splits_have_the_published_shapes():
    train, test = load_mnist(DATA_DIR, "train"), load_mnist(DATA_DIR, "t10k")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert np.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]


def test_emnist_is_turned_upright():
    # An upright "1"-like stroke is tall: its ink spans more rows than columns on average.
    held = load_emnist(DATA_DIR, "balanced-heldout")
    ones = held.images[held.labels == CHARACTER_LABELS.index("1")].astype(float)
    rows_with_ink = (ones.sum(axis=2) > 0).sum(axis=1).mean()
    cols_with_ink = (ones.sum(axis=1) > 0).sum(axis=1).mean()
    assert rows_with_ink > 1.5 * cols_with_ink


def test_character_training_set_is_deduplicated_and_disjoint_from_heldout():
    train = load_characters_train(DATA_DIR)
    assert 210_000 < len(train.images) < 220_000
    assert train.labels.max() == 46
    assert {"emnist/emnist-byclass-mapping.txt", "emnist/emnist-bymerge-mapping.txt"} <= train.files.keys()
    flat = {img.tobytes() for img in train.images}
    assert len(flat) == len(train.images)
    held = load_emnist(DATA_DIR, "balanced-heldout")
    assert not any(img.tobytes() in flat for img in held.images)


def test_truncated_file_is_refused(tmp_path):
    shutil.copytree(DATA_DIR / "mnist", tmp_path / "mnist")
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated or not the official one"):
        load_mnist(tmp_path, "t10k")


def test_missing_file_is_named(tmp_path):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataError, match="missing data file"):
        load_mnist(tmp_path, "t10k")


def test_unreadable_idx_is_a_data_error(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(DataError):
        read_idx(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["characters", "--data-dir", "/nonexistent"], "does not exist"),
        (["cats"], "unknown task 'cats'"),
        (["digits", "--architecture", "resnet"], "unknown architecture 'resnet'"),
    ],
)
def test_cli_stops_with_one_line(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "training.train", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0]
