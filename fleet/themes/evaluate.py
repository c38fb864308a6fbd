"""Measure a theme method on the labelled evaluation texts it never learned from.

``hymy fleet themes --evaluate`` prints, per theme, precision (of the texts given the theme, how
many carry it), recall (of the texts that carry it, how many were given it) and their F1, then the
tone's accuracy and per-tone figures; ``--compare`` repeats it for the built-in method's variants
(words only, character n-grams only, both; without stemming) so the choice of features is measured,
not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from .model import THEMES, TONES, Assignment, Example, Text, ThemeMethod


@dataclass(frozen=True, slots=True)
class Score:
    """Precision, recall and F1 of one label, with its support (how many texts truly carry it)."""

    label: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What a method scored on the evaluation texts."""

    method: str
    texts: int
    themes: list[Score]
    tones: list[Score]
    tone_accuracy: float
    seconds: float

    @property
    def macro_f1(self) -> float:
        return sum(s.f1 for s in self.themes) / len(self.themes)

    @property
    def micro(self) -> Score:
        return Score(
            "all", sum(s.tp for s in self.themes), sum(s.fp for s in self.themes), sum(s.fn for s in self.themes)
        )


def score(truth: Sequence[Example], got: Sequence[Assignment], method: str, seconds: float = 0.0) -> Evaluation:
    """Compare assignments with the labels, theme by theme and tone by tone."""
    themes = []
    for theme in THEMES:
        tp = sum(1 for e, a in zip(truth, got, strict=True) if theme in e.themes and theme in a.themes)
        fp = sum(1 for e, a in zip(truth, got, strict=True) if theme not in e.themes and theme in a.themes)
        fn = sum(1 for e, a in zip(truth, got, strict=True) if theme in e.themes and theme not in a.themes)
        themes.append(Score(theme, tp, fp, fn))
    tones = []
    for tone in TONES:
        tp = sum(1 for e, a in zip(truth, got, strict=True) if e.tone == tone and a.tone == tone)
        fp = sum(1 for e, a in zip(truth, got, strict=True) if e.tone != tone and a.tone == tone)
        fn = sum(1 for e, a in zip(truth, got, strict=True) if e.tone == tone and a.tone != tone)
        tones.append(Score(tone, tp, fp, fn))
    right = sum(1 for e, a in zip(truth, got, strict=True) if e.tone == a.tone)
    return Evaluation(method, len(truth), themes, tones, right / len(truth) if truth else 0.0, seconds)


def evaluate(method: ThemeMethod, examples: Sequence[Example], label: str | None = None) -> Evaluation:
    """Run ``method`` over ``examples`` and score it."""
    start = time.perf_counter()
    got = method.assign([Text(e.lang, e.text) for e in examples])
    return score(examples, got, label or method.name, time.perf_counter() - start)


def report(ev: Evaluation, by_lang: dict[str, Evaluation] | None = None) -> str:
    """The evaluation as a plain-text table (what the command prints and docs/open-feedback.md quotes)."""
    lines = [
        f"method {ev.method}: {ev.texts} evaluation texts, assigned in {ev.seconds:.2f} s",
        f"{'theme':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'texts':>7}",
    ]
    for s in ev.themes:
        lines.append(f"{s.label:<14}{s.precision:>10.2f}{s.recall:>8.2f}{s.f1:>7.2f}{s.support:>7}")
    m = ev.micro
    lines.append(f"{'all (micro)':<14}{m.precision:>10.2f}{m.recall:>8.2f}{m.f1:>7.2f}{m.support:>7}")
    lines.append(f"{'macro F1':<14}{'':>10}{'':>8}{ev.macro_f1:>7.2f}")
    lines.append(f"tone accuracy {ev.tone_accuracy:.2f}")
    lines.append(f"{'tone':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'texts':>7}")
    for s in ev.tones:
        lines.append(f"{s.label:<14}{s.precision:>10.2f}{s.recall:>8.2f}{s.f1:>7.2f}{s.support:>7}")
    if by_lang:
        lines.append(f"{'language':<14}{'texts':>7}{'micro F1':>10}{'macro F1':>10}{'tone acc':>10}")
        for lang, e in sorted(by_lang.items()):
            lines.append(f"{lang:<14}{e.texts:>7}{e.micro.f1:>10.2f}{e.macro_f1:>10.2f}{e.tone_accuracy:>10.2f}")
    return "\n".join(lines)


def by_language(truth: Sequence[Example], got: Sequence[Assignment], method: str) -> dict[str, Evaluation]:
    """The same scores for each language's texts alone."""
    out = {}
    for lang in sorted({e.lang for e in truth}):
        pairs = [(e, a) for e, a in zip(truth, got, strict=True) if e.lang == lang]
        out[lang] = score([p[0] for p in pairs], [p[1] for p in pairs], method)
    return out
