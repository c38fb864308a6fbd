"""The terminal's core: a press becomes a committed vote under the configuration on screen, then the agent is woken.

A terminal without any configuration has no question, so it refuses presses with
NotConfiguredError (the kiosk shows its "not placed yet" screen instead of buttons). A
configuration with ``unit: null`` is a placed question without a unit; its votes carry no unit.

New configurations arrive on the sync thread: ``check_config`` may refuse one (the fleet hears
"rejected" at once); once the agent has persisted it, ``offer_config`` queues it, and it takes
effect only when the UI calls ``apply_pending()`` between interactions, so an answer is always
recorded against the question the person actually saw.

``press``, ``config``, ``offer_config`` and ``apply_pending`` take one lock, so a press may come
from an input's own thread: it reads the configuration in force once, under the lock, and commits
under it, so a configuration applied meanwhile is never mixed into it.

A press is flagged ``misuse`` when it comes sooner than the configuration's interval after the
previous one (by the monotonic clock), and ``after_hours`` when the configuration's opening hours
say closed at the clock's wall time. Flags never refuse a press (SPEC 6.1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import protocol
from protocol import Vote

from .clock import Clock
from .errors import NotConfiguredError
from .hours import HoursError, is_open
from .store import VoteStore
from .strings import check_config

log = logging.getLogger(__name__)


class Waker(Protocol):
    """Anything that can be told a vote is waiting (the sync agent, or nothing when offline by design)."""

    def wake(self) -> None:
        """Send what is pending soon."""
        ...


class Terminal:
    """Presses in, committed votes out; keeps the configuration in force and the misuse pace."""

    def __init__(
        self,
        store: VoteStore,
        agent: Waker | None,
        clock: Clock,
        config: tuple[int, dict[str, Any]] | None = None,
    ) -> None:
        """``config`` is a factory default used only when the store holds none."""
        self.store = store
        self.agent = agent
        self.clock = clock
        self._lock = threading.Lock()
        stored = store.load_config()
        if stored is None and config is not None:
            protocol.validate_config_doc(config[1])
            stored = config
        self._config = stored
        self._pending: tuple[int, dict[str, Any]] | None = None
        last = store.last_vote()
        # A restart within the same boot keeps the pace; a new boot cannot compare mono readings.
        self._last_press: tuple[str, int] | None = None if last is None else (last.boot, last.mono)

    @property
    def config(self) -> tuple[int, dict[str, Any]] | None:
        """The configuration in force as (version, doc), or None for an unplaced terminal."""
        with self._lock:
            return self._config

    @property
    def placed(self) -> bool:
        """Whether the terminal has a question to ask."""
        return self.config is not None

    def check_config(self, version: int, doc: dict[str, Any]) -> str | None:
        """Say why this terminal cannot run a configuration, or None if it can (no side effects)."""
        return check_config(version, doc)

    def offer_config(self, version: int, doc: dict[str, Any]) -> None:
        """Take a checked and persisted configuration; it applies at the next pause between interactions."""
        with self._lock:
            self._pending = (version, doc)

    @property
    def pending(self) -> tuple[int, dict[str, Any]] | None:
        """The configuration offered but not yet applied, as (version, doc), or None."""
        with self._lock:
            return self._pending

    def apply_pending(self, version: int | None = None) -> bool:
        """Switch to a configuration offered earlier; the UI calls this between interactions.

        With ``version``, only that version is applied: the UI drew its screen from it, and a newer
        offer that arrived meanwhile waits for the next pause instead of replacing it unseen.
        """
        with self._lock:
            if self._pending is None or (version is not None and self._pending[0] != version):
                return False
            self._config, self._pending = self._pending, None
            return True

    def press(
        self,
        answer: int,
        lang: str | None = None,
        role: str | None = None,
        reason: str | None = None,
        flags: Iterable[str] = (),
        hold: bool = False,
    ) -> Vote:
        """Record one press durably, then wake the agent; the UI thanks the person only after this returns.

        ``hold=True`` is for a score the kiosk asks follow-up questions about (role, reason): the
        vote is committed now, so a power cut cannot lose it, but it is sent only once ``complete``
        adds the answers, or as it is after a restart. One vote carries score, role and reason.
        """
        with self._lock:
            if self._config is None:
                raise NotConfiguredError("this terminal has no configuration yet; it is not placed anywhere")
            version, doc = self._config
            lang = lang or doc["default_language"]
            if lang not in doc["languages"]:
                raise ValueError(f"language {lang!r} is not offered here; offered: {doc['languages']}")
            boot, mono = self.clock.boot_id(), self.clock.mono_ms()
            flagset = set(flags)
            interval_ms = float(protocol.setting(doc, "misuse_interval_s")) * 1000
            if (
                self._last_press is not None
                and self._last_press[0] == boot
                and mono - self._last_press[1] < interval_ms
            ):
                flagset.add("misuse")
            if self._after_hours(doc):
                flagset.add("after_hours")
            question = doc["question"]
            vote = self.store.record(
                question["id"],
                question["scale"],
                answer,
                lang,
                unit=doc["unit"],
                cfg=version,
                flags=flagset,
                role=role,
                reason=reason,
                held=hold,
            )
            self._last_press = (boot, mono)
        if self.agent is not None and not hold:
            self.agent.wake()
        return vote

    def complete(self, seq: int, role: str | None = None, reason: str | None = None) -> Vote:
        """Add the follow-up answers to a vote pressed with ``hold=True`` and send it; see ``press``."""
        vote = self.store.release(seq, role, reason)
        if self.agent is not None:
            self.agent.wake()
        return vote

    def _after_hours(self, doc: dict[str, Any]) -> bool:
        """Whether the hours say closed at the clock's wall time; a press is never refused for it."""
        hours = protocol.setting(doc, "hours")
        if hours is None:
            return False
        when = datetime.fromtimestamp(self.clock.wall_ms() / 1000, tz=UTC)
        try:
            return not is_open(hours, when)
        except HoursError:  # only a configuration that skipped check_config gets here; record the press anyway
            log.warning("cannot tell opening hours (unknown time zone %r); press not flagged", hours.get("tz"))
            return False
