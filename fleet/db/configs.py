"""Configuration sets in the fleet database: versions, publishing, assignments, and what each terminal gets.

Publishing a version (or changing an assignment, or placing a terminal) recomputes the document of
every affected terminal; one whose document changed gets a new desired version (``set_config``),
which the ingest publishes to it (retained) within seconds, and the registry then shows the terminal
lagging until it reports the version applied or rejected.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from protocol import ProtocolError

from ..configs import TEMPLATES, Resolution, check_doc, resolve, terminal_doc, unit_feedback_url, unit_resolution
from ..content import default_config_doc
from ..errors import ConfigError
from ..org import OrgNode, Tree
from . import audit
from .org import Organisation, Placement
from .store import SqlFleetStore
from .tables import config_assignments, config_sets, config_versions

_S, _V, _AS = config_sets.c, config_versions.c, config_assignments.c


@dataclass(frozen=True, slots=True)
class ConfigSet:
    """A set with its newest saved and its current (newest published) version."""

    id: int
    name: str
    latest: int
    current: int | None  # None: nothing published yet


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One saved version."""

    set_id: int
    version: int
    doc: dict[str, Any]
    saved_at: int
    saved_by: str
    published_at: int | None
    published_by: str | None


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """What a terminal gets and why: the set and version (None: the shipped default) and the document."""

    resolution: Resolution
    set_name: str | None
    version: int | None
    doc: dict[str, Any] | None  # None: not placed (a terminal outside any unit gets nothing)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _View:
    tree: Tree
    assignments: dict[str, int]
    placements: dict[str, Placement]
    names: dict[int, str]
    current: dict[int, ConfigVersion]


def _version(row: Any) -> ConfigVersion:
    return ConfigVersion(
        row.set_id, row.version, json.loads(row.doc), row.saved_at, row.saved_by, row.published_at, row.published_by
    )


class Configurations:
    """Sets, versions and assignments over one store and its organisation."""

    def __init__(self, store: SqlFleetStore, org: Organisation, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.org = org
        self._clock = clock
        org.configure = self.configure_terminal

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- sets and versions ---------------------------------------------------------------------

    def create_set(self, actor: str, name: str, template: str) -> ConfigSet:
        """A new set whose version 1 (saved, not published) is one of the shipped templates."""
        name = name.strip()
        if not name or len(name) > 120:
            raise ConfigError("name: 1–120 characters")
        if template not in TEMPLATES:
            raise ConfigError(f"template: unknown template {template!r}")
        with self.store.writing() as conn:
            if conn.execute(sa.select(_S.id).where(_S.name == name)).first() is not None:
                raise ConfigError(f"name: a set called {name!r} exists")
            set_id = conn.execute(
                sa.insert(config_sets).values(name=name, created_at=self._now()).returning(_S.id)
            ).scalar_one()
            audit.record(conn, self._now(), actor, "config.create", f"config:{name}", None, {"template": template})
            self._save(conn, actor, set_id, TEMPLATES[template][1])
            return self._set(conn, set_id)

    def save_version(self, actor: str, set_id: int, doc: dict[str, Any]) -> ConfigVersion:
        """Save ``doc`` as the set's next version (not yet published); refuses an invalid document."""
        found = check_doc(dict(doc, unit=None))
        if found.error is not None:
            raise ConfigError(found.error)
        with self.store.writing() as conn:
            self._set(conn, set_id)
            return self._save(conn, actor, set_id, dict(doc, unit=None))

    def _save(self, conn: Connection, actor: str, set_id: int, doc: dict[str, Any]) -> ConfigVersion:
        latest = conn.execute(sa.select(sa.func.max(_V.version)).where(_V.set_id == set_id)).scalar() or 0
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        previous = conn.execute(sa.select(_V.doc).where(_V.set_id == set_id, _V.version == latest)).scalar()
        conn.execute(
            sa.insert(config_versions).values(
                set_id=set_id, version=latest + 1, doc=text, saved_at=self._now(), saved_by=actor
            )
        )
        name = self._set(conn, set_id).name
        audit.record(
            conn,
            self._now(),
            actor,
            "config.save",
            f"config:{name}",
            None if previous is None else {"version": latest, "doc": json.loads(previous)},
            {"version": latest + 1, "doc": doc},
        )
        return self._get_version(conn, set_id, latest + 1)

    def publish(self, actor: str, set_id: int, version: int) -> list[str]:
        """Make ``version`` the set's current one and give every affected terminal its new document;
        returns the terminals whose desired configuration changed."""
        with self.store.writing(zones=False) as conn:
            v = self._get_version(conn, set_id, version)
            found = check_doc(v.doc)
            if found.error is not None:
                raise ConfigError(found.error)
            conn.execute(
                sa.update(config_versions)
                .where(_V.set_id == set_id, _V.version == version)
                .values(published_at=self._now(), published_by=actor)
            )
            name = self._set(conn, set_id).name
            audit.record(conn, self._now(), actor, "config.publish", f"config:{name}", None, {"version": version})
            return self.sync()

    def sets(self) -> list[ConfigSet]:
        """Every set, by name."""
        with self.store.reading() as conn:
            ids = [r[0] for r in conn.execute(sa.select(_S.id).order_by(_S.name))]
            return [self._set(conn, i) for i in ids]

    def get_set(self, set_id: int) -> ConfigSet | None:
        """One set, or None."""
        with self.store.reading() as conn:
            try:
                return self._set(conn, set_id)
            except ConfigError:
                return None

    def versions(self, set_id: int) -> list[ConfigVersion]:
        """The set's versions, newest first."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(config_versions).where(_V.set_id == set_id).order_by(_V.version.desc()))
            return [_version(r) for r in rows]

    def version(self, set_id: int, version: int) -> ConfigVersion | None:
        """One version, or None."""
        with self.store.reading() as conn:
            try:
                return self._get_version(conn, set_id, version)
            except ConfigError:
                return None

    def texts(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """The wording of every question and follow-up reason any saved version has used, by id and
        language (the newest version's wording wins, and the shipped default's question is always
        there): the results pages name questions and reasons in the reader's language."""
        questions: dict[str, dict[str, str]] = {}
        reasons: dict[str, dict[str, str]] = {}
        docs = [default_config_doc()]
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(_V.doc).order_by(_V.saved_at, _V.set_id, _V.version))
            docs += [json.loads(r[0]) for r in rows]
        for doc in docs:
            q = doc.get("question") or {}
            if isinstance(q.get("id"), str) and isinstance(q.get("text"), dict):
                questions[q["id"]] = dict(q["text"])
            for branch in (doc.get("followup") or {}).get("branches", []):
                for choice in branch.get("choices", []):
                    if isinstance(choice.get("id"), str) and isinstance(choice.get("text"), dict):
                        reasons[choice["id"]] = dict(choice["text"])
        return questions, reasons

    def _set(self, conn: Connection, set_id: int) -> ConfigSet:
        row = conn.execute(sa.select(_S.id, _S.name).where(_S.id == set_id)).first()
        if row is None:
            raise ConfigError(f"no configuration set {set_id}")
        latest = conn.execute(sa.select(sa.func.max(_V.version)).where(_V.set_id == set_id)).scalar() or 0
        current = conn.execute(
            sa.select(sa.func.max(_V.version)).where(_V.set_id == set_id, _V.published_at.is_not(None))
        ).scalar()
        return ConfigSet(row.id, row.name, latest, current)

    def _get_version(self, conn: Connection, set_id: int, version: int) -> ConfigVersion:
        row = conn.execute(sa.select(config_versions).where(_V.set_id == set_id, _V.version == version)).first()
        if row is None:
            raise ConfigError(f"set {set_id} has no version {version}")
        return _version(row)

    # -- assignments ---------------------------------------------------------------------------

    def assignments(self) -> dict[str, int]:
        """Every assignment: target → set id."""
        with self.store.reading() as conn:
            return {t: s for t, s in conn.execute(sa.select(_AS.target, _AS.set_id))}

    def assign(self, actor: str, target: str, set_id: int | None) -> list[str]:
        """Assign a set to ``node:<id>`` or ``terminal:<device>`` (None removes it); returns the
        terminals whose desired configuration changed."""
        kind, _, ident = target.partition(":")
        if kind not in ("node", "terminal") or not ident:
            raise ConfigError(f"bad assignment target {target!r}")
        with self.store.writing() as conn:
            before = conn.execute(sa.select(_AS.set_id).where(_AS.target == target)).scalar()
            if set_id is not None:
                self._set(conn, set_id)
            conn.execute(sa.delete(config_assignments).where(_AS.target == target))
            if set_id is not None:
                conn.execute(
                    sa.insert(config_assignments).values(target=target, set_id=set_id, assigned_at=self._now())
                )
            if before != set_id:
                names = {s.id: s.name for s in self.sets()}
                audit.record(
                    conn,
                    self._now(),
                    actor,
                    "config.assign",
                    target,
                    None if before is None else {"set": names.get(before)},
                    None if set_id is None else {"set": names.get(set_id)},
                )
            return self.sync()

    # -- terminals -----------------------------------------------------------------------------

    def for_terminal(
        self,
        device: str,
        unit_code: str | None = None,
        location_id: int | None = None,
        placed: bool = False,
        view: _View | None = None,
    ) -> TerminalConfig:
        """What ``device`` gets and why (its current placement unless ``placed`` gives one)."""
        view = view or self._view()
        if not placed:
            status = self.store.terminal(device)
            unit_code = None if status is None else status.unit
            current = view.placements.get(device)
            location_id = current.location_id if current is not None else None
        unit = view.tree.by_code.get(unit_code or "")
        resolution = resolve(view.assignments, view.tree, device, unit, location_id)
        if unit_code is None:
            return TerminalConfig(resolution, None, None, None)
        base, name, version = default_config_doc(None), None, None
        if resolution.set_id is not None:
            name = view.names.get(resolution.set_id)
            current_version = view.current.get(resolution.set_id)
            if current_version is not None:  # else assigned but never published: the default meanwhile
                base, version = current_version.doc, current_version.version
        try:
            return TerminalConfig(resolution, name, version, terminal_doc(base, unit or _bare_unit(unit_code)))
        except ProtocolError as exc:  # a unit's own hours that no longer validate: shown, not pushed
            return TerminalConfig(resolution, name, version, None, str(exc))

    def _view(self) -> _View:
        """Everything resolution reads, read once (a publish resolves every terminal with it)."""
        sets = self.sets()
        current = {}
        for cs in sets:
            if cs.current is not None:
                found = self.version(cs.id, cs.current)
                if found is not None:
                    current[cs.id] = found
        return _View(
            self.org.tree(), self.assignments(), self.org.current_placements(), {cs.id: cs.name for cs in sets}, current
        )

    def unit_doc(self, unit: OrgNode, tree: Tree | None = None, address_code: str | None = None) -> dict[str, Any]:
        """The document the unit as a whole runs (the nearest assignment from the unit up; a
        terminal's or location's own may differ): what its poster and its feedback form follow.
        ``address_code``: the code ``{unit}`` in the feedback address becomes (a location's poster)."""
        resolution = unit_resolution(self.assignments(), tree or self.org.tree(), unit)
        base = default_config_doc(None)
        if resolution.set_id is not None:
            found = self.get_set(resolution.set_id)
            current = None if found is None or found.current is None else self.version(found.id, found.current)
            if current is not None:  # else assigned but never published: its terminals get the default
                base = current.doc
        try:
            doc = terminal_doc(base, unit)
            if address_code is not None and base.get("feedback_url"):
                doc["feedback_url"] = unit_feedback_url(base["feedback_url"], address_code)
            return doc
        except ProtocolError:  # the unit's own hours no longer validate: the set's document as it is
            doc = dict(base)
            doc["unit"] = unit.code
            return doc

    def configure_terminal(self, device: str, unit_code: str, location_id: int | None) -> bool:
        """Give a just-placed terminal its document (inside the placement's transaction)."""
        return self._apply(device, self.for_terminal(device, unit_code, location_id, placed=True))

    def sync(self, devices: Iterable[str] | None = None) -> list[str]:
        """Recompute the documents of placed, unretired terminals; returns those that changed."""
        retired = self.org.retired()
        changed = []
        wanted = None if devices is None else set(devices)
        view = self._view()
        for status in self.store.terminals():
            if status.device in retired or status.unit is None or (wanted is not None and status.device not in wanted):
                continue
            location = view.placements.get(status.device)
            got = self.for_terminal(
                status.device, status.unit, location.location_id if location else None, placed=True, view=view
            )
            if self._apply(status.device, got, status.applied_version):
                changed.append(status.device)
        return changed

    def _apply(self, device: str, wanted: TerminalConfig, applied: int | None = None) -> bool:
        """Make ``wanted`` the terminal's desired document if it differs; ``applied``: its applied
        version when the caller has read it already (a publish reads every terminal in one query)."""
        if wanted.doc is None:
            return False
        desired = self.store.get_config(device)
        if desired is not None and desired.doc == wanted.doc:
            return False
        if applied is None:
            status = self.store.terminal(device)
            applied = status.applied_version if status else 0
        version = max(desired.version if desired else 0, applied) + 1
        self.store.set_config(device, version, wanted.doc)
        return True


def _bare_unit(code: str) -> OrgNode:
    """A unit the organisation does not list (placed by the CLI): its code and nothing else."""
    return OrgNode(0, None, "unit", code, code, "", "", None, None, None, None, None, False, 0)
