"""`make package`: build/function.zip, the Cloud Function's source with the models inside.

The zip is what the cloud builds and runs: main.py and requirements.txt at its
root, the recognizer package, and the shipped models under models/ (main.py
looks there first). Nothing else goes in: no tests, no caches, no training code.

The zip is deterministic (sorted entries, fixed timestamps and permissions), so
its md5 changes only when its content does. Terraform names the uploaded object
after that md5, which makes an unchanged build a no-op and a changed one a
redeploy.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

from recognizer.cards import find_models

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "function"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


def collect(function_dir: Path, models_dir: Path) -> dict[str, Path]:
    """Name in the zip -> file on disk. Raises FileNotFoundError for a missing model."""
    files = {name: function_dir / name for name in ("main.py", "requirements.txt")}
    for path in (function_dir / "recognizer").rglob("*.py"):
        relative = path.relative_to(function_dir)
        if "__pycache__" in relative.parts or "tests" in relative.parts or path.name.startswith("test_"):
            continue
        files[relative.as_posix()] = path
    names = find_models(models_dir)
    if not names:
        raise FileNotFoundError(f"no model cards in {models_dir}: run `make train` or `git checkout -- models/`")
    for name in names:
        path = models_dir / f"{name}.tflite"
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} is missing: run `make train` or `git checkout -- models/`")
    for path in sorted(models_dir.iterdir()):  # the models with their cards, and what they use (a language model)
        if path.is_file() and not path.name.startswith("."):
            files[f"models/{path.name}"] = path
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (needed as {name} in the function zip)")
    return dict(sorted(files.items()))


def write_zip(files: dict[str, Path], out: Path) -> None:
    """Write the zip with fixed metadata, via a temporary file so a failed build leaves no half zip."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix, whatever machine builds it
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "function.zip", help="where to write the zip")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models", help="folder with the shipped models")
    args = parser.parse_args(argv)
    try:
        files = collect(FUNCTION_DIR, args.models_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_zip(files, args.out)
    data = args.out.read_bytes()
    print(f"{args.out}: {len(files)} files, {len(data) / 1e6:.1f} MB, md5 {hashlib.md5(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
