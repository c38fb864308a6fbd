"""The demo's organisation and its sign-in: North Karelia's wellbeing services county with the demo's
units, so the fleet web shows a real-looking hierarchy, and a demo account to open it with."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from fleet.accounts import AccountError
from fleet.db.accounts import Accounts
from fleet.db.org import Organisation
from fleet.org import OrgNode

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


def build_organisation(org: Organisation) -> dict[str, OrgNode]:
    """Add the demo's region, service areas and units that are not there yet; return them by code."""
    tree = org.tree()
    nodes = dict(tree.by_code)
    for code, kind, parent, fi, sv, en, service in _NODES:
        if code in nodes:
            continue
        parent_id = None if parent is None else nodes[parent].id
        fields = {"name_fi": fi, "name_sv": sv, "name_en": en, "service_type": service}
        nodes[code] = org.add(ACTOR, kind, parent_id, code, **fields)
    return nodes


def place_in_organisation(org: Organisation, placed: dict[str, str], nodes: dict[str, OrgNode]) -> None:
    """Record each terminal's placement (its configuration names the unit already)."""
    for device, unit in sorted(placed.items()):
        if unit in nodes:
            org.place(ACTOR, device, nodes[unit].id)


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
