"""Enrolment, the fleet's side (fleet/enrolment.py over fleet/db/enrolment.py), on SQLite and PostgreSQL:
secrets refuse with the protocol's exact errors, uses are counted once even when terminals race,
approval, replacement, revocation, a failing broker account store, and nothing secret is kept or logged."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from device.enrol import load_enrol_file
from fleet.db import migrate
from fleet.db.engine import database_url
from fleet.db.org import Organisation
from fleet.db.store import SqlFleetStore
from fleet.db.tables import audit_log, enrolment_requests, enrolment_secrets, metadata
from fleet.enrolment import Enrolment, EnrolmentChangeError, device_from_hardware, enrol_file_text
from protocol import TerminalState
from protocol.enrolment import Broker, EnrolmentError, EnrolRequest, StatusRequest

from .conftest import NOON
from .web import FakeAccounts

BROKER = Broker("mqtt.example.fi", 8883, True)
DAY_S = 86_400


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOON / 1000

    def __call__(self) -> float:
        return self.now


def password() -> str:
    return secrets.token_urlsafe(32)


def service(store: SqlFleetStore, accounts: FakeAccounts, clock: Clock | None = None) -> Enrolment:
    return Enrolment(store, accounts, BROKER, clock=clock or Clock())


@pytest.fixture
def accounts() -> FakeAccounts:
    return FakeAccounts()


def refusal(call: object) -> str:
    """The protocol error a call raises."""
    assert callable(call)
    with pytest.raises(EnrolmentError) as caught:
        call()
    return caught.value.error


def test_a_terminal_enrols_with_a_device_id_from_its_serial_and_a_login_of_its_own(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    made, plain = enrolment.create_secret("it", "Batch 7", valid_days=14, max_uses=5)
    pw = password()
    answer = enrolment.enrol(EnrolRequest(plain, "10000000ABCD1234", pw, "hymy-1.0"))
    assert (answer.status, answer.device, answer.username) == ("enrolled", "hymy-abcd1234", "hymy-abcd1234")
    assert answer.broker == BROKER
    assert accounts.logins == {"hymy-abcd1234": (pw, True)}
    assert enrolment.status(StatusRequest(answer.request, pw)) == answer
    assert enrolment.records.secret(made.id).uses == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("hardware", "device"),
    [
        ("10000000abcd1234", "hymy-abcd1234"),
        ("DC:A6:32:12:34:56", "hymy-32123456"),
        ("0123456789abcdef0123456789abcdef", "hymy-89abcdef"),
        ("raspberrypi", None),
        ("abc123", None),
        ("1234567g", None),
    ],
)
def test_a_device_id_comes_from_the_serial_only_when_it_ends_in_8_hex_digits(hardware: str, device: str | None) -> None:
    assert device_from_hardware(hardware) == device


def test_a_serial_without_hex_digits_or_whose_id_is_taken_gets_a_random_device_id(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    _, plain = enrolment.create_secret("it", "Batch", valid_days=1)
    fleet_db.record_state(TerminalState("hymy-abcd1234", True, 1, NOON, "1.0"), NOON)  # a known terminal
    taken = enrolment.enrol(EnrolRequest(plain, "10000000abcd1234", password()))
    named = enrolment.enrol(EnrolRequest(plain, "raspberrypi", password()))
    ids = {taken.device, named.device}
    assert len(ids) == 2 and "hymy-abcd1234" not in ids
    assert all(d.startswith("hymy-") and len(d) == 13 for d in ids)


def test_unknown_expired_used_up_and_revoked_secrets_are_refused_with_their_exact_errors(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    clock = Clock()
    enrolment = service(fleet_db, accounts, clock)
    _, once = enrolment.create_secret("it", "One terminal", valid_days=30, max_uses=1)
    _, short = enrolment.create_secret("it", "A week", valid_days=7)
    withdrawn, revoked = enrolment.create_secret("it", "Withdrawn", valid_days=30)
    enrolment.revoke_secret("it", withdrawn.id)
    assert enrolment.enrol(EnrolRequest(once, "hw-1", password())).status == "enrolled"
    assert refusal(lambda: enrolment.enrol(EnrolRequest(once, "hw-2", password()))) == "secret_used_up"
    assert refusal(lambda: enrolment.enrol(EnrolRequest("x" * 32, "hw-3", password()))) == "secret_unknown"
    assert refusal(lambda: enrolment.enrol(EnrolRequest(revoked, "hw-4", password()))) == "secret_revoked"
    assert enrolment.enrol(EnrolRequest(short, "hw-5", password())).status == "enrolled"
    clock.now += 7 * DAY_S
    assert refusal(lambda: enrolment.enrol(EnrolRequest(short, "hw-6", password()))) == "secret_expired"
    assert enrolment.refusals == {"secret_used_up": 1, "secret_unknown": 1, "secret_revoked": 1, "secret_expired": 1}
    assert len(accounts.logins) == 2


def test_a_secret_that_requires_approval_leaves_the_terminal_pending_until_it_is_approved(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    _, plain = enrolment.create_secret("it", "Approved one by one", valid_days=14, require_approval=True)
    pw = password()
    answer = enrolment.enrol(EnrolRequest(plain, "10000000cafe0001", pw))
    assert answer.status == "pending"
    assert accounts.logins[answer.device] == (pw, False)  # the login exists, disabled
    assert enrolment.status(StatusRequest(answer.request, pw)).status == "pending"
    assert [r.id for r in enrolment.pending()] == [answer.request]
    enrolment.approve(answer.request, "it")
    assert accounts.logins[answer.device] == (pw, True)
    assert enrolment.status(StatusRequest(answer.request, pw)).status == "enrolled"
    assert enrolment.pending() == []
    with pytest.raises(EnrolmentChangeError):
        enrolment.refuse(answer.request, "it")  # decided already


def test_a_refused_terminal_loses_its_login_and_is_told_refused(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    _, plain = enrolment.create_secret("it", "Approved one by one", valid_days=14, require_approval=True)
    pw = password()
    answer = enrolment.enrol(EnrolRequest(plain, "10000000cafe0002", pw))
    enrolment.refuse(answer.request, "it")
    assert answer.device not in accounts.logins
    assert refusal(lambda: enrolment.status(StatusRequest(answer.request, pw))) == "refused"
    assert refusal(lambda: enrolment.status(StatusRequest(answer.request, password()))) == "unknown_request"
    assert refusal(lambda: enrolment.status(StatusRequest("r" * 32, pw))) == "unknown_request"
    assert refusal(lambda: enrolment.enrol(EnrolRequest(plain, "10000000cafe0002", pw))) == "refused"  # asking again


def test_a_replacement_secret_re_enrols_under_the_old_device_id_and_its_placement_continues(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    org = Organisation(fleet_db)
    region = org.add("it", "region", None, "pirkanmaa", name_fi="Pirkanmaa")
    area = org.add("it", "area", region.id, "phc", name_fi="Perusterveydenhuolto")
    unit = org.add("it", "unit", area.id, "kaukajarvi", name_fi="Kaukajärvi")
    enrolment = service(fleet_db, accounts)
    _, plain = enrolment.create_secret("it", "Batch", valid_days=14)
    old_pw = password()
    old = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", old_pw))
    placed = org.place("manager", old.device, unit.id)
    made, replacement = enrolment.replacement_secret("it", old.device)
    assert (made.max_uses, made.replaces, made.require_approval) == (1, old.device, False)
    new_pw = password()
    new = enrolment.enrol(EnrolRequest(replacement, "10000000bbbb0002", new_pw))
    assert new.device == old.device and new.status == "enrolled" and new.request != old.request
    assert accounts.logins == {old.device: (new_pw, True)}  # the old card's login is replaced
    assert refusal(lambda: enrolment.status(StatusRequest(old.request, old_pw))) == "refused"
    assert org.current_placements()[old.device] == placed  # the same placement goes on
    assert fleet_db.terminal(old.device).unit == "kaukajarvi"  # type: ignore[union-attr]
    assert refusal(lambda: enrolment.enrol(EnrolRequest(replacement, "10000000cccc0003", password()))) == (
        "secret_used_up"
    )


def test_a_retired_terminal_cannot_be_replaced(fleet_db: SqlFleetStore, accounts: FakeAccounts) -> None:
    enrolment = service(fleet_db, accounts)
    org = Organisation(fleet_db)
    _, plain = enrolment.create_secret("it", "Batch", valid_days=14)
    answer = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", password()))
    _, replacement = enrolment.replacement_secret("it", answer.device)
    fleet_db.record_state(TerminalState(answer.device, True, 1, NOON, "1.0"), NOON)
    org.retire("it", answer.device, "broken")
    assert refusal(lambda: enrolment.enrol(EnrolRequest(replacement, "hw-new", password()))) == "secret_revoked"
    with pytest.raises(EnrolmentChangeError, match="retired"):
        enrolment.replacement_secret("it", answer.device)


def test_revoking_a_terminal_deletes_its_login_and_is_audited(fleet_db: SqlFleetStore, accounts: FakeAccounts) -> None:
    enrolment = service(fleet_db, accounts)
    _, plain = enrolment.create_secret("it", "Batch", valid_days=14)
    pw = password()
    answer = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw))
    enrolment.revoke(answer.device, "it", "stolen from the lobby")
    assert accounts.logins == {}
    assert enrolment.revoked(answer.device)
    assert refusal(lambda: enrolment.status(StatusRequest(answer.request, pw))) == "refused"
    with fleet_db.reading() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == "terminal.revoke")).all()
    assert [(r.actor, r.object, json.loads(r.after)) for r in rows] == [
        ("it", f"terminal:{answer.device}", {"reason": "stolen from the lobby"})
    ]


def race(services: list[Enrolment], secret: str, tag: str) -> list[str]:
    """Each service enrols a terminal with ``secret`` at the same moment; what each was answered."""
    barrier = threading.Barrier(len(services))
    outcomes: list[str] = []

    def enrol(svc: Enrolment, hw: str) -> None:
        barrier.wait()
        try:
            outcomes.append(svc.enrol(EnrolRequest(secret, hw, password())).status)
        except EnrolmentError as exc:
            outcomes.append(exc.error)

    threads = [threading.Thread(target=enrol, args=(svc, f"hw-{tag}-{i}")) for i, svc in enumerate(services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_processes_enrolling_at_once_with_a_one_use_secret_let_exactly_one_in(
    fleet_url: str, accounts: FakeAccounts
) -> None:
    """Two web processes (two stores, two connections) race for the last use: one wins, one is refused."""
    stores = [SqlFleetStore(fleet_url) for _ in range(2)]
    try:
        services = [service(s, accounts) for s in stores]
        for attempt in range(5):  # several rounds, so that the race really happens
            _, plain = services[0].create_secret("it", f"One terminal {attempt}", valid_days=1, max_uses=1)
            assert sorted(race(services, plain, str(attempt))) == ["enrolled", "secret_used_up"]
        with stores[0].reading() as conn:
            uses = conn.execute(sa.select(enrolment_secrets.c.uses)).scalars().all()
        assert uses == [1] * 5
    finally:
        for s in stores:
            s.close()


def test_when_the_broker_account_store_fails_the_terminal_is_told_unavailable_and_no_use_is_taken(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    made, plain = enrolment.create_secret("it", "One terminal", valid_days=1, max_uses=1)
    accounts.failing = True
    pw = password()
    with pytest.raises(EnrolmentError) as caught:
        enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw))
    assert (caught.value.error, caught.value.http_status) == ("unavailable", 503)
    assert enrolment.records.secret(made.id).uses == 0  # type: ignore[union-attr]
    with fleet_db.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(enrolment_requests)).scalar() == 0
    accounts.failing = False
    assert enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw)).status == "enrolled"  # the use is still there


def test_a_terminal_that_lost_the_answer_and_asks_again_gets_the_same_identity_without_another_use(
    fleet_db: SqlFleetStore, accounts: FakeAccounts
) -> None:
    enrolment = service(fleet_db, accounts)
    made, plain = enrolment.create_secret("it", "Two terminals", valid_days=1, max_uses=2)
    pw = password()
    first = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw))
    again = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw))
    assert again == first
    assert enrolment.records.secret(made.id).uses == 1  # type: ignore[union-attr]


def test_no_secret_or_password_is_kept_audited_or_logged(
    fleet_db: SqlFleetStore, accounts: FakeAccounts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    enrolment = service(fleet_db, accounts)
    made, plain = enrolment.create_secret("it", "Approved", valid_days=1, require_approval=True)
    pw = password()
    answer = enrolment.enrol(EnrolRequest(plain, "10000000aaaa0001", pw))
    with pytest.raises(EnrolmentError):
        enrolment.enrol(EnrolRequest(plain[:-1] + ("_" if plain[-1] != "_" else "-"), "hw-wrong", pw))  # a wrong secret
    enrolment.approve(answer.request, "it")
    enrolment.revoke(answer.device, "it", "test")
    enrolment.revoke_secret("it", made.id)
    with fleet_db.reading() as conn:
        tables = [conn.execute(sa.select(t)).all() for t in metadata.sorted_tables]
        actions = {r.action for r in conn.execute(sa.select(audit_log))}
    stored = repr(tables)
    assert plain not in stored and pw not in stored
    assert {"enrolment_secret.create", "terminal.enrol", "enrolment_request.approve", "terminal.revoke"} <= actions
    assert "enrolment_secret.revoke" in actions
    logged = caplog.text + repr([r.args for r in caplog.records])
    assert "enrolled" in logged and "refused" in logged
    assert plain not in logged and pw not in logged and plain[:-1] not in logged


def test_the_boot_file_for_a_secret_is_what_the_terminal_reads(tmp_path: Path) -> None:
    plain = secrets.token_urlsafe(24)
    path = tmp_path / "hymy-enrol.toml"
    path.write_text(enrol_file_text("https://hymy.example.fi/", plain, 'Batch "7"'), encoding="utf-8")
    read = load_enrol_file(path)
    assert (read.fleet_url, read.secret, read.ca_file, read.broker) == ("https://hymy.example.fi/", plain, None, None)


def test_the_enrolment_migration_applies_and_reverts_on_both_engines(fleet_url: str) -> None:
    SqlFleetStore(fleet_url).close()  # the newest schema, stamped
    engine = sa.create_engine(database_url(fleet_url))
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0008")
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            assert "enrolment_secrets" not in names and "enrolment_requests" not in names
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
        with engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()
