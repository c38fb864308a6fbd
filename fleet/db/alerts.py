"""Alerts in the fleet database: raised once per occurrence, acknowledged, resolved, and delivered.

``evaluate`` runs the rules of fleet.alerts on what the store knows now and, in one transaction,
opens an alert for each new finding, keeps the open ones that are still found, resolves the rest,
and queues a delivery for every route that covers the alert's part of the hierarchy (an outbox: the
worker sends them, with retries, so nothing is lost or sent twice across a restart).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alerts as rules
from ..org import Tree
from ..store import DEFAULT_TZ
from . import audit
from .org import Organisation
from .store import SqlFleetStore
from .tables import alert_deliveries, alert_routes, alerts

_A, _R, _D = alerts.c, alert_routes.c, alert_deliveries.c
EMAIL, WEBHOOK = "email", "webhook"
CHANNELS = (EMAIL, WEBHOOK)
#: Delivery attempts before giving up, and the wait after the first failure (doubling each time).
MAX_ATTEMPTS = 8
FIRST_RETRY_S = 30


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as people see it."""

    id: int
    kind: str
    subject: str
    node_id: int | None
    detail: dict[str, Any]
    opened_at: int
    last_seen_at: int
    resolved_at: int | None
    acked_at: int | None
    acked_by: str | None
    ack_comment: str | None

    @property
    def open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class Route:
    """Where the alerts of one part of the hierarchy go."""

    id: int
    node_id: int | None
    channel: str
    target: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send: an alert's event to a route."""

    id: int
    alert: Alert
    route: Route
    event: str
    attempts: int


@dataclass(frozen=True)
class Thresholds:
    """The rules' settings."""

    offline_minutes: int = 15
    silent_days: int = 3


def _alert(row: Any) -> Alert:
    return Alert(
        row.id,
        row.kind,
        row.subject,
        row.node_id,
        json.loads(row.detail),
        row.opened_at,
        row.last_seen_at,
        row.resolved_at,
        row.acked_at,
        row.acked_by,
        row.ack_comment,
    )


class AlertError(ValueError):
    """A route or acknowledgement that cannot be taken; the message says why, for the form."""


class Alerts:
    """The alerts of one fleet store and its organisation."""

    def __init__(self, store: SqlFleetStore, org: Organisation, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.org = org
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- finding and keeping -----------------------------------------------------------------------

    def findings(self, thresholds: Thresholds, already: set[rules.Key]) -> list[rules.Finding]:
        """Every condition that holds now."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        today = now.astimezone(ZoneInfo(DEFAULT_TZ)).date()
        tree = self.org.tree()
        terminals = [t for t in self.store.terminals() if t.device not in self.org.retired()]
        zones = self.store.unit_zones()
        # Every round reads this many days of every unit: the spike baseline and the target period,
        # and the silence rule's last opening days (older ones count as unanswered).
        first = today - timedelta(days=rules.LOOKBACK_DAYS)
        daily = self.store.daily_counts(first_day=first, last_day=today)
        placed = {t.unit for t in terminals if t.unit}
        yesterday = today - timedelta(days=1)
        return [
            *rules.offline(terminals, tree, zones, now, timedelta(minutes=thresholds.offline_minutes), already),
            *rules.rejected(terminals, tree),
            *rules.spikes(daily, tree, today),
            *rules.under_target(daily, tree, yesterday - timedelta(days=rules.TARGET_DAYS - 1), yesterday),
            *rules.silent(daily, tree, placed, today, thresholds.silent_days),
        ]

    def evaluate(self, thresholds: Thresholds = Thresholds()) -> tuple[list[Alert], list[Alert]]:
        """Open, keep and resolve alerts by what holds now; return (opened, resolved)."""
        already = {(a.kind, a.subject) for a in self.open_alerts()}
        found = {f.key: f for f in self.findings(thresholds, already)}
        now = self._now()
        tree = self.org.tree()
        opened: list[int] = []
        resolved: list[int] = []
        with self.store.writing() as conn:
            current = {
                (r.kind, r.subject): r.id for r in conn.execute(sa.select(alerts).where(_A.resolved_at.is_(None)))
            }
            for key, f in sorted(found.items()):
                if key in current:
                    conn.execute(
                        sa.update(alerts)
                        .where(_A.id == current[key])
                        .values(last_seen_at=now, detail=json.dumps(f.detail, sort_keys=True, default=str))
                    )
                    continue
                new_id = conn.execute(
                    sa.insert(alerts).values(
                        kind=f.kind,
                        subject=f.subject,
                        node_id=f.node_id,
                        detail=json.dumps(f.detail, sort_keys=True, default=str),
                        opened_at=now,
                        last_seen_at=now,
                    )
                ).inserted_primary_key
                assert new_id is not None
                opened.append(int(new_id[0]))
                self._queue(conn, tree, int(new_id[0]), f.node_id, "opened", now)
            for key, alert_id in sorted(current.items()):
                if key not in found:
                    conn.execute(sa.update(alerts).where(_A.id == alert_id).values(resolved_at=now))
                    resolved.append(alert_id)
                    node_id = conn.execute(sa.select(_A.node_id).where(_A.id == alert_id)).scalar()
                    self._queue(conn, tree, alert_id, node_id, "resolved", now)
        return [self._get(i) for i in opened], [self._get(i) for i in resolved]

    def _queue(self, conn: Connection, tree: Tree, alert_id: int, node_id: int | None, event: str, now: int) -> None:
        """A delivery for each route whose part of the hierarchy holds the alert's node."""
        for route in conn.execute(sa.select(alert_routes)):
            covers = route.node_id is None or (node_id is not None and tree.within(node_id, route.node_id))
            if covers:
                conn.execute(
                    sa.insert(alert_deliveries).values(
                        alert_id=alert_id, route_id=route.id, event=event, attempts=0, next_at=now
                    )
                )

    def _get(self, alert_id: int) -> Alert:
        with self.store.reading() as conn:
            return _alert(conn.execute(sa.select(alerts).where(_A.id == alert_id)).one())

    def get(self, alert_id: int) -> Alert | None:
        """One alert, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(alerts).where(_A.id == alert_id)).first()
        return None if row is None else _alert(row)

    def open_alerts(self) -> list[Alert]:
        """Every open alert, newest first."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(alerts).where(_A.resolved_at.is_(None)).order_by(_A.opened_at.desc()))
            return [_alert(r) for r in rows]

    def recent(self, days: int = 30) -> list[Alert]:
        """Open alerts and those resolved in the last ``days`` days, newest first."""
        since = self._now() - days * 86_400_000
        with self.store.reading() as conn:
            rows = conn.execute(
                sa.select(alerts)
                .where(sa.or_(_A.resolved_at.is_(None), _A.resolved_at >= since))
                .order_by(_A.opened_at.desc(), _A.id.desc())
            )
            return [_alert(r) for r in rows]

    def acknowledge(self, actor: str, alert_id: int, comment: str) -> Alert:
        """Mark an alert seen, with what is being done about it (kept, and in the audit log)."""
        comment = comment.strip()
        if not comment:
            raise AlertError("Say what is being done about it.")
        if len(comment) > 1000:
            raise AlertError("the comment is longer than 1,000 characters")
        now = self._now()
        with self.store.writing() as conn:
            row = conn.execute(sa.select(alerts).where(_A.id == alert_id)).first()
            if row is None:
                raise AlertError("no such alert")
            conn.execute(
                sa.update(alerts).where(_A.id == alert_id).values(acked_at=now, acked_by=actor, ack_comment=comment)
            )
            audit.record(conn, now, actor, "alert.acknowledge", f"alert:{alert_id}", None, {"comment": comment})
        return self._get(alert_id)

    # -- routes --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Every route, by part of the hierarchy and channel."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(alert_routes).order_by(_R.node_id, _R.channel, _R.target))
            return [Route(r.id, r.node_id, r.channel, r.target) for r in rows]

    def add_route(self, actor: str, node_id: int | None, channel: str, target: str) -> Route:
        """Send the alerts of ``node_id``'s part (None: all) to an e-mail address or a webhook URL."""
        target = target.strip()
        if channel == EMAIL:
            if not _email_ok(target):
                raise AlertError(f"{target[:80]!r} is not an e-mail address")
        elif channel == WEBHOOK:
            if not target.startswith(("https://", "http://")) or len(target) > 2000 or any(c.isspace() for c in target):
                raise AlertError("a webhook is an http:// or https:// address")
        else:
            raise AlertError(f"unknown channel {channel[:20]!r}")
        now = self._now()
        with self.store.writing() as conn:
            if node_id is not None and node_id not in self.org.tree().nodes:
                raise AlertError("no such part of the organisation")
            new_id = conn.execute(
                sa.insert(alert_routes).values(
                    node_id=node_id, channel=channel, target=target, created_by=actor, created_at=now
                )
            ).inserted_primary_key
            assert new_id is not None
            after = {"node_id": node_id, "channel": channel, "target": target}
            audit.record(conn, now, actor, "alert_route.create", f"alert_route:{new_id[0]}", None, after)
        return Route(int(new_id[0]), node_id, channel, target)

    def remove_route(self, actor: str, route_id: int) -> None:
        """Stop sending to a route (its queued deliveries are dropped)."""
        now = self._now()
        with self.store.writing() as conn:
            row = conn.execute(sa.select(alert_routes).where(_R.id == route_id)).first()
            if row is None:
                raise AlertError("no such route")
            conn.execute(sa.delete(alert_deliveries).where(_D.route_id == route_id))
            conn.execute(sa.delete(alert_routes).where(_R.id == route_id))
            before = {"node_id": row.node_id, "channel": row.channel, "target": row.target}
            audit.record(conn, now, actor, "alert_route.delete", f"alert_route:{route_id}", before, None)

    # -- the outbox ----------------------------------------------------------------------------

    def due(self, limit: int = 100) -> list[Delivery]:
        """Deliveries not yet sent nor given up whose time has come, oldest first."""
        now = self._now()
        query = (
            sa.select(alert_deliveries, alert_routes.c.node_id.label("r_node"), _R.channel, _R.target)
            .join(alert_routes, _R.id == _D.route_id)
            .where(_D.sent_at.is_(None), _D.failed_at.is_(None), _D.next_at <= now)
            .order_by(_D.next_at, _D.id)
            .limit(limit)
        )
        with self.store.reading() as conn:
            rows = conn.execute(query).fetchall()
        return [
            Delivery(r.id, self._get(r.alert_id), Route(r.route_id, r.r_node, r.channel, r.target), r.event, r.attempts)
            for r in rows
        ]

    def sent(self, delivery_id: int) -> None:
        """Mark a delivery sent."""
        with self.store.writing() as conn:
            conn.execute(
                sa.update(alert_deliveries)
                .where(_D.id == delivery_id)
                .values(sent_at=self._now(), attempts=_D.attempts + 1, last_error=None)
            )

    def failed(self, delivery_id: int, error: str) -> None:
        """Count a failed attempt: try again later (waiting twice as long each time), or give up."""
        now = self._now()
        with self.store.writing() as conn:
            attempts = int(conn.execute(sa.select(_D.attempts).where(_D.id == delivery_id)).scalar_one()) + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500]}
            if attempts >= MAX_ATTEMPTS:
                values["failed_at"] = now
            else:
                values["next_at"] = now + FIRST_RETRY_S * 1000 * 2 ** (attempts - 1)
            conn.execute(sa.update(alert_deliveries).where(_D.id == delivery_id).values(**values))

    def deliveries(self, alert_id: int) -> list[dict[str, Any]]:
        """The deliveries of one alert, for its page."""
        query = (
            sa.select(_D.event, _D.attempts, _D.sent_at, _D.failed_at, _D.last_error, _R.channel, _R.target)
            .join(alert_routes, _R.id == _D.route_id)
            .where(_D.alert_id == alert_id)
            .order_by(_D.id)
        )
        with self.store.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _email_ok(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return (
        bool(at)
        and 0 < len(local) <= 64
        and "." in domain
        and len(text) <= 254
        and not any(c.isspace() or c in "<>,;\"'" for c in text)
    )
