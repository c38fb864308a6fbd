"""Helpers for the fleet web's tests: an app on a real store, signed-in clients for each role, forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from fleet.db.accounts import Accounts
from fleet.db.org import Organisation
from fleet.db.store import SqlFleetStore
from fleet.org import OrgNode
from fleet.web import create_app
from fleet.web.settings import Settings
from protocol import VoteBatch

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on ``path``."""
    page = client.get(path)
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found is not None, f"no form with a CSRF token on {path} ({page.status_code})"
    return found.group(1)


def post_form(client: FlaskClient, path: str, data: dict[str, Any], form_page: str | None = None) -> Any:
    """POST ``data`` to ``path`` with the token of the form shown on ``form_page`` (default: ``path``)."""
    return client.post(path, data=dict(data, csrf_token=csrf(client, form_page or path)))


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the login form."""
    return post_form(client, "/login", {"username": username, "password": password})


@dataclass
class Fleet:
    """A fleet web on a real store, with an organisation and one account per role."""

    app: Flask
    store: SqlFleetStore
    org: Organisation
    accounts: Accounts
    region: OrgNode
    area: OrgNode
    other_area: OrgNode
    unit: OrgNode
    other_unit: OrgNode

    def client(self, role: str | None = None) -> FlaskClient:
        """A client signed in as ``role`` (admin; manager or viewer of ``area``), or anonymous (None)."""
        c = self.app.test_client()
        c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # the accounts' language too; Finnish is the default
        if role is not None:
            response = sign_in(c, role)
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return c


def build_fleet(store: SqlFleetStore, **settings: Any) -> Fleet:
    """An app with a region, two service areas with a unit each, and accounts admin, manager, viewer."""
    app = create_app(Settings(db="unused", secure_cookies=False, secret_key="test", **settings), store=store)
    app.config["TESTING"] = True
    org: Organisation = app.extensions["hymy_org"]
    accounts: Accounts = app.extensions["hymy_accounts"]
    region = org.add("test", "region", None, "pirkanmaa", name_fi="Pirkanmaa", name_sv="Birkaland", name_en="Pirkanmaa")
    area = org.add("test", "area", region.id, "phc", name_fi="Perusterveydenhuolto", name_en="Primary health care")
    other = org.add("test", "area", region.id, "oral", name_fi="Suun terveydenhuolto", name_en="Oral health care")
    unit = org.add(
        "test",
        "unit",
        area.id,
        "kaukajarvi",
        name_fi="Kaukajärven terveysasema",
        name_en="Kaukajärvi health centre",
        service_type="health_centre",
    )
    other_unit = org.add("test", "unit", other.id, "hervanta-oral", name_fi="Hervannan hammashoitola")
    accounts.create("test", "admin", PASSWORD, "admin", None, "en")
    accounts.create("test", "manager", PASSWORD, "manager", area.id, "en")
    accounts.create("test", "viewer", PASSWORD, "viewer", area.id, "en")
    return Fleet(app, store, org, accounts, region, area, other, unit, other_unit)


def store_votes(fleet: Fleet, device: str, unit: str, votes: list[tuple[int, int, dict[str, object]]]) -> None:
    """Store votes of ``device`` for ``unit``: (wall time, answer, extra fields) each."""
    from .conftest import make_vote  # conftest imports this module

    batch = tuple(
        make_vote(i + 1, answer, wall=wall + i * 1000, mono=(i + 1) * 1000, unit=unit, **extra)  # type: ignore[arg-type]
        for i, (wall, answer, extra) in enumerate(votes)
    )
    fleet.store.add_vote_batches([VoteBatch(device, 1, batch)], max(v.wall for v in batch) + 60_000)


class FakeAccounts:
    """A broker account store in memory (``logins``: device → (password, enabled)), failing on demand."""

    def __init__(self) -> None:
        self.logins: dict[str, tuple[str, bool]] = {}
        self.failing = False

    def _up(self) -> None:
        from fleet.brokerauth import BrokerAccountsError

        if self.failing:
            raise BrokerAccountsError("the fake broker's account store is down")

    def add_terminal(self, device: str, password: str, *, enabled: bool = True) -> None:
        self._up()
        self.logins[device] = (password, enabled)

    def enable_terminal(self, device: str, enabled: bool = True) -> None:
        self._up()
        if device in self.logins:
            self.logins[device] = (self.logins[device][0], enabled)

    def remove_terminal(self, device: str) -> None:
        self._up()
        self.logins.pop(device, None)

    def describe(self) -> str:
        return "fake accounts"


def fake_accounts(fleet: Fleet) -> FakeAccounts:
    """Give the fleet web's enrolment a FakeAccounts, and return it."""
    fake = FakeAccounts()
    fleet.app.extensions["hymy_enrolment"].accounts = fake
    return fake
