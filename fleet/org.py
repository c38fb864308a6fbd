"""The organisation: region → service area → unit → location, as plain data with its rules.

A unit's ``code`` is the unit id its terminals' configurations and votes carry, so it never changes
once votes name it; names, service type and the rest may. The tree is small (a county has hundreds
of units, not millions), so it is read whole and walked in Python: one query answers "what may this
person see" for every page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol import ProtocolError, validate_config_doc
from protocol.codec import ID_RE
from protocol.configdoc import WEEKDAYS

from .content import default_config_doc

REGION, AREA, UNIT, LOCATION = "region", "area", "unit", "location"
KINDS = (REGION, AREA, UNIT, LOCATION)
#: The kind each kind's parent must be (a region has none).
PARENT_KIND: dict[str, str | None] = {REGION: None, AREA: REGION, UNIT: AREA, LOCATION: UNIT}

#: Service types, so that like units can be compared (the dashboards rank units of one type).
SERVICE_TYPES = (
    "health_centre",
    "child_health",
    "maternity",
    "school_health",
    "oral_health",
    "emergency",
    "outpatient",
    "ward",
    "mental_health",
    "substance_abuse",
    "rehabilitation",
    "laboratory",
    "home_care",
    "housing_services",
    "social_services",
    "family_services",
    "other",
)

_OID = re.compile(r"^1\.2\.246\.10\.([0-9]{7,8})\.10\.([0-9]{1,6})\Z")
_Y_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)
_HOURS_PART = re.compile(r"^([0-9]{1,2}[:.][0-9]{2})\s*[-–]\s*([0-9]{1,2}[:.][0-9]{2})$")


class OrgError(ValueError):
    """A value the organisation cannot take; the message says which and why, for the form to show."""


@dataclass(frozen=True, slots=True)
class OrgNode:
    """One node of the hierarchy."""

    id: int
    parent_id: int | None
    kind: str
    code: str
    name_fi: str
    name_sv: str
    name_en: str
    oid: str | None
    service_type: str | None
    hours: dict[str, Any] | None
    misuse_interval_s: float | None
    target: int | None
    archived: bool
    updated_at: int

    def name(self, lang: str = "fi") -> str:
        """The name in ``lang``, else in Finnish (the one name every node has)."""
        return {"sv": self.name_sv, "en": self.name_en}.get(lang) or self.name_fi

    def fields(self) -> dict[str, Any]:
        """The editable fields as plain data (the audit log's before and after)."""
        return {
            "parent_id": self.parent_id,
            "kind": self.kind,
            "code": self.code,
            "name_fi": self.name_fi,
            "name_sv": self.name_sv,
            "name_en": self.name_en,
            "oid": self.oid,
            "service_type": self.service_type,
            "hours": self.hours,
            "misuse_interval_s": self.misuse_interval_s,
            "target": self.target,
            "archived": self.archived,
        }


def y_tunnus_ok(digits: str) -> bool:
    """True when ``digits`` (7 digits and a check digit, no hyphen) is a valid Finnish business ID."""
    if not re.fullmatch(r"[0-9]{8}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:7], _Y_WEIGHTS, strict=True))
    rest = total % 11
    if rest == 1:
        return False
    return int(digits[7]) == (0 if rest == 0 else 11 - rest)


def check_oid(text: str) -> str:
    """The OID of a unit in the national SOTE organisation register, checked; raises OrgError.

    The form is ``1.2.246.10.<business ID, digits only>.10.<n>`` (THL; JHS 159): the business ID
    (Y-tunnus) with its hyphen and any leading zero removed, so its check digit can be verified.
    """
    oid = text.strip()
    m = _OID.match(oid)
    if m is None:
        raise OrgError(
            "an organisation OID looks like 1.2.246.10.2048198.10.1: 1.2.246.10, the business ID without"
            " its hyphen, 10, and the unit's number"
        )
    if not y_tunnus_ok(m.group(1).rjust(8, "0")):
        raise OrgError(f"the business ID inside the OID ({m.group(1)}) fails its check digit: a typo?")
    return oid


def check_code(code: str) -> str:
    """A node code: the id terminals and URLs carry (letters, digits, . _ : -; at most 64)."""
    code = code.strip()
    if not ID_RE.match(code):
        raise OrgError("a code is 1–64 letters, digits or . _ : - and starts with a letter or digit")
    return code


def parse_hours(weekly_text: Mapping[str, str], tz: str) -> dict[str, Any] | None:
    """Opening hours from one text per weekday ("08:00-16:00, 17:00-19:00"; empty: closed).

    All days empty means no hours are set (always open). The result is the configuration
    document's ``hours``, checked by the same validation the terminal runs.
    """
    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        text = (weekly_text.get(day) or "").strip()
        if not text:
            continue
        pairs = []
        for part in text.split(","):
            m = _HOURS_PART.match(part.strip())
            if m is None:
                raise OrgError(f"{day}: write opening hours as 08:00-16:00, several separated by commas")
            pairs.append([_hhmm(m.group(1)), _hhmm(m.group(2))])
        weekly[day] = pairs
    if not weekly:
        return None
    hours = {"tz": tz, "weekly": weekly}
    doc = default_config_doc()
    doc["hours"] = hours
    try:
        validate_config_doc(doc)
    except ProtocolError as exc:
        raise OrgError(exc.detail) from exc
    return hours


def hours_text(hours: Mapping[str, Any] | None) -> dict[str, str]:
    """The per-weekday texts that ``parse_hours`` reads, for a form."""
    weekly = (hours or {}).get("weekly", {})
    return {day: ", ".join(f"{a}-{b}" for a, b in weekly.get(day, [])) for day in WEEKDAYS}


def _hhmm(text: str) -> str:
    h, m = re.split(r"[:.]", text)
    return f"{int(h):02d}:{m}"


class Tree:
    """The hierarchy read whole: parents, children, paths and subtrees."""

    def __init__(self, nodes: Iterable[OrgNode]) -> None:
        self.nodes: dict[int, OrgNode] = {n.id: n for n in nodes}
        self._children: dict[int | None, list[OrgNode]] = {}
        for n in sorted(self.nodes.values(), key=lambda n: (n.name_fi.casefold(), n.id)):
            self._children.setdefault(n.parent_id, []).append(n)
        self.by_code: dict[str, OrgNode] = {n.code: n for n in self.nodes.values()}

    def children(self, node_id: int | None) -> list[OrgNode]:
        """The children of a node (None: the regions), by Finnish name."""
        return self._children.get(node_id, [])

    def path(self, node_id: int) -> list[OrgNode]:
        """The node and its ancestors, region first."""
        out: list[OrgNode] = []
        current: int | None = node_id
        while current is not None and current in self.nodes and len(out) < len(KINDS):
            out.append(self.nodes[current])
            current = self.nodes[current].parent_id
        return out[::-1]

    def subtree(self, node_id: int | None) -> list[OrgNode]:
        """The node and everything under it, depth first (None: the whole organisation)."""
        out: list[OrgNode] = []
        stack = list(reversed(self.children(None))) if node_id is None else [self.nodes[node_id]]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self.children(node.id)))
        return out

    def within(self, node_id: int, scope_id: int | None) -> bool:
        """True when ``node_id`` lies in the part of the tree under ``scope_id`` (None: everywhere)."""
        return scope_id is None or any(n.id == scope_id for n in self.path(node_id))

    def unit_codes(self, scope_id: int | None) -> set[str]:
        """The codes of every unit under ``scope_id`` (None: all units)."""
        return {n.code for n in self.subtree(scope_id) if n.kind == UNIT}

    def unit_of(self, node_id: int) -> OrgNode | None:
        """The unit a node belongs to (itself for a unit, its parent for a location)."""
        return next((n for n in self.path(node_id) if n.kind == UNIT), None)
