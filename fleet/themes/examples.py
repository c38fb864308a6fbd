"""The shipped labelled texts: ``data/train-*.jsonl`` (learned from) and ``data/eval-*.jsonl`` (held out).

Plain JSON lines, read without the learning libraries (the demo reads them to write its history).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources

from .model import THEMES, TONES, Example


def read_examples(lines: Iterable[str], where: str = "") -> list[Example]:
    """Labelled texts from JSON lines; a bad line says where and what."""
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            themes = tuple(t for t in THEMES if t in obj["themes"])
            if set(obj["themes"]) - set(THEMES) or obj["tone"] not in TONES or not isinstance(obj["text"], str):
                raise ValueError("unknown theme or tone")
            out.append(Example(str(obj["lang"]), obj["text"], themes, obj["tone"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{where}:{n}: {exc}") from exc
    return out


def shipped(kind: str) -> list[Example]:
    """The shipped ``train`` or ``eval`` texts of every language."""
    data = resources.files("fleet.themes").joinpath("data")
    out: list[Example] = []
    for item in sorted(data.iterdir(), key=lambda p: p.name):
        if item.name.startswith(f"{kind}-") and item.name.endswith(".jsonl"):
            out.extend(read_examples(item.read_text("utf-8").splitlines(), item.name))
    return out
