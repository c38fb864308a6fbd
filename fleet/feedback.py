"""Open feedback: what the form hands in becomes a stored answer with its themes, or a counted refusal.

The rules live here, apart from the web form (``fleet/web/feedback.py``) and the database
(``fleet/db/feedback.py``):

- The text is redacted before anything else sees it (``fleet/redact.py``); each removal is counted.
- A flood is refused without touching stored answers: a sliding 10-minute window per unit and per
  address. Addresses are never stored: they are counted in memory under an HMAC whose key is made at
  start and never written anywhere, so not even the counts outlive the process.
- Themes are assigned after the answer is stored, by a worker thread (or ``assign_pending``): the
  configured method, else the built-in one when the county's service fails (the text stays on the
  fleet either way). The built-in model is trained once per process and again when staff have
  corrected texts since.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .db.feedback import Answer, FeedbackRecords
from .errors import StoreError
from .redact import KINDS, redact
from .themes.model import Example, Text, ThemeError, ThemeMethod

if TYPE_CHECKING:
    from .themes.builtin import BuiltinThemes

log = logging.getLogger(__name__)

WINDOW_S = 600.0
#: Refusal reasons, counted for /metrics.
RATE_UNIT, RATE_ADDRESS, HONEYPOT, INVALID = "rate_unit", "rate_address", "honeypot", "invalid"
REFUSALS = (RATE_UNIT, RATE_ADDRESS, HONEYPOT, INVALID)


def printable(text: str) -> str:
    """``text`` without control characters but line breaks and tabs (a NUL would be refused by
    PostgreSQL, and none of them is anything a person typed to be read)."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")


class FormThrottle:
    """Answers per unit and per (hashed, in-memory) address in a sliding window."""

    def __init__(
        self, per_unit: int, per_address: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_unit = per_unit
        self.per_address = per_address
        self.window_s = window_s
        self._clock = clock
        self._key = secrets.token_bytes(32)  # never stored: a restart makes every old count unlinkable
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _address(self, addr: str) -> str:
        return "a:" + hmac.new(self._key, addr.encode(), hashlib.sha256).hexdigest()[:24]

    def check(self, unit: str, addr: str) -> str | None:
        """Take one answer's place in both windows, or say which limit refuses it."""
        now = self._clock()
        keys = ((f"u:{unit}", self.per_unit, RATE_UNIT), (self._address(addr), self.per_address, RATE_ADDRESS))
        with self._lock:
            for key, limit, reason in keys:
                times = self._times.get(key)
                if times is None:
                    continue
                while times and now - times[0] > self.window_s:
                    times.popleft()
                if len(times) >= limit:
                    return reason
            for key, _, _ in keys:
                self._times.setdefault(key, deque()).append(now)
            if len(self._times) > 200_000:  # a flood of addresses: forget the quiet ones rather than grow
                for key in [k for k, d in self._times.items() if not d or now - d[-1] > self.window_s]:
                    del self._times[key]
        return None


@dataclass(frozen=True, slots=True)
class ThemeSettings:
    """Which theme method runs (the fleet web's settings of the same names)."""

    method: str = "builtin"
    url: str = ""
    model: str = ""
    api_key: str = ""


class Themes:
    """Chooses and keeps the theme method, and assigns themes to stored texts."""

    def __init__(self, records: FeedbackRecords, settings: ThemeSettings = ThemeSettings()) -> None:
        self.records = records
        self.settings = settings
        self._builtin: BuiltinThemes | None = None
        self._trained_on = -1
        self._lock = threading.Lock()
        self.assigned: dict[str, int] = {}  # method -> texts, for /metrics
        self.failures = 0

    def builtin(self) -> BuiltinThemes:
        """The built-in method, retrained when staff corrections changed since it was trained (imported
        here: scikit-learn loads only in a process that assigns themes)."""
        from .themes.builtin import BuiltinThemes, shipped, shipped_model

        with self._lock:
            count = self.records.correction_count()
            if self._builtin is None or count != self._trained_on:
                corrections = self.records.corrections()
                self._builtin = BuiltinThemes(shipped("train"), corrections) if corrections else shipped_model()
                self._trained_on = count
            return self._builtin

    def method(self) -> ThemeMethod:
        """The configured method."""
        if self.settings.method == "openai":
            from .themes.openai import OpenAISettings, OpenAIThemes

            examples: list[Example] = self.records.corrections()[-20:]
            return OpenAIThemes(OpenAISettings(self.settings.url, self.settings.model, self.settings.api_key), examples)
        return self.builtin()

    def assign_pending(self, limit: int = 200) -> int:
        """Assign themes to texts that have none yet; returns how many were assigned."""
        pending = self.records.pending(limit)
        if not pending:
            return 0
        texts = [Text(lang, text) for _, lang, text in pending]
        method = self.method()
        try:
            got = method.assign(texts)
        except ThemeError as exc:
            self.failures += 1
            log.warning("theme method %s failed (%s); the built-in method assigns instead", method.name, exc)
            got = self.builtin().assign(texts)
        done = 0
        for (text_id, _, _), a in zip(pending, got, strict=True):
            if self.records.set_themes(text_id, a.themes, a.tone, a.method):
                done += 1
                self.assigned[a.method] = self.assigned.get(a.method, 0) + 1
        return done


class FeedbackService:
    """Takes answers from the form: redacts, limits, stores, and has themes assigned."""

    def __init__(self, records: FeedbackRecords, throttle: FormThrottle, themes: Themes) -> None:
        self.records = records
        self.throttle = throttle
        self.themes = themes
        self.refusals: dict[str, int] = {}
        self.redactions: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.stored = 0
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    def refuse(self, reason: str) -> None:
        """Count a refusal (the form tells the person; nothing is stored)."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1
        log.info("open feedback refused: %s", reason)

    def admit(self, unit: str, addr: str) -> str | None:
        """None when an answer for ``unit`` from ``addr`` may be taken now, else the refusal (counted)."""
        reason = self.throttle.check(unit, addr)
        if reason is not None:
            self.refuse(reason)
        return reason

    def submit(self, answer: Answer) -> int:
        """Redact the text, store the answer, and wake the theme worker; returns the answer's id."""
        text = printable(answer.text or "").strip()
        redactions = 0
        if text:
            red = redact(text)
            text = red.text
            redactions = red.total
            for kind, n in red.counts.items():
                self.redactions[kind] = self.redactions.get(kind, 0) + n
        stored = Answer(
            answer.unit,
            answer.location,
            answer.lang,
            answer.question,
            answer.scale,
            answer.answer,
            answer.role,
            text or None,
            redactions,
        )
        new_id = self.records.add(stored)
        self.stored += 1
        if text:
            self.kick()
        return new_id

    def kick(self) -> None:
        """Wake the theme worker (started on first use): it assigns every text still waiting."""
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="hymy-themes", daemon=True)
                self._worker.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                while self.themes.assign_pending():
                    pass
            except StoreError as exc:  # the database is away (or closed at shutdown): texts stay pending
                log.warning("assigning themes paused: %s", exc)
            except Exception:  # a theme failure never stops the form; texts stay pending and are retried
                log.exception("assigning themes failed; the texts stay pending")
