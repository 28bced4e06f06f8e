"""The preprocessing path of this tree against an earlier revision's, interleaved in one process.

    python -m bench.before_after cefdb6f~1      # before issue 16's preprocessing work

On a shared machine two runs minutes apart are not comparable; rounds that
alternate between the two versions in one process are. Each round times, in
this thread's CPU time, what a request spends in preprocess.py, segment.py
and the answer's input strip: ink (to_ink), its box and crop, the model's
profile, the single-mode character count and the strip's PNG. Decoding,
rendering strokes and the model are the same code in both and are left out.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import importlib.util
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench import ROOT, report
from bench.samples import probes
from recognizer import api, preprocess, segment
from recognizer.decode import decode_image
from recognizer.strokes import parse_strokes, render_strokes
from recognizer.warm_up import SEVEN

MODULES = ("__init__", "errors", "preprocess", "segment")
ROUNDS, CALLS = 7, 100


def load_revision(revision: str, folder: Path):
    """preprocess and segment as they were at `revision`, imported under another package name."""
    package = folder / "recognizer_then"
    package.mkdir()
    for name in MODULES:
        source = subprocess.run(
            ["git", "show", f"{revision}:function/recognizer/{name}.py"], cwd=ROOT, capture_output=True, text=True
        )
        (package / f"{name}.py").write_text(source.stdout if source.returncode == 0 else "")
    spec = importlib.util.spec_from_file_location(
        "recognizer_then", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["recognizer_then"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("recognizer_then.preprocess"), importlib.import_module("recognizer_then.segment")


def pillow_png(image: np.ndarray) -> str:
    """The input strip as the function encoded it before (Pillow's PNG encoder)."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def path(prep, seg, png, gray: np.ndarray, profile: str) -> None:
    ink = prep.to_ink(gray)
    prep.ink_box(ink)
    model_input = getattr(prep, profile)(prep.crop_to_ink(ink))
    seg.count_characters(ink)
    png(model_input)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the earlier revision (anything git show accepts)")
    args = parser.parse_args()
    canvas, photo = probes()[:2]
    drawn = render_strokes(parse_strokes(SEVEN, 280, 280), False)[0]
    cases = [
        ("canvas PNG 280x280 (digits)", decode_image(canvas.body)[0], "mnist_profile"),
        ("photo JPEG 280x280 (digits)", decode_image(photo.body)[0], "mnist_profile"),
        ("strokes JSON (digits)", drawn, "mnist_profile"),
        ("strokes JSON (characters)", drawn, "emnist_profile"),
    ]
    with tempfile.TemporaryDirectory() as folder:
        versions = {
            args.revision: (*load_revision(args.revision, Path(folder)), pillow_png),
            "this tree": (preprocess, segment, api.png_data_url),
        }
        rows = []
        for name, gray, profile in cases:
            cpu = {label: [] for label in versions}
            for _ in range(ROUNDS):
                for label, (prep, seg, png) in versions.items():
                    for _ in range(5):
                        path(prep, seg, png, gray, profile)
                    started = time.thread_time()
                    for _ in range(CALLS):
                        path(prep, seg, png, gray, profile)
                    cpu[label].append((time.thread_time() - started) / CALLS * 1000)
            before, after = (statistics.median(cpu[label]) for label in versions)
            cells = [
                f"{report.ms(statistics.median(v))} ({report.ms(min(v))}-{report.ms(max(v))})" for v in cpu.values()
            ]
            rows.append([name, *cells, f"{1 - after / before:.0%}"])
    print(f"CPU ms per request in preprocessing and the input strip: median of {ROUNDS} interleaved rounds of {CALLS}")
    print(report.table(["request", f"at {args.revision}", "this tree", "less"], rows))


if __name__ == "__main__":
    main()
