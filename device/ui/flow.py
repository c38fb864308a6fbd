"""The interaction on the kiosk: which screen shows, what a press or a touch does, and when time moves on.

One Flow owns every call into the Terminal, and every public method takes its lock, so a press,
a follow-up and a new configuration never race. That lets an input's own thread commit a press at
once (``answer``) while the kiosk's loop ticks and draws: the loop never stands between a button
and the database. It knows nothing of pygame: it is fed answers (buttons, keys, touch on a number
or face), taps (actions of touch targets) and ticks, and the loop draws whatever ``view()`` says.

A new configuration is applied in two steps, so a press is always recorded against the question
on the glass: ``staged()`` gives the screen the pending configuration would show (the loop renders
it off screen), and ``apply_staged()``, called with ``lock`` held while that frame is flipped
onto the glass, switches the Terminal. A press before the flip gets the old question, one after
it the new, and a press since staging cancels the switch until the next pause.

A score is committed the moment it is pressed. When follow-up questions come after it (the
branch for that score, the respondent's role), the vote is committed *held*: durable, but not
sent until ``Terminal.complete`` adds the role and reason, or sent as it is after a power cut.
So one vote carries score, role and reason, as SPEC 6.1 has it, and no press is ever lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import protocol
from device.errors import DeviceError
from device.hours import HoursError, is_open
from device.strings import check_config
from device.terminal import Terminal
from protocol import Vote

from . import compose
from .views import ROLES, BlankView, View

log = logging.getLogger(__name__)

#: A configuration waiting to be applied is applied only after this long without a touch.
APPLY_IDLE_S = 3.0
#: The language goes back to the default after this long without a touch on the question.
LANGUAGE_IDLE_S = 60.0
#: The role question gives up after this long when there is no follow-up timeout to borrow.
DEFAULT_CHOICE_TIMEOUT_S = 20.0

RESTING = frozenset({"question", "closed", "unplaced", "unavailable", "asleep"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Flow:
    """The kiosk's state machine: resting screen, follow-up, role, thanks; timing by an injected clock."""

    def __init__(
        self,
        terminal: Terminal,
        device_id: str,
        *,
        touch: bool = True,
        claim_base: str | None = None,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
        apply_idle_s: float = APPLY_IDLE_S,
    ) -> None:
        """``touch`` False (buttons only) skips the follow-up and role questions, which need a touch screen."""
        self.terminal = terminal
        self.device_id = device_id
        self.touch = touch
        self.claim_base = claim_base
        self._now = now
        self._wall = wall
        self._apply_idle_s = apply_idle_s
        #: Held by every public method; hold it yourself to make a step atomic with a press.
        self.lock = threading.RLock()
        self._staging: tuple[int, dict[str, Any]] | None = None  # the pending config, while staged() looks
        self.screen = "question"
        self.lang: str | None = None
        self._held: Vote | None = None
        self._branch: dict[str, Any] | None = None
        self._reason: str | None = None
        self._deadline: float | None = None
        self._last_touch = now()
        self._doc_ok: tuple[int, str | None] | None = None
        self._rest()

    # -- what to show ----------------------------------------------------------------------------

    def _config(self) -> tuple[int, dict[str, Any]] | None:
        return self._staging or self.terminal.config

    @property
    def doc(self) -> dict[str, Any] | None:
        """The configuration document in force, or None on an unplaced terminal."""
        config = self._config()
        return None if config is None else config[1]

    def _problem(self) -> str | None:
        """Why the configuration in force cannot be shown (checked once per version), or None."""
        config = self._config()
        if config is None:
            return None
        if self._doc_ok is None or self._doc_ok[0] != config[0]:
            self._doc_ok = (config[0], check_config(*config))
            if self._doc_ok[1]:
                log.warning("configuration %d cannot be shown: %s", config[0], self._doc_ok[1])
        return self._doc_ok[1]

    def _resting_screen(self) -> str:
        doc = self.doc
        if doc is None:
            return "unplaced"
        if self._problem() is not None:
            return "unavailable"
        try:
            if not is_open(protocol.setting(doc, "hours"), self._wall()):
                return "closed"
        except HoursError:
            return "unavailable"
        sleep_s = float(protocol.setting(doc, "display").get("sleep_after_s", 0))
        if sleep_s and self._now() - self._last_touch >= sleep_s:
            return "asleep"
        return "question"

    def view(self) -> View:
        """The view for the current screen, in the current language."""
        with self.lock:
            return self._view()

    def _view(self) -> View:
        doc, lang = self.doc, self.lang
        if self.screen == "unplaced" or doc is None:
            return compose.unplaced_view(self.device_id, self.claim_base)
        if self.screen == "unavailable" or lang is None:
            return compose.unavailable_view(self.device_id)
        if self.screen == "asleep":
            return BlankView()
        if self.screen == "closed":
            return compose.closed_view(doc, lang, self._wall())
        if self.screen == "followup" and self._branch is not None:
            return compose.followup_view(doc, self._branch, lang)
        if self.screen == "role":
            return compose.role_view(doc, lang)
        if self.screen == "thanks":
            return compose.thanks_view(doc, lang)
        return compose.question_view(doc, lang)

    # -- input -----------------------------------------------------------------------------------

    def answer(self, answer: int) -> Vote | None:
        """A score from any source, on any thread; returns the committed vote, or None when this screen takes none."""
        with self.lock:
            return self._answer(answer)

    def _answer(self, answer: int) -> Vote | None:
        self._last_touch = self._now()
        if self.screen in ("followup", "role"):
            self._complete()  # a new press ends the previous person's follow-up
        if self.screen in ("unplaced", "unavailable"):
            log.info("press %d ignored: the terminal is %s", answer, self.screen)
            return None
        doc = self.doc
        assert doc is not None
        branch = compose.followup_branch(doc, answer) if self.touch else None
        ask_role = self.touch and bool(protocol.setting(doc, "role_question"))
        try:
            vote = self.terminal.press(answer, self.lang, hold=bool(branch) or ask_role)
        except (ValueError, DeviceError) as exc:  # an answer outside the scale: a stray key
            log.info("press %d not stored: %s", answer, exc)
            return None
        if branch is not None or ask_role:
            self._held, self._branch, self._reason = vote, branch, None
            self._go("followup" if branch is not None else "role", self._choice_timeout())
        else:
            self._thank()
        return vote

    def tap(self, action: tuple[Hashable, ...]) -> Vote | None:
        """A touch on a target; returns the vote when the touch was an answer."""
        with self.lock:
            return self._tap(action)

    def _tap(self, action: tuple[Hashable, ...]) -> Vote | None:
        self._last_touch = self._now()
        kind = action[0]
        if kind == "answer" and isinstance(action[1], int):
            return self._answer(action[1])
        if kind == "lang" and self.doc is not None and action[1] in self.doc["languages"]:
            self.lang = str(action[1])
        elif kind == "wake" and self.screen == "asleep":
            self._rest()
        elif kind == "followup" and self.screen == "followup":
            self._reason = str(action[1])
            self._after_followup()
        elif kind == "role" and self.screen == "role" and action[1] in ROLES:
            self._complete(role=str(action[1]))
            self._thank()
        elif kind == "skip" and self.screen == "followup":
            self._after_followup()
        elif kind == "skip" and self.screen == "role":
            self._complete()
            self._thank()
        return None

    def tick(self) -> bool:
        """Move on when time says so (timeouts, thanks over, hours, sleep); True if it did."""
        with self.lock:
            return self._tick()

    def _tick(self) -> bool:
        before = (self.screen, self.lang)
        now = self._now()
        if self._deadline is not None and now >= self._deadline:
            if self.screen in ("followup", "role"):
                self._complete()  # the person left: the score stays as it was pressed
            self._rest()
        if self.screen in RESTING:
            if self.screen != "asleep" and now - self._last_touch >= LANGUAGE_IDLE_S:
                self.lang = self._default_lang()
            screen = self._resting_screen()
            if screen != self.screen:
                self.screen = screen
        return (self.screen, self.lang) != before

    # -- a new configuration, between interactions -------------------------------------------------

    def _idle(self) -> bool:
        return self.screen in RESTING and self._now() - self._last_touch >= self._apply_idle_s

    def staged(self) -> tuple[int, View] | None:
        """A pending configuration's version and the resting screen it would show, once idle; else None."""
        with self.lock:
            pending = self.terminal.pending
            if pending is None or not self._idle():
                return None
            saved = (self.screen, self.lang, self._doc_ok)
            self._staging = pending
            try:
                self.lang = self._default_lang()
                self.screen = self._resting_screen()
                return pending[0], self._view()
            finally:
                self._staging = None
                self.screen, self.lang, self._doc_ok = saved

    def apply_staged(self, version: int) -> bool:
        """Switch to the configuration ``staged()`` gave, unless a press came since; hold ``lock`` over the flip."""
        with self.lock:
            if not self._idle() or not self.terminal.apply_pending(version):
                return False
            log.info("configuration %d applied", version)
            self._rest()
            return True

    # -- transitions -----------------------------------------------------------------------------

    def _default_lang(self) -> str | None:
        doc = self.doc
        return None if doc is None else str(doc["default_language"])

    def _go(self, screen: str, seconds: float | None) -> None:
        self.screen = screen
        self._deadline = None if seconds is None else self._now() + seconds

    def _rest(self) -> None:
        """Back to the resting screen in the default language, as after every vote."""
        self._deadline = None
        self.lang = self._default_lang()
        self.screen = "question"
        self.screen = self._resting_screen()

    def _thank(self) -> None:
        doc = self.doc
        self._go("thanks", float(protocol.setting(doc, "thanks_s")) if doc else 5.0)

    def _choice_timeout(self) -> float:
        followup = protocol.setting(self.doc or {}, "followup")
        return float(followup.get("timeout_s", DEFAULT_CHOICE_TIMEOUT_S)) if followup else DEFAULT_CHOICE_TIMEOUT_S

    def _after_followup(self) -> None:
        if self.touch and protocol.setting(self.doc or {}, "role_question"):
            self._go("role", self._choice_timeout())
        else:
            self._complete()
            self._thank()

    def _complete(self, role: str | None = None) -> None:
        """Release the held vote with what the person answered (maybe nothing)."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            self.terminal.complete(held.seq, role=role, reason=self._reason)
        except DeviceError:
            log.exception("could not add the follow-up to vote %d; it is sent as pressed after a restart", held.seq)
        self._branch, self._reason = None, None
