"""From a blank terminal to counted votes and back to locked out, every link real and over TLS.

The fleet web serves HTTPS (a certificate from the test's CA); the terminal reads an enrolment file
as IT writes it, enrols with the real endpoint, gets its login in the broker's dynamic-security
store, sends votes over TLS to the real ingest, and is revoked from the fleet. Then every log of
the run is searched for the secrets that passed through it.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from device.clock import SystemClock
from device.enrol import EnrolError, enrol
from device.store import VoteStore
from device.sync import SyncAgent
from fleet.db.store import SqlFleetStore
from fleet.ingest import Ingest
from fleet.web import create_app
from fleet.web.settings import Settings
from sim.brokers import SecureMosquitto
from sim.testca import TestCA
from tests.system.test_system_security import attempt
from tests.waiting import wait_until


class HttpsFleet:
    """The fleet web on a real store, served over HTTPS on a free loopback port in a thread."""

    def __init__(self, tmp_path: Path, broker: SecureMosquitto, ca: TestCA) -> None:
        admin_user, admin_password = broker.admin_login
        fleet_user, fleet_password = broker.fleet_login
        self.settings = Settings(
            db=str(tmp_path / "fleet.db"),
            secret_key="k" * 64,
            broker_host=broker.host,
            broker_port=broker.port,
            broker_username=fleet_user,
            broker_password=fleet_password,
            broker_ca_file=str(broker.ca_file),
            broker_accounts="dynsec",
            broker_admin_username=admin_user,
            broker_admin_password=admin_password,
            terminal_broker_host=broker.host,
            terminal_broker_port=broker.port,
            terminal_broker_tls=True,
        )
        self.app = create_app(self.settings)
        cert = ca.server(name="fleet")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert, cert.key)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, ssl_context=context)
        self.url = f"https://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def enrolment(self) -> Any:
        return self.app.extensions["hymy_enrolment"]

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.app.extensions["hymy_store"].close()


@pytest.fixture
def https_fleet(tmp_path: Path, secure_mosquitto: SecureMosquitto, test_ca: TestCA) -> Iterator[HttpsFleet]:
    fleet = HttpsFleet(tmp_path, secure_mosquitto, test_ca)
    yield fleet
    fleet.close()


def boot_file(path: Path, fleet_url: str, secret: str, ca_file: Path) -> Path:
    """The enrolment file as IT drops it on the boot partition."""
    path.write_text(f'fleet_url = "{fleet_url}"\nsecret = "{secret}"\nca_file = "{ca_file}"\n')
    return path


def test_a_blank_terminal_enrols_over_https_sends_votes_over_tls_and_is_locked_out_when_revoked(
    https_fleet: HttpsFleet,
    secure_mosquitto: SecureMosquitto,
    test_ca: TestCA,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, secret = https_fleet.enrolment.create_secret("it-admin", "Batch 1", valid_days=7, max_uses=2)
    boot = boot_file(tmp_path / "hymy-enrol.toml", https_fleet.url, secret, test_ca.ca_file)
    identity = enrol(boot, tmp_path / "data", hardware="10000000deadbeef", sleep=lambda s: None)
    assert identity.device_id == "hymy-deadbeef" and identity.username == identity.device_id
    assert (identity.host, identity.port, identity.tls) == (secure_mosquitto.host, secure_mosquitto.port, True)

    fleet_store = SqlFleetStore(https_fleet.settings.db)
    user, password = secure_mosquitto.fleet_login
    ingest = Ingest(
        fleet_store,
        secure_mosquitto.host,
        secure_mosquitto.port,
        username=user,
        password=password,
        ca_file=str(secure_mosquitto.ca_file),
    )
    ingest.start()
    store = VoteStore(tmp_path / "votes.db", identity.device_id, SystemClock())
    agent = SyncAgent(
        store,
        identity.device_id,
        identity.host,
        identity.port,
        SystemClock(),
        ack_timeout_s=0.5,
        max_backoff_s=1.0,
        fleet_grace_s=0.2,
        username=identity.username,
        password=identity.password,
        ca_file=identity.ca_file,
    )
    agent.start()
    try:
        for i in range(20):
            store.record("thl-nps", "nps11", i % 11, "fi", unit="unit-a")
        agent.wake()
        wait_until(lambda: store.depth() == 0, timeout=20, what="votes delivered over TLS")
        assert fleet_store.vote_count(identity.device_id) == 20

        https_fleet.enrolment.revoke(identity.device_id, "it-admin", "stolen from the waiting room")
        wait_until(lambda: not agent.connected, timeout=5, what="the revoked terminal disconnected")
        store.record("thl-nps", "nps11", 10, "fi", unit="unit-a")
        agent.wake()
        assert attempt(
            secure_mosquitto, identity.username, identity.password, identity.ca_file, identity.device_id
        ) == ("Not authorized")
        assert store.depth() == 1  # kept on the terminal, never counted
        assert fleet_store.vote_count(identity.device_id) == 20
    finally:
        agent.stop()
        store.close()
        ingest.stop()
        fleet_store.close()

    # The same secret again: the second of its two uses, then used up.
    enrol(boot, tmp_path / "data-2", hardware="10000000cafe0002", sleep=lambda s: None)
    with pytest.raises(EnrolError) as used_up:
        enrol(boot, tmp_path / "data-3", hardware="10000000cafe0003", sleep=lambda s: None)
    assert used_up.value.error == "secret_used_up"

    # No secret in any log of the run: ours, the fleet's, the broker's.
    secrets = {
        "enrolment secret": secret,
        "terminal password": identity.password,
        "fleet password": secure_mosquitto.fleet_login[1],
        "accounts password": secure_mosquitto.admin_login[1],
    }
    logs = {"python logging": caplog.text, "mosquitto": secure_mosquitto.log_path.read_text()}
    assert len(caplog.records) >= 5 and "hymy-deadbeef" in caplog.text  # the run was logged
    for what, value in secrets.items():
        for name, text in logs.items():
            assert value not in text, f"the {what} appears in the {name} log"
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the secret stayed in {path}"
