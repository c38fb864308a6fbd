"""Open-feedback answers in the fleet database: stored with their vote, read by unit and theme.

An answer is one ``feedback`` row; its score, when given, is also a vote (device ``web``, seq = the
row's id, channel ``web``) inserted in the same transaction and counted into the rollup, so the
unit's results take it under its own channel and on its own scale, never mixed with another. The
text arrives redacted (``fleet/redact.py``); nothing here sees the unredacted text or any address.

Themes are assigned after the answer is stored (a slow or absent theme service never loses an
answer): a text without a tone is pending. A staff correction replaces the themes and tone, is kept
(``corrected_by``), is never overwritten by a later automatic assignment, and teaches the built-in
method (``corrections``). The audit log records who corrected which text, never the text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..records import SYNCED
from ..store import DEFAULT_TZ
from ..themes.model import THEMES, TONES, Example
from . import audit
from .rollup import BUCKET_MS, Fact
from .store import SqlFleetStore
from .tables import feedback, feedback_themes, units, votes

_F = feedback.c
_T = feedback_themes.c

#: The channel of the form's answers in votes and results.
WEB = "web"
#: The device id the form's votes carry (their identity is (web, "", feedback id)).
WEB_DEVICE = "web"
STAFF = "staff"
#: The method of a labelled example text stored with its own labels (the demo's history).
EXAMPLE = "example"


@dataclass(frozen=True, slots=True)
class FeedbackText:
    """One text as staff read it."""

    id: int
    unit: str
    received: int  # ms
    lang: str
    scale: str | None
    answer: int | None
    role: str | None
    text: str
    redactions: int
    themes: tuple[str, ...]
    tone: str | None
    method: str | None
    corrected_by: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the form hands over: everything already checked, the text already redacted."""

    unit: str
    location: str | None
    lang: str
    question: str | None
    scale: str | None
    answer: int | None
    role: str | None
    text: str | None
    redactions: int = 0


def _ordered(themes: Iterable[str]) -> tuple[str, ...]:
    wanted = set(themes)
    unknown = wanted - set(THEMES)
    if unknown:
        raise ValueError(f"unknown themes: {sorted(unknown)[:3]}")
    return tuple(t for t in THEMES if t in wanted)


class FeedbackRecords:
    """The open-feedback answers of one fleet database."""

    def __init__(self, store: SqlFleetStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def add(self, answer: Answer, received_ms: int | None = None) -> int:
        """Store an answer (and its score as a vote) in one transaction; returns its id.
        ``received_ms``: when it arrived (the demo's history); default now."""
        now = self._now() if received_ms is None else received_ms
        with self.store.writing() as conn:
            new_id = conn.execute(
                sa.insert(feedback)
                .values(
                    unit=answer.unit,
                    location=answer.location,
                    received=now,
                    lang=answer.lang,
                    question=answer.question,
                    scale=answer.scale,
                    answer=answer.answer,
                    role=answer.role,
                    text=answer.text or None,
                    redactions=answer.redactions,
                )
                .returning(_F.id)
            ).scalar_one()
            if answer.answer is not None and answer.question and answer.scale:
                conn.execute(
                    sa.insert(votes).values(
                        device=WEB_DEVICE,
                        store="",
                        seq=new_id,
                        question=answer.question,
                        scale=answer.scale,
                        answer=answer.answer,
                        lang=answer.lang,
                        wall=now,
                        mono=now,
                        boot=WEB,
                        synced=True,
                        unit=answer.unit,
                        cfg=0,
                        flags=None,
                        misuse=False,
                        role=answer.role,
                        reason=None,
                        received=now,
                        best=now,
                        time_status=SYNCED,
                        channel=WEB,
                    )
                )
                fact: Fact = (
                    answer.unit,
                    "",
                    answer.question,
                    answer.scale,
                    now // BUCKET_MS,
                    answer.answer,
                    answer.role or "",
                    "",
                    False,
                    False,
                    False,
                    WEB,
                )
                self.store.count_votes(conn, fact)
        return int(new_id)

    # -- themes ----------------------------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[tuple[int, str, str]]:
        """Texts awaiting themes, oldest first: (id, lang, text)."""
        with self.store.reading() as conn:
            rows = conn.execute(
                sa.select(_F.id, _F.lang, _F.text)
                .where(_F.text.is_not(None), _F.tone.is_(None), _F.corrected_by.is_(None))
                .order_by(_F.id)
                .limit(limit)
            )
            return [(r.id, r.lang, r.text) for r in rows]

    def set_themes(self, text_id: int, themes: Iterable[str], tone: str, method: str) -> bool:
        """Record an automatic assignment; False when staff corrected the text meanwhile (theirs stays)."""
        ordered = _ordered(themes)
        if tone not in TONES:
            raise ValueError(f"unknown tone {tone[:20]!r}")
        with self.store.writing() as conn:
            done = conn.execute(
                sa.update(feedback)
                .where(_F.id == text_id, _F.corrected_by.is_(None), _F.text.is_not(None))
                .values(tone=tone, method=method)
            ).rowcount
            if not done:
                return False
            self._replace_themes(conn, text_id, ordered)
        return True

    def correct(self, actor: str, text_id: int, themes: Iterable[str], tone: str) -> None:
        """A person's themes and tone for a text: kept, audited, and learned from."""
        ordered = _ordered(themes)
        if tone not in TONES:
            raise ValueError(f"unknown tone {tone[:20]!r}")
        with self.store.writing() as conn:
            row = conn.execute(sa.select(_F.tone, _F.unit).where(_F.id == text_id, _F.text.is_not(None))).first()
            if row is None:
                raise LookupError(f"no text {text_id}")
            before = {"themes": list(self._themes(conn, [text_id]).get(text_id, ())), "tone": row.tone}
            conn.execute(
                sa.update(feedback)
                .where(_F.id == text_id)
                .values(tone=tone, method=STAFF, corrected_by=actor, corrected_at=self._now())
            )
            self._replace_themes(conn, text_id, ordered)
            after = {"themes": list(ordered), "tone": tone}
            audit.record(conn, self._now(), actor, "feedback.themes", f"feedback:{text_id}", before, after)

    def corrections(self) -> list[Example]:
        """Every staff-corrected text with its themes: what the built-in method learns from besides
        the shipped examples."""
        with self.store.reading() as conn:
            rows = conn.execute(
                sa.select(_F.id, _F.lang, _F.text, _F.tone)
                .where(_F.corrected_by.is_not(None), _F.text.is_not(None))
                .order_by(_F.corrected_at, _F.id)
            ).all()
            themes = self._themes(conn, [r.id for r in rows])
        return [Example(r.lang, r.text, themes.get(r.id, ()), r.tone) for r in rows]

    def correction_count(self) -> int:
        """How many texts staff corrected (the built-in method retrains when this changes)."""
        with self.store.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(_F.corrected_by.is_not(None))).scalar_one())

    @staticmethod
    def _replace_themes(conn: sa.Connection, text_id: int, themes: Sequence[str]) -> None:
        conn.execute(sa.delete(feedback_themes).where(_T.feedback_id == text_id))
        if themes:
            conn.execute(sa.insert(feedback_themes), [{"feedback_id": text_id, "theme": t} for t in themes])

    @staticmethod
    def _themes(conn: sa.Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        found: dict[int, set[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for r in conn.execute(sa.select(_T.feedback_id, _T.theme).where(_T.feedback_id.in_(chunk))):
                found.setdefault(r.feedback_id, set()).add(r.theme)
        return {i: _ordered(t) for i, t in found.items()}

    # -- reading ---------------------------------------------------------------------------------

    def texts(
        self,
        unit_codes: Collection[str],
        first: date,
        last: date,
        theme: str | None = None,
        tone: str | None = None,
        limit: int = 10_000,
    ) -> list[FeedbackText]:
        """The texts of ``unit_codes`` received on local days ``first``..``last``, newest first;
        ``theme`` and ``tone`` narrow them to one theme and one tone."""
        if not unit_codes:
            return []
        # A day earlier and later than the window in UTC: every zone's local day lies within.
        lo = int(datetime(first.year, first.month, first.day).timestamp() * 1000) - 2 * 86_400_000
        hi = int(datetime(last.year, last.month, last.day).timestamp() * 1000) + 3 * 86_400_000
        query = (
            sa.select(feedback)
            .where(_F.unit.in_(sorted(unit_codes)), _F.text.is_not(None), _F.received >= lo, _F.received < hi)
            .order_by(_F.received.desc(), _F.id.desc())
        )
        if tone is not None:
            query = query.where(_F.tone == tone)
        if theme is not None:
            query = query.where(_F.id.in_(sa.select(_T.feedback_id).where(_T.theme == theme)))
        with self.store.reading() as conn:
            rows = conn.execute(query).all()
            zones = dict(conn.execute(sa.select(units.c.unit, units.c.tz)).all())
            rows = [r for r in rows if first <= local_day(r.received, zones.get(r.unit)) <= last][:limit]
            themes = self._themes(conn, [r.id for r in rows])
        return [_text_of(r, themes.get(r.id, ())) for r in rows]

    def text(self, text_id: int) -> FeedbackText | None:
        """One text by id (the caller checks the person may see its unit)."""
        with self.store.reading() as conn:
            r = conn.execute(sa.select(feedback).where(_F.id == text_id, _F.text.is_not(None))).first()
            if r is None:
                return None
            themes = self._themes(conn, [r.id])
        return _text_of(r, themes.get(r.id, ()))

    def answer_count(self, unit_codes: Collection[str] | None = None) -> int:
        """Answers stored (with or without a text), for the metrics and the tests."""
        query = sa.select(sa.func.count()).select_from(feedback)
        if unit_codes is not None:
            query = query.where(_F.unit.in_(sorted(unit_codes)))
        with self.store.reading() as conn:
            return int(conn.execute(query).scalar_one())


def _text_of(r: Any, themes: tuple[str, ...]) -> FeedbackText:
    return FeedbackText(
        r.id,
        r.unit,
        r.received,
        r.lang,
        r.scale,
        r.answer,
        r.role,
        r.text,
        r.redactions,
        themes,
        r.tone,
        r.method,
        r.corrected_by,
    )


def local_day(received_ms: int, tz: str | None) -> date:
    """The local day an answer arrived on in its unit's zone."""
    return datetime.fromtimestamp(received_ms / 1000, ZoneInfo(tz or DEFAULT_TZ)).date()


def period_start(day: date, period: str) -> date:
    """The first day of ``day``'s ISO week (``week``) or month (``month``): the dashboard's buckets."""
    if period == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class ThemeSeries:
    """Themes over time: per period start, per theme, texts of each tone."""

    periods: list[date]
    counts: dict[str, dict[date, dict[str, int]]]  # theme -> period -> tone -> texts
    totals: dict[str, int]  # theme -> texts over the whole window


def theme_series(
    texts: Sequence[FeedbackText], first: date, last: date, period: str, zones: dict[str, str]
) -> ThemeSeries:
    """Count ``texts`` per period, theme and tone (a text with several themes counts under each)."""
    periods: list[date] = []
    day = period_start(first, period)
    while day <= last:
        periods.append(day)
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1) if period == "month" else day + timedelta(7)
    counts: dict[str, dict[date, dict[str, int]]] = {}
    totals: dict[str, int] = {}
    for t in texts:
        if t.tone is None:
            continue
        p = period_start(local_day(t.received, zones.get(t.unit)), period)
        for theme in t.themes:
            cell = counts.setdefault(theme, {}).setdefault(p, {})
            cell[t.tone] = cell.get(t.tone, 0) + 1
            totals[theme] = totals.get(theme, 0) + 1
    return ThemeSeries(periods, counts, totals)
