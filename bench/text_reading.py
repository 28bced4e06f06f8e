"""What reading a line of text costs: the server's own `timing_ms.total` for a 6-letter word and a 60-character line.

Lines are drawn from held-out EMNIST glyphs (training/text_eval.py's compose,
the same lines the text evaluation reads) and posted in characters text mode
through functions-framework's app in this process (no socket), with the
default context (words: the search with the English model); and a 6-letter
word in block capitals as pen strokes, a point every 3 units of a 100-unit
letter height, as the site sends a word drawn on its pad. Each is posted once
to warm up, then REPEATS times; the median counts.
"""

from __future__ import annotations

import itertools
import json
import statistics

import numpy as np

from bench import DATA_DIR, MODELS_DIR, ROOT, report
from recognizer import reader
from training.data import CHARACTER_LABELS, load_emnist
from training.language_model import english_words, word_split
from training.text_eval import APART, WORD_GAP, WORD_RANKS, Glyphs, compose, letter_label

REPEATS = 50
GOALS_MS = {"6 letters": 10.0, "60 characters": 100.0, "6 letters in pen strokes": 10.0}
STROKE_WORD = "LENTIL"
CAPITALS = {  # block capitals 100 units tall, as polylines
    "L": [[(0, 0), (0, 100), (55, 100)]],
    "E": [[(55, 0), (0, 0), (0, 100), (55, 100)], [(0, 50), (45, 50)]],
    "N": [[(0, 100), (0, 0), (60, 100), (60, 0)]],
    "T": [[(0, 0), (60, 0)], [(30, 0), (30, 100)]],
    "I": [[(30, 0), (30, 100)]],
}
POINT_SPACING = 3.0  # units between the points of a stroke, as pointer events come


def lines(rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    """{name: (text, PNG)}: a 6-letter word and 60 characters of words, in held-out glyphs."""
    held = load_emnist(DATA_DIR, "balanced-heldout")
    glyphs = Glyphs(held.images, held.labels, CHARACTER_LABELS)
    words = [w for w, _ in english_words()[:WORD_RANKS] if word_split(w) != "tune"]
    six = next(w for w in words[1000:] if len(w) == 6)
    sixty = ""
    while len(sixty) < 60:
        sixty = f"{sixty} {words[int(rng.integers(len(words)))]}".strip()
    sixty = sixty[:60].strip()
    made = {}
    for name, text in (("6 letters", six), ("60 characters", sixty)):
        letters = [letter_label(c) for c in text if c != " "]
        gaps = [rng.uniform(*WORD_GAP) if nxt == " " else rng.uniform(*APART) for nxt in (*text[1:], "")]
        gaps = [g for g, c in zip(gaps, text, strict=True) if c != " "]
        made[name] = (text, compose([glyphs.draw(c, rng) for c in letters], gaps, rng)[0])
    return made


def pen_strokes(word: str) -> list[list[list[float]]]:
    """The word in CAPITALS as JSON strokes: one per polyline, a point every POINT_SPACING units, 30 units apart."""
    strokes = []
    for k, letter in enumerate(word):
        for polyline in CAPITALS[letter]:
            points = [polyline[0]]
            for (x0, y0), (x1, y1) in itertools.pairwise(polyline):
                steps = max(1, int(np.hypot(x1 - x0, y1 - y0) // POINT_SPACING))
                points += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
            strokes.append([[round(20 + 90 * k + x, 1), round(20 + y, 1)] for x, y in points])
    return strokes


def run(quick: bool = False) -> report.Section:
    import os

    import functions_framework

    os.environ["MODELS_DIR"] = str(MODELS_DIR)
    app = functions_framework.create_app(target="predict", source=str(ROOT / "function" / "main.py"))
    client = app.test_client()
    repeats = 3 if quick else REPEATS
    rows, targets = [], []
    requests = {
        name: (text, {"data": png, "content_type": "image/png"})
        for name, (text, png) in lines(np.random.default_rng(6)).items()
    }
    strokes = json.dumps({"strokes": pen_strokes(STROKE_WORD)})
    requests["6 letters in pen strokes"] = (STROKE_WORD, {"data": strokes, "content_type": "application/json"})
    for name, (text, body) in requests.items():
        totals, answer = [], {}
        for _ in range(repeats + 1):
            response = client.post("/predict?model=characters&mode=text", **body)
            if response.status_code != 200:
                raise RuntimeError(f"the function answered {response.status_code}: {response.json}")
            answer = response.json
            totals.append(answer["timing_ms"]["total"])
        median = statistics.median(totals[1:])
        p90 = float(np.percentile(totals[1:], 90))
        read = answer["text"]
        rows.append(
            [name, f"`{text}`", f"`{read}`", len(answer["characters"]), repeats, report.ms(median), report.ms(p90)]
        )
        goal = GOALS_MS[name]
        targets.append(
            report.Target(
                f"text line, {name}: server timing_ms.total, median",
                f"<= {goal:g} ms",
                f"{report.ms(median)} ms",
                median <= goal,
            )
        )
    section = report.Section("Reading a line of text (characters model, context words)")
    section.body += [
        __doc__.split("\n\n")[1].replace("\n", " "),
        report.table(["line", "written", "read as", "characters", "requests", "median ms", "p90 ms"], rows),
        f"The search is bounded by named constants in recognizer/reader.py: beam width {reader.BEAM_WIDTH}, "
        f"{reader.LABELS_PER_PIECE} labels per candidate, merges of at most {reader.MAX_MERGE} pieces "
        "(more only as all the slices of one piece of ink), "
        f"at most {reader.MAX_CUT_ATOMS} pieces after cutting.",
    ]
    section.targets += targets
    return section


def main() -> None:
    report.run_standalone(run, __doc__.splitlines()[0], "three requests each: a smoke test, not a measurement")


if __name__ == "__main__":
    main()
