"""The organisation, terminal placements and retirements in the fleet database, with their audit trail.

Every change runs in one write transaction of the store, together with its audit entry and whatever
the store must do with it (a unit's time zone recounts its days; a placement moves the terminal's
unitless votes and gives it a configuration naming its new unit), so a change is whole or absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from protocol import ProtocolError
from protocol.topics import check_device_id

from ..org import PARENT_KIND, SERVICE_TYPES, UNIT, OrgError, OrgNode, Tree, check_code, check_oid
from . import audit
from .store import SqlFleetStore
from .tables import org_nodes, placements, retired_terminals, units

_N = org_nodes.c
_EDITABLE = ("name_fi", "name_sv", "name_en", "oid", "service_type", "hours", "misuse_interval_s", "target")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a terminal stood from ``since_ms`` until ``until_ms`` (None: still there)."""

    device: str
    unit: str | None
    location_id: int | None
    since_ms: int
    until_ms: int | None
    by: str


@dataclass(frozen=True, slots=True)
class Retirement:
    """A terminal taken out of service for good."""

    device: str
    at: int
    by: str
    reason: str


def _node(row: Any) -> OrgNode:
    return OrgNode(
        id=row.id,
        parent_id=row.parent_id,
        kind=row.kind,
        code=row.code,
        name_fi=row.name_fi,
        name_sv=row.name_sv,
        name_en=row.name_en,
        oid=row.oid,
        service_type=row.service_type,
        hours=None if row.hours is None else json.loads(row.hours),
        misuse_interval_s=row.misuse_interval_s,
        target=row.target,
        archived=bool(row.archived),
        updated_at=row.updated_at,
    )


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The editable fields, validated; raises OrgError naming the first bad one."""
    out = dict(fields)
    for lang in ("fi", "sv", "en"):
        name = str(out.get(f"name_{lang}") or "").strip()
        if len(name) > 200:
            raise OrgError(f"name_{lang}: at most 200 characters")
        out[f"name_{lang}"] = name
    if not out["name_fi"]:
        raise OrgError("name_fi: every node needs its Finnish name")
    out["oid"] = check_oid(out["oid"]) if out.get("oid") else None
    if out.get("service_type") and out["service_type"] not in SERVICE_TYPES:
        raise OrgError(f"service_type: unknown service type {out['service_type']!r}")
    out["service_type"] = out.get("service_type") or None
    interval = out.get("misuse_interval_s")
    if interval is not None and not 0 <= interval <= 3600:
        raise OrgError("misuse_interval_s: 0–3600 seconds")
    target = out.get("target")
    if target is not None and not -100 <= target <= 100:
        raise OrgError("target: a score from -100 to 100")
    return out


class Organisation:
    """Units and their hierarchy, terminal placement history and retirements, over one fleet store."""

    def __init__(self, store: SqlFleetStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        #: Gives a just-placed terminal its document (device, unit code, location id): set by
        #: ``Configurations`` (made on first use if nobody made one), which resolves assignments.
        self.configure: Callable[[str, str, int | None], bool] | None = None

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- the hierarchy -------------------------------------------------------------------------

    def tree(self) -> Tree:
        """Every node, archived ones included."""
        with self.store.reading() as conn:
            return Tree(_node(r) for r in conn.execute(sa.select(org_nodes)))

    def node(self, node_id: int) -> OrgNode | None:
        """One node, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(org_nodes).where(_N.id == node_id)).first()
        return None if row is None else _node(row)

    def add(
        self, actor: str, kind: str, parent_id: int | None, code: str, tz: str | None = None, **fields: Any
    ) -> OrgNode:
        """Add a node under ``parent_id``; a unit also gets its time zone. Raises OrgError."""
        code = check_code(code)
        values = _checked({k: fields.get(k) for k in _EDITABLE})
        with self.store.writing(zones=kind == UNIT) as conn:
            self._check_parent(conn, kind, parent_id)
            if conn.execute(sa.select(_N.id).where(_N.code == code)).first() is not None:
                raise OrgError(f"code: {code!r} is taken by another node")
            row = dict(values, kind=kind, parent_id=parent_id, code=code, updated_at=self._now())
            row["hours"] = None if values["hours"] is None else json.dumps(values["hours"])
            node_id = conn.execute(sa.insert(org_nodes).values(row).returning(_N.id)).scalar_one()
            if kind == UNIT:
                self.store.set_unit_zone(code, tz or self._zone(conn, code))
            node = _node(conn.execute(sa.select(org_nodes).where(_N.id == node_id)).one())
            audit.record(conn, self._now(), actor, f"{kind}.create", f"{kind}:{code}", None, self._shown(conn, node))
            return node

    def update(self, actor: str, node_id: int, tz: str | None = None, **fields: Any) -> OrgNode:
        """Change a node's names and settings (its code and kind stay); a unit may change its zone."""
        with self.store.writing(zones=tz is not None) as conn:
            before = self._get(conn, node_id)
            values = _checked({k: fields.get(k, getattr(before, k)) for k in _EDITABLE})
            values["hours"] = None if values["hours"] is None else json.dumps(values["hours"])
            conn.execute(sa.update(org_nodes).where(_N.id == node_id).values(dict(values, updated_at=self._now())))
            was = self._shown(conn, before)
            if before.kind == UNIT and tz is not None and tz != was.get("tz"):
                self.store.set_unit_zone(before.code, tz)
            after = self._get(conn, node_id)
            now = self._shown(conn, after)
            if now != was:
                audit.record(
                    conn, self._now(), actor, f"{before.kind}.update", f"{before.kind}:{before.code}", was, now
                )
            return after

    def set_archived(self, actor: str, node_id: int, archived: bool) -> OrgNode:
        """Archive a node (hidden from lists and placement; its history stays) or bring it back."""
        with self.store.writing() as conn:
            before = self._get(conn, node_id)
            if before.archived == archived:
                return before
            if archived:
                live = conn.execute(
                    sa.select(sa.func.count()).where(_N.parent_id == node_id, _N.archived == sa.false())
                ).scalar_one()
                if live:
                    raise OrgError("archive the nodes under it first")
            conn.execute(sa.update(org_nodes).where(_N.id == node_id).values(archived=archived, updated_at=self._now()))
            action = f"{before.kind}.{'archive' if archived else 'restore'}"
            audit.record(
                conn,
                self._now(),
                actor,
                action,
                f"{before.kind}:{before.code}",
                {"archived": before.archived},
                {"archived": archived},
            )
            return self._get(conn, node_id)

    def _get(self, conn: Connection, node_id: int) -> OrgNode:
        row = conn.execute(sa.select(org_nodes).where(_N.id == node_id)).first()
        if row is None:
            raise OrgError(f"no node {node_id}")
        return _node(row)

    def _check_parent(self, conn: Connection, kind: str, parent_id: int | None) -> None:
        if kind not in PARENT_KIND:
            raise OrgError(f"kind: unknown kind {kind!r}")
        want = PARENT_KIND[kind]
        if want is None:
            if parent_id is not None:
                raise OrgError("parent: a region is at the top and has no parent")
            return
        parent = None if parent_id is None else conn.execute(sa.select(org_nodes).where(_N.id == parent_id)).first()
        if parent is None or parent.kind != want:
            raise OrgError(f"parent: a {kind} belongs under a {want}")
        if parent.archived:
            raise OrgError("parent: that node is archived")

    def _zone(self, conn: Connection, code: str) -> str:
        from ..store import DEFAULT_TZ

        row = conn.execute(sa.select(units.c.tz).where(units.c.unit == code)).first()
        return DEFAULT_TZ if row is None else str(row[0])

    def _shown(self, conn: Connection, node: OrgNode) -> dict[str, Any]:
        out = node.fields()
        if node.kind == UNIT:
            out["tz"] = self._zone(conn, node.code)
        return out

    def zone(self, code: str) -> str:
        """A unit's time zone."""
        with self.store.reading() as conn:
            return self._zone(conn, code)

    # -- terminals -----------------------------------------------------------------------------

    def place(self, actor: str, device: str, unit_id: int, location_id: int | None = None) -> Placement:
        """Place (or move) a terminal in a unit and optionally a location in it.

        The votes it already sent keep the unit they were pressed for; the history gains a row; its
        desired configuration now names the new unit (its current one, else the unit's default), so
        that its next votes carry it once the terminal applies it.
        """
        try:
            check_device_id(device)
        except ProtocolError as exc:
            raise OrgError(str(exc)) from exc
        with self.store.writing(device, zones=True) as conn:
            unit = self._get(conn, unit_id)
            if unit.kind != UNIT or unit.archived:
                raise OrgError("unit: choose a unit that is not archived")
            if location_id is not None:
                loc = self._get(conn, location_id)
                if loc.parent_id != unit.id or loc.archived:
                    raise OrgError("location: choose a location of that unit")
            if self._retired(conn, device) is not None:
                raise OrgError(f"{device} is retired")
            current = self._open(conn, device)
            if current is not None and current.unit == unit.code and current.location_id == location_id:
                return current
            now = self._now()
            self.store.assign(device, unit.code)
            self._close(conn, device, now)
            conn.execute(
                sa.insert(placements).values(
                    device=device, unit=unit.code, location_id=location_id, since_ms=now, by=actor
                )
            )
            if self.configure is None:  # the one way a document is chosen: the configurations' resolution
                from .configs import Configurations

                Configurations(self.store, self)
            assert self.configure is not None
            self.configure(device, unit.code, location_id)
            before = None if current is None else {"unit": current.unit, "location_id": current.location_id}
            audit.record(
                conn,
                now,
                actor,
                "terminal.place",
                f"terminal:{device}",
                before,
                {"unit": unit.code, "location_id": location_id},
            )
            return Placement(device, unit.code, location_id, now, None, actor)

    def retire(self, actor: str, device: str, reason: str) -> Retirement:
        """Take a terminal out of service for good: unplaced, hidden from the registry, history kept."""
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise OrgError("reason: say in a few words why (at most 500 characters)")
        with self.store.writing(device, zones=True) as conn:
            if self.store.terminal(device) is None:
                raise OrgError(f"no terminal {device}")
            if self._retired(conn, device) is not None:
                raise OrgError(f"{device} is retired already")
            now = self._now()
            current = self._open(conn, device)
            self.store.assign(device, None)
            self._close(conn, device, now)
            conn.execute(sa.insert(retired_terminals).values(device=device, at=now, by=actor, reason=reason))
            before = None if current is None else {"unit": current.unit, "location_id": current.location_id}
            audit.record(conn, now, actor, "terminal.retire", f"terminal:{device}", before, {"reason": reason})
            return Retirement(device, now, actor, reason)

    def placements(self, device: str) -> list[Placement]:
        """The terminal's placement history, newest first."""
        with self.store.reading() as conn:
            rows = conn.execute(
                sa.select(placements).where(placements.c.device == device).order_by(placements.c.id.desc())
            )
            return [Placement(r.device, r.unit, r.location_id, r.since_ms, r.until_ms, r.by) for r in rows]

    def current_placements(self) -> dict[str, Placement]:
        """Every terminal's open placement."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(placements).where(placements.c.until_ms.is_(None)))
            return {r.device: Placement(r.device, r.unit, r.location_id, r.since_ms, r.until_ms, r.by) for r in rows}

    def retired(self) -> dict[str, Retirement]:
        """Every retired terminal."""
        with self.store.reading() as conn:
            return {
                r.device: Retirement(r.device, r.at, r.by, r.reason) for r in conn.execute(sa.select(retired_terminals))
            }

    def _retired(self, conn: Connection, device: str) -> Retirement | None:
        r = conn.execute(sa.select(retired_terminals).where(retired_terminals.c.device == device)).first()
        return None if r is None else Retirement(r.device, r.at, r.by, r.reason)

    def _open(self, conn: Connection, device: str) -> Placement | None:
        r = conn.execute(
            sa.select(placements).where(placements.c.device == device, placements.c.until_ms.is_(None))
        ).first()
        return None if r is None else Placement(r.device, r.unit, r.location_id, r.since_ms, r.until_ms, r.by)

    def _close(self, conn: Connection, device: str, now: int) -> None:
        conn.execute(
            sa.update(placements)
            .where(placements.c.device == device, placements.c.until_ms.is_(None))
            .values(until_ms=now)
        )

    # -- the audit log -------------------------------------------------------------------------

    def audit_entries(self, limit: int = 100, offset: int = 0, obj: str | None = None) -> list[audit.AuditEntry]:
        """The newest changes first."""
        with self.store.reading() as conn:
            return audit.entries(conn, limit, offset, obj)
