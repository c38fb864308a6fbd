"""The demo's organisation and its sign-in: North Karelia's wellbeing services county with the demo's
units, so the fleet web shows a real-looking hierarchy, and a demo account to open it with."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from fleet.accounts import AccountError
from fleet.content import default_config_doc
from fleet.db.accounts import Accounts
from fleet.db.configs import Configurations
from fleet.db.org import Organisation
from fleet.org import OrgNode
from fleet.store import FleetStore

from .patients import UnitProfile

DEMO_USER = "demo"
ACTOR = "demo"

#: (code, kind, parent code, Finnish, Swedish, English name, service type)
_NODES: tuple[tuple[str, str, str | None, str, str, str, str | None], ...] = (
    (
        "pohjois-karjala",
        "region",
        None,
        "Pohjois-Karjalan hyvinvointialue",
        "Norra Karelens välfärdsområde",
        "North Karelia wellbeing services county",
        None,
    ),
    (
        "pk-perusterveydenhuolto",
        "area",
        "pohjois-karjala",
        "Perusterveydenhuolto",
        "Primärvård",
        "Primary health care",
        None,
    ),
    (
        "pk-suunterveys",
        "area",
        "pohjois-karjala",
        "Suun terveydenhuolto",
        "Mun- och tandvård",
        "Oral health care",
        None,
    ),
    (
        "kontiolahti-tk-vastaanotto",
        "unit",
        "pk-perusterveydenhuolto",
        "Kontiolahden terveysaseman vastaanotto",
        "Kontiolax hälsostations mottagning",
        "Kontiolahti health centre — reception",
        "health_centre",
    ),
    (
        "lieksa-neuvola",
        "unit",
        "pk-perusterveydenhuolto",
        "Lieksan lastenneuvola",
        "Lieksa barnrådgivning",
        "Lieksa child health clinic",
        "child_health",
    ),
    (
        "joensuu-suunterveys",
        "unit",
        "pk-suunterveys",
        "Joensuun hammashoitola",
        "Joensuu tandklinik",
        "Joensuu oral health clinic",
        "oral_health",
    ),
)


def build_organisation(org: Organisation, units: Sequence[UnitProfile] = ()) -> dict[str, OrgNode]:
    """Add the demo's region, service areas and units that are not there yet; return them by code."""
    tree = org.tree()
    nodes = dict(tree.by_code)
    misuse = {u.unit: u.misuse_interval_s for u in units}
    for code, kind, parent, fi, sv, en, service in _NODES:
        if code in nodes:
            continue
        parent_id = None if parent is None else nodes[parent].id
        fields: dict[str, Any] = {
            "name_fi": fi,
            "name_sv": sv,
            "name_en": en,
            "service_type": service,
            "misuse_interval_s": misuse.get(code),
        }
        nodes[code] = org.add(ACTOR, kind, parent_id, code, **fields)
    return nodes


def place_terminals(
    store: FleetStore, devices: Sequence[str], units: Sequence[UnitProfile], feedback_url: str | None = None
) -> dict[str, str]:
    """Build the demo's county, give each unit its question as a published configuration set, and place
    the terminals in the units in turn (each gets its unit's document); return device → unit.

    ``feedback_url``: the open-feedback address the sets carry (the thank-you screen's QR code).
    Everything goes through the fleet web's own model (organisation, sets, assignments), so the demo
    shows in the browser exactly what it runs. Safe to repeat on a kept database.
    """
    from fleet.db.store import SqlFleetStore

    assert isinstance(store, SqlFleetStore)
    org = Organisation(store)
    configs = Configurations(store, org)
    nodes = build_organisation(org, units)
    by_name = {s.name: s for s in configs.sets()}
    for unit in units:
        question = unit.question or default_config_doc(None)["question"]
        name = f"{question['id']} ({question['scale']})"
        doc = default_config_doc(None)
        doc["question"] = question
        if feedback_url:  # "…/f/{unit}": every unit's terminals show their own form's QR code
            doc["feedback_url"] = feedback_url
        cs = by_name.get(name) or configs.create_set(ACTOR, name, "nps")
        by_name[name] = cs
        latest = configs.version(cs.id, cs.latest)
        if latest is None or latest.doc != doc:
            cs_version = configs.save_version(ACTOR, cs.id, doc).version
        else:
            cs_version = latest.version
        if configs.get_set(cs.id).current != cs_version:  # type: ignore[union-attr]
            configs.publish(ACTOR, cs.id, cs_version)
        if configs.assignments().get(f"node:{nodes[unit.unit].id}") != cs.id:
            configs.assign(ACTOR, f"node:{nodes[unit.unit].id}", cs.id)
    placed: dict[str, str] = {}
    for i, device in enumerate(devices):
        unit = units[i % len(units)]
        org.place(ACTOR, device, nodes[unit.unit].id)
        placed[device] = unit.unit
    return placed


def demo_account(accounts: Accounts) -> str:
    """Make (or renew) the demo's IT administrator account; returns its password, new each run."""
    password = "-".join(secrets.token_hex(2) for _ in range(4))
    existing = {a.username: a for a in accounts.all()}
    if DEMO_USER in existing:
        accounts.update(ACTOR, existing[DEMO_USER].id, password=password, disabled=False, role="admin")
    else:
        try:
            accounts.create(ACTOR, DEMO_USER, password, "admin", None, "en")
        except AccountError as exc:  # pragma: no cover - a name clash in a kept database
            raise RuntimeError(f"cannot make the demo account: {exc}") from exc
    return password


def unit_names(nodes: dict[str, OrgNode], units: Sequence[str]) -> dict[str, str]:
    """English names of the demo's units, for the terminal table."""
    return {u: nodes[u].name("en") for u in units if u in nodes}
