"""Which models a folder holds, from their cards alone.

Plain standard library, no numpy: `make package` (and so `make deploy`) reads
the models through this without installing the function's requirements,
which do not install everywhere a deployment starts from.
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_MODEL = "digits"  # what a request that names no model gets, and the first model listed


def find_models(folder: Path) -> list[str]:
    """The names of the classifier models in a folder: every `name.json` card with labels beside a `name.tflite`.

    The default model comes first (it is what a request without `model` gets),
    then the others by name. Other JSON files there (a language model's card)
    have no labels and are not classifiers.
    """
    names = []
    for card_path in sorted(Path(folder).glob("*.json")):
        try:
            card = json.loads(card_path.read_text())
            listed = isinstance(card, dict) and "labels" in card
        except ValueError:  # unreadable, but beside a model: listed, so that loading it says what is wrong
            listed = card_path.with_suffix(".tflite").is_file()
        if listed:
            names.append(card_path.stem)
    return sorted(names, key=lambda name: (name != DEFAULT_MODEL, name))
