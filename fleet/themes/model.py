"""What a theme step takes and gives: texts in, themes and a tone out, as plain data.

Two methods implement :class:`ThemeMethod`: the built-in one (``builtin.py``, offline, learned from
the shipped training texts and staff corrections) and an adapter for a county's own
OpenAI-compatible service (``openai.py``). Configuration chooses; the rest of the fleet sees only
this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: The themes a text can carry: the terminals' follow-up reasons first (waiting, friendliness,
#: information, facilities), then others that recur in the regions' open feedback.
#: docs/themes-labelling.md says what each covers.
THEMES = (
    "waiting",
    "friendliness",
    "information",
    "facilities",
    "phone",
    "appointments",
    "parking",
    "care",
    "language",
    "digital",
)
POSITIVE, NEGATIVE, MIXED = "positive", "negative", "mixed"
TONES = (POSITIVE, NEGATIVE, MIXED)


@dataclass(frozen=True, slots=True)
class Text:
    """A text to assign: already redacted (no text reaches a theme method before redaction)."""

    lang: str
    text: str


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled text: a shipped training or evaluation text, or a staff correction."""

    lang: str
    text: str
    themes: tuple[str, ...]
    tone: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """The themes (in THEMES order) and tone a method gave one text, and which method it was."""

    themes: tuple[str, ...]
    tone: str
    method: str


class ThemeError(RuntimeError):
    """A theme method could not answer (a service down, an answer it could not read)."""


class ThemeMethod(Protocol):
    """Assigns themes and a tone to texts; one Assignment per text, in order."""

    name: str

    def assign(self, texts: Sequence[Text]) -> list[Assignment]: ...
