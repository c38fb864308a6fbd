"""``hymy fleet screenshots DIR``: every main page of the fleet web in Finnish, Swedish and English as PNGs.

For reviewing the web as people see it (layout, translations) without signing in by hand: on a copy
of a real database (``--db``), or on a small demo fleet made for the occasion.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from protocol import ConfigReport, Heartbeat, TerminalState, Vote, VoteBatch

from ..db.accounts import Accounts
from ..db.configs import Configurations
from ..db.org import Organisation
from ..db.store import SqlFleetStore
from ..org import UNIT
from ..store import open_store
from . import create_app
from .browser import LOGIN, take_screenshots
from .server import WebServer
from .settings import Settings

ACTOR = "screenshots"
LANGUAGES = ("fi", "sv", "en")
_MIN = 60_000


def fill_demo(store: SqlFleetStore) -> None:
    """A small fleet worth photographing: the demo county, terminals online, offline, lagging, unplaced."""
    from sim.demo_org import build_organisation

    org = Organisation(store)
    configs = Configurations(store, org)
    nodes = build_organisation(org)
    faces = configs.create_set(ACTOR, "Neuvolat: neljä kasvoa", "faces4")
    configs.publish(ACTOR, faces.id, 1)
    configs.assign(ACTOR, f"node:{nodes['lieksa-neuvola'].id}", faces.id)
    configs.create_set(ACTOR, "Terveysasemat: NPS ja jatkokysymys", "nps-followup")
    now = int(time.time() * 1000)
    # device, unit, online, minutes since last heard, applied configuration (None: the desired one), backlog
    fleet = (
        ("hymy-kontiolahti-1", "kontiolahti-tk-vastaanotto", True, 1, None, 0),
        ("hymy-lieksa-1", "lieksa-neuvola", True, 2, 0, 14),
        ("hymy-joensuu-1", "joensuu-suunterveys", False, 190, 0, 3),
        ("hymy-varasto-1", None, True, 1, 0, 0),
    )
    for device, unit, online, ago, applied, queue in fleet:
        seen = now - ago * _MIN
        store.record_state(TerminalState(device, True, 1, seen - 600 * _MIN, "1.4.2"), seen - 600 * _MIN)
        if unit is not None:
            org.place(ACTOR, device, nodes[unit].id)
        desired = store.get_config(device)
        cfg = (desired.version if desired else 0) if applied is None else applied
        hb = Heartbeat(device, seen, 36_000_000, "boot-1", True, 36_000, queue, 900 if queue else None, cfg, "1.4.2")
        store.record_heartbeat(hb, seen)
        if not online:
            store.record_state(TerminalState(device, False, 1, seen, "1.4.2"), seen)
        if unit is not None:
            votes = tuple(
                Vote(i, "thl-nps", "nps11", (i * 7) % 11, "fi", seen - i * _MIN, 36_000_000 - i * _MIN, "boot-1", True)
                for i in range(1, 25)
            )
            store.add_vote_batches([VoteBatch(device, 1, votes)], seen)
    from sim.history import fill_feedback
    from sim.patients import DEMO_UNITS

    fill_feedback(store, [u for u in DEMO_UNITS if u.unit == "kontiolahti-tk-vastaanotto"], 56)
    reason = "scale faces4 has 4 answers but this terminal has 5 buttons"
    store.record_config_report(ConfigReport("hymy-lieksa-1", 1, "rejected", reason), now)
    store.count_rejection("invalid", "hymy-joensuu-1", "vote 12: answer 14 is outside the scale nps11", now - _MIN)


def main_pages(store: SqlFleetStore) -> list[str]:
    """The pages people use most: overview, results and public pages of a region and a unit, organisation,
    a unit and its form, terminals, configurations, health, accounts."""
    tree = Organisation(store).tree()
    unit = next((n for n in tree.nodes.values() if n.kind == UNIT and not n.archived), None)
    terminal = next(iter(store.terminals()), None)
    region = next((n for n in tree.nodes.values() if n.parent_id is None and not n.archived), None)
    pages = ["/", "/org/"]
    if region is not None:
        pages += [f"/results/{region.id}", f"/public/{region.code}"]
    if unit is not None:
        pages += [f"/results/{unit.id}", f"/public/{unit.code}", f"/public/{unit.code}/widget"]
        pages += [f"/results/{unit.id}/report", f"/texts/{unit.id}", f"/f/{unit.code}", "/alerts/"]
        pages += [f"/org/{unit.id}", f"/org/{unit.id}/edit"]
    pages.append("/terminals")
    if terminal is not None:
        pages += [f"/terminals/{terminal.device}", f"/claim/{terminal.device}"]
    pages.append("/enrolment/")
    sets = Configurations(store, Organisation(store)).sets()
    pages += ["/configs/"] + [f"/configs/{s.id}" for s in sets[:1]] + ["/configs/assignments", "/org/import"]
    return pages + ["/health", "/accounts/", "/audit", LOGIN]


def write_screenshots(out_dir: Path, db: str | None = None, languages: Sequence[str] = LANGUAGES) -> list[Path]:
    """Serve the fleet web on loopback and shoot its main pages as a temporary administrator.

    The administrator is disabled afterwards (accounts are never deleted: the audit log names them).
    """
    with ExitStack() as stack:
        demo = db is None
        if db is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hymy-screenshots-")))
            db = str(scratch / "fleet.db")
        opened = stack.enter_context(open_store(db))
        if not isinstance(opened, SqlFleetStore):
            raise TypeError("screenshots need the SQL fleet store")
        if demo:
            fill_demo(opened)
        accounts = Accounts(opened)
        password = secrets.token_urlsafe(18)
        account = accounts.create(ACTOR, f"screenshots-{secrets.token_hex(4)}", password, "admin", None, "fi")
        stack.callback(accounts.update, ACTOR, account.id, disabled=True)
        settings = Settings(db=db, secret_key=secrets.token_hex(32), secure_cookies=False)
        server = WebServer(create_app(settings, store=opened), "127.0.0.1", 0)
        server.start()
        stack.callback(server.stop)
        written = take_screenshots(server.url, account.username, password, out_dir, main_pages(opened), languages)
    return written
