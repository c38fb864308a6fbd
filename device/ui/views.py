"""What each screen shows, as plain data: the flow decides it, the screens only draw it.

Keeping these free of pygame and of the configuration document means a screen can be drawn
(and screenshotted, and tested) from a handful of strings, in any language.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The respondent roles of SPEC 6.1, in the order the role screen offers them.
ROLES = ("client", "relative", "other")


@dataclass(frozen=True, slots=True)
class Switcher:
    """The language switcher: (tag, name in itself) per offered language, and the one in use."""

    languages: tuple[tuple[str, str], ...]
    current: str


@dataclass(frozen=True, slots=True)
class QuestionView:
    """The question and its answer targets."""

    switcher: Switcher
    question: str
    scale: str
    #: NPS end labels (low, high), or one label per face, worst first.
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChoiceView:
    """A follow-up or role question after the score: large choices and a skip button."""

    kind: str  # "followup" or "role"
    question: str
    choices: tuple[tuple[str, str], ...]  # (id, text)
    skip: str


@dataclass(frozen=True, slots=True)
class ThanksView:
    """Thanks, with the open-feedback QR code and its caption where the unit has one."""

    thanks: str
    feedback_url: str | None = None
    caption: str = ""


@dataclass(frozen=True, slots=True)
class ClosedView:
    """Out of hours: a closed notice, the weekly hours and the next opening."""

    switcher: Switcher
    closed: str
    hours_title: str
    hours_lines: tuple[str, ...]
    next_opening: str | None


@dataclass(frozen=True, slots=True)
class NoticeView:
    """A quiet full-screen notice in several languages: not placed yet, unavailable, or enrolling."""

    kind: str  # "unplaced", "unavailable" or "enrolling"
    messages: tuple[str, ...]
    device_id: str
    qr_data: str | None = None


@dataclass(frozen=True, slots=True)
class BlankView:
    """The display asleep (``display.sleep_after_s``): a dark screen that any touch wakes."""


View = QuestionView | ChoiceView | ThanksView | ClosedView | NoticeView | BlankView
