"""Enrolment, the terminal's side: a real HTTPS stand-in for the fleet speaking protocol/enrolment, files on disk."""

from __future__ import annotations

import http.server
import json
import logging
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.enrol import (
    STATE_NAME,
    EnrolError,
    EnrolFileError,
    Enroller,
    EnrolTlsError,
    Progress,
    enrol,
    load_enrol_file,
    main,
)
from device.enrolling import EnrolmentWait
from device.identity import CA_NAME, IDENTITY_NAME, PASSWORD_NAME, load_identity
from device.kiosk import wait_for_enrolment
from device.settings import BrokerSettings, NotEnrolled, SettingsError, load_settings
from device.ui import compose
from protocol import enrolment as wire
from tests.tlsca import TestCA
from tests.waiting import wait_until

SECRET = "batch7-Secret_0123456789abcdef"
DEVICE = "term-0042"
REQUEST = "req-0123456789abcd00"
HARDWARE = "10000000abcdef01"


class FakeEnrolFleet:
    """The fleet's enrolment endpoints over real HTTPS: answers by the contract, records every request.

    ``pending_polls`` status requests stay pending before the answer is enrolled; ``refusal`` refuses
    every request; ``rate_limited`` and ``unavailable`` refuse that many requests first; ``drops``
    hangs up on that many requests first. The same password re-sent gets the same request (as a
    fleet that dedupes a terminal's retries).
    """

    def __init__(self, cert: Any | None, secret: str = SECRET, pending_polls: int = 0) -> None:
        self.secret = secret
        self.pending_polls = pending_polls
        self.approve_at_once = pending_polls == 0
        self.refusal: wire.EnrolmentError | None = None
        self.rate_limited = 0
        self.retry_after: int | None = 17
        self.unavailable = 0
        self.drops = 0
        self.requests: list[tuple[str, Any]] = []
        self.passwords: dict[str, str] = {}  # request id -> password
        self.tls = True
        self.broker = wire.Broker("mqtt.fleet.test", 8883, True)
        self.lock = threading.Lock()
        fleet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fleet.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        scheme = "http"
        if cert is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert.cert, cert.key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def _send(self, h: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        path = h.path.lstrip("/")
        try:
            req: Any = wire.decode_enrol(body) if path == wire.ENROL_PATH else wire.decode_status(body)
        except wire.EnrolmentError as exc:
            self._send(h, exc.http_status, wire.encode_error(exc))
            return
        with self.lock:
            self.requests.append((path, req))
            if self.drops:
                self.drops -= 1
                h.close_connection = True
                h.connection.close()
                return
            refusal = self.refusal
            answer: wire.EnrolAnswer | wire.EnrolmentError | None = None
            if self.rate_limited:
                self.rate_limited -= 1
                refusal = wire.EnrolmentError("rate_limited", "slow down", self.retry_after)
            elif self.unavailable:
                self.unavailable -= 1
                refusal = wire.EnrolmentError("unavailable", "account store away")
            if refusal is None:
                answer = self._answer(path, req)
                if isinstance(answer, wire.EnrolmentError):
                    refusal = answer
        if refusal is not None:
            self._send(h, refusal.http_status, wire.encode_error(refusal))
        elif isinstance(answer, wire.EnrolAnswer):
            self._send(h, 200, wire.encode_answer(answer))

    def _answer(self, path: str, req: Any) -> wire.EnrolAnswer | wire.EnrolmentError:
        if path == wire.ENROL_PATH:
            if req.secret != self.secret:
                return wire.EnrolmentError("secret_unknown", "no such secret")
            request = next((r for r, p in self.passwords.items() if p == req.password), None)
            if request is None:
                request = f"{REQUEST[:-2]}{len(self.passwords):02d}"
                self.passwords[request] = req.password
            status = wire.ENROLLED if self.approve_at_once else wire.PENDING
        else:
            if self.passwords.get(req.request) != req.password:
                return wire.EnrolmentError("unknown_request", "who are you")
            request = req.request
            if self.pending_polls > 0:
                self.pending_polls -= 1
            status = wire.PENDING if self.pending_polls > 0 else wire.ENROLLED
        return wire.EnrolAnswer(status, DEVICE, request, self.broker, poll_s=7)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    """The fleet's CA."""
    return TestCA(tmp_path / "ca")


@pytest.fixture
def fleet(ca: TestCA) -> Iterator[Callable[..., FakeEnrolFleet]]:
    """Factory for stand-in fleets over HTTPS with the CA's certificate (``tls=False``: plain http to 127.0.0.1)."""
    fleets: list[FakeEnrolFleet] = []

    def make(tls: bool = True, cert: Any = None, **kwargs: Any) -> FakeEnrolFleet:
        f = FakeEnrolFleet(cert or (ca.server() if tls else None), **kwargs)
        fleets.append(f)
        return f

    yield make
    for f in fleets:
        f.close()


def boot_file(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hymy-enrol.toml"
    path.write_text(text, encoding="utf-8")
    return path


def boot_for(tmp_path: Path, fleet: FakeEnrolFleet, ca: TestCA | None, extra: str = "") -> Path:
    """An enrolment file as IT writes it, with the CA copied beside it."""
    text = f'fleet_url = "{fleet.url}"\nsecret = "{SECRET}"\n'
    if ca is not None:
        (tmp_path / "boot").mkdir(exist_ok=True)
        (tmp_path / "boot" / "fleet-ca.pem").write_bytes(ca.ca_file.read_bytes())
        text += 'ca_file = "fleet-ca.pem"\n'
    return boot_file(tmp_path / "boot", text + extra)


class Sleeps:
    """A sleep that records and returns at once; ``stop_after`` raises to simulate a restart mid-wait."""

    class Restart(Exception):
        pass

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise Sleeps.Restart


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def assert_no_secret(directory: Path) -> None:
    for path in files_under(directory):
        assert SECRET.encode() not in path.read_bytes(), path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- enrolment ---------------------------------------------------------------------------------


def test_enrolled_at_once_writes_an_owner_only_identity_and_forgets_the_secret(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    f = fleet()
    data = tmp_path / "data"
    identity = enrol(boot_for(tmp_path, f, ca), data, hardware=HARDWARE, fw="hymy-test")
    assert f.paths() == [wire.ENROL_PATH]
    sent = f.requests[0][1]
    assert (sent.secret, sent.hardware, sent.fw) == (SECRET, HARDWARE, "hymy-test")
    assert (identity.device_id, identity.username, identity.password) == (DEVICE, DEVICE, sent.password)
    assert (identity.host, identity.port, identity.tls, identity.fleet_url) == ("mqtt.fleet.test", 8883, True, f.url)
    assert identity.claim_base == f.url + "claim/"
    assert identity.ca_file == data / CA_NAME and identity.ca_file.read_bytes() == ca.ca_file.read_bytes()
    assert mode(data) == 0o700
    assert sorted(p.name for p in files_under(data)) == sorted([IDENTITY_NAME, PASSWORD_NAME, CA_NAME])
    assert all(mode(p) == 0o600 for p in files_under(data))
    assert (data / PASSWORD_NAME).read_text().strip() == sent.password
    assert load_identity(data / IDENTITY_NAME) == identity
    assert_no_secret(data)
    assert SECRET not in caplog.text and sent.password not in caplog.text
    assert DEVICE in caplog.text  # it does say what happened


def test_pending_asks_again_every_poll_s_with_the_same_request_until_enrolled(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet(pending_polls=3)
    sleeps, seen = Sleeps(), list[Progress]()
    identity = enrol(
        boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE, sleep=sleeps, on_progress=seen.append
    )
    assert f.paths() == [wire.ENROL_PATH, wire.STATUS_PATH, wire.STATUS_PATH, wire.STATUS_PATH]
    assert sleeps.calls == [7, 7, 7]
    password = f.requests[0][1].password
    assert all((r.request, r.password) == (REQUEST, password) for _, r in f.requests[1:])
    assert identity.device_id == DEVICE and identity.password == password
    assert Progress("pending", HARDWARE, REQUEST, DEVICE) in seen and seen[-1].status == "enrolled"
    # Once the fleet has named the terminal, every step says so (the screen must not flip back to the
    # hardware id while the next status request is on its way).
    assert seen[0] == Progress("sending", HARDWARE) and all(p.device == DEVICE for p in seen[1:]), seen
    assert not (tmp_path / "data" / STATE_NAME).exists()


@pytest.mark.parametrize("error", ["secret_expired", "secret_used_up", "secret_unknown", "secret_revoked"])
def test_a_refused_secret_is_a_clear_error_and_writes_no_identity(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet], error: str
) -> None:
    f = fleet()
    f.refusal = wire.EnrolmentError(error, "says the fleet")
    data = tmp_path / "data"
    with pytest.raises(EnrolError) as info:
        enrol(boot_for(tmp_path, f, ca), data, hardware=HARDWARE, sleep=Sleeps(stop_after=1))
    assert info.value.error == error
    assert error in str(info.value) and "says the fleet" in str(info.value) and SECRET not in str(info.value)
    assert files_under(data) == []  # no identity, and no pending request left to resume


def test_a_refused_request_while_pending_is_a_clear_error(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet(pending_polls=5)
    sleeps = Sleeps()

    def refuse_later(seconds: float) -> None:
        sleeps(seconds)
        f.refusal = wire.EnrolmentError("refused", "not ours")

    with pytest.raises(EnrolError, match="IT refused"):
        enrol(boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE, sleep=refuse_later)
    assert files_under(tmp_path / "data") == []


def test_rate_limited_waits_retry_after_and_asks_again(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    f.rate_limited = 2
    sleeps = Sleeps()
    identity = enrol(boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE, sleep=sleeps)
    assert sleeps.calls == [17, 17]
    assert f.paths() == [wire.ENROL_PATH] * 3
    assert len({r.password for _, r in f.requests}) == 1  # the same request each time
    assert identity.device_id == DEVICE


def test_network_errors_and_an_unavailable_fleet_are_retried_with_backoff(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    f.drops, f.unavailable = 2, 1
    sleeps = Sleeps()
    identity = enrol(boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE, sleep=sleeps)
    assert sleeps.calls == [5, 10, 20]
    assert len(f.requests) == 4 and len({r.password for _, r in f.requests}) == 1
    assert identity.device_id == DEVICE


def test_an_unreachable_fleet_is_retried(tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]) -> None:
    f = fleet()
    f.close()  # nothing listens on its port any more
    with pytest.raises(Sleeps.Restart):
        enrol(boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE, sleep=Sleeps(stop_after=3))
    assert not (tmp_path / "data" / IDENTITY_NAME).exists()


@pytest.mark.parametrize("case", ["stranger CA", "wrong host name", "system store"])
def test_a_fleet_certificate_that_does_not_verify_sends_nothing(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet], case: str
) -> None:
    if case == "stranger CA":
        f, trusted = fleet(), TestCA(tmp_path / "stranger", "Someone else's CA")
    elif case == "wrong host name":
        f, trusted = fleet(cert=ca.server("elsewhere", hosts=("elsewhere.example",))), ca
    else:
        f, trusted = fleet(), None  # the test CA is in no system store
    data = tmp_path / "data"
    with pytest.raises(EnrolTlsError, match="cannot verify the fleet's certificate"):
        enrol(boot_for(tmp_path, f, trusted), data, hardware=HARDWARE, sleep=Sleeps(stop_after=1))
    assert f.requests == []
    assert not (data / IDENTITY_NAME).exists()
    assert_no_secret(data)


def test_a_restart_while_pending_resumes_the_same_request_without_spending_the_secret_again(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet(pending_polls=2)
    boot, data = boot_for(tmp_path, f, ca), tmp_path / "data"
    with pytest.raises(Sleeps.Restart):
        enrol(boot, data, hardware=HARDWARE, sleep=Sleeps(stop_after=1))
    state = data / STATE_NAME
    assert mode(data) == 0o700 and mode(state) == 0o600
    saved = json.loads(state.read_text())
    assert saved["request"] == REQUEST and saved["password"] == f.requests[0][1].password
    assert_no_secret(data)

    identity = enrol(boot, data, hardware=HARDWARE, sleep=Sleeps())  # the terminal came back
    assert f.paths() == [wire.ENROL_PATH, wire.STATUS_PATH, wire.STATUS_PATH]
    assert identity.password == saved["password"]
    assert not state.exists()


def test_the_password_is_saved_before_anything_is_sent(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    f.drops = 1  # the first request never gets an answer: the terminal restarts meanwhile
    boot, data = boot_for(tmp_path, f, ca), tmp_path / "data"
    with pytest.raises(Sleeps.Restart):
        enrol(boot, data, hardware=HARDWARE, sleep=Sleeps(stop_after=1))
    saved = json.loads((data / STATE_NAME).read_text())
    assert saved["request"] is None and saved["password"] == f.requests[0][1].password
    enrol(boot, data, hardware=HARDWARE)
    assert [r.password for _, r in f.requests] == [saved["password"]] * 2  # the same request, sent again


def test_an_enrolled_terminal_does_not_ask_again(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    boot, data = boot_for(tmp_path, f, ca), tmp_path / "data"
    first = enrol(boot, data, hardware=HARDWARE)
    assert enrol(boot, data, hardware=HARDWARE) == first
    assert len(f.requests) == 1


def test_plain_http_to_localhost_an_inline_ca_and_a_broker_override(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    plain = fleet(tls=False)
    assert plain.url.startswith("http://127.0.0.1:")
    identity = enrol(boot_for(tmp_path / "a", plain, None, 'broker = "mqtt.local:18883"\n'), tmp_path / "da")
    assert (identity.host, identity.port, identity.ca_file) == ("mqtt.local", 18883, None)

    secure = fleet()
    pem = ca.ca_file.read_text()
    boot = boot_file(tmp_path / "b", f'fleet_url = "{secure.url}"\nsecret = "{SECRET}"\nca_pem = """{pem}"""\n')
    identity = enrol(boot, tmp_path / "db")
    assert identity.ca_file is not None and identity.ca_file.read_text() == pem


# -- the enrolment file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,key,words",
    [
        (f'secret = "{SECRET}"\n', "fleet_url", "is required"),
        ('fleet_url = "https://hymy.example/"\n', "secret", "is required"),
        (f'fleet_url = "http://hymy.example/"\nsecret = "{SECRET}"\n', "fleet_url", "must be https://"),
        (f'fleet_url = "ftp://hymy.example/"\nsecret = "{SECRET}"\n', "fleet_url", "must be an https://"),
        ('fleet_url = "https://hymy.example/"\nsecret = "short"\n', "secret", "16..128"),
        (f'fleet_url = "https://h.example/"\nsecret = "{SECRET}"\nca_file = "nope.pem"\n', "ca_file", "nope.pem"),
        (f'fleet_url = "https://h.example/"\nsecret = "{SECRET}"\nca_pem = "hello"\n', "ca_pem", "PEM"),
        (f'fleet_url = "https://h.example/"\nsecret = "{SECRET}"\nbroker = "mqtt"\n', "broker", "host:port"),
        (f'fleet_url = "https://h.example/"\nsecret = "{SECRET}"\nfleet = "x"\n', "fleet", "unknown key"),
        (f'fleet_url = "https://h.example/\nsecret = "{SECRET}"\n', "", "not valid TOML"),
    ],
)
def test_a_bad_enrolment_file_names_the_file_and_the_key_but_never_the_secret(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = boot_file(tmp_path, text)
    with pytest.raises(EnrolFileError) as info:
        load_enrol_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}") and words in message
    assert SECRET not in message


def test_a_missing_enrolment_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(EnrolFileError, match="no enrolment file"):
        load_enrol_file(tmp_path / "hymy-enrol.toml")


def test_the_enrolment_file_reads_every_key(tmp_path: Path, ca: TestCA) -> None:
    (tmp_path / "ca.pem").write_bytes(ca.ca_file.read_bytes())
    path = boot_file(
        tmp_path,
        f'fleet_url = "https://hymy.example/fleet"\nsecret = "{SECRET}"\n'
        'ca_file = "ca.pem"\nbroker = "mq.example:8883"\n',
    )
    boot = load_enrol_file(path)
    assert (boot.fleet_url, boot.secret, boot.ca_file, boot.broker) == (
        "https://hymy.example/fleet/",
        SECRET,
        tmp_path / "ca.pem",
        ("mq.example", 8883),
    )
    assert SECRET not in repr(boot)


# -- the command -------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["device.enrol", "python -m device", "hymy"])
def test_the_enrol_command_prints_the_device_id_and_removes_the_secret_from_the_file(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet], capsys: pytest.CaptureFixture[str], via: str
) -> None:
    f = fleet()
    boot, data = boot_for(tmp_path, f, ca), tmp_path / "data"
    args = ["--file", str(boot), "--data", str(data), "--remove-file"]
    if via == "device.enrol":
        assert main(args) == 0
    elif via == "python -m device":
        from device.__main__ import main as device_main

        assert device_main(["enrol", *args]) == 0
    else:
        from sim.cli import main as hymy_main

        assert hymy_main(["enrol", *args]) == 0
    assert capsys.readouterr().out.strip() == DEVICE
    left = boot.read_text()
    assert SECRET not in left and f.url in left
    assert load_identity(data / IDENTITY_NAME).device_id == DEVICE


def test_the_enrol_command_explains_a_refusal(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet], capsys: pytest.CaptureFixture[str]
) -> None:
    f = fleet()
    f.refusal = wire.EnrolmentError("secret_expired", "")
    boot = boot_for(tmp_path, f, ca)
    assert main(["--file", str(boot), "--data", str(tmp_path / "data"), "--remove-file"]) == 1
    err = capsys.readouterr().err
    assert "secret_expired" in err and "ask IT for a new enrolment file" in err and SECRET not in err
    assert SECRET in boot.read_text()  # kept: nothing was enrolled


# -- settings from the identity ------------------------------------------------------------------


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_take_the_device_id_broker_and_claim_address_from_the_identity(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    kiosk = settings_file(tmp_path, 'identity_file = "data/identity.toml"\nenrol_file = "boot/hymy-enrol.toml"\n')
    with pytest.raises(NotEnrolled) as info:
        load_settings(kiosk)
    assert info.value.identity_file == tmp_path / "data" / IDENTITY_NAME
    assert info.value.enrol_file == tmp_path / "boot" / "hymy-enrol.toml"
    assert "enrol first" in str(info.value)
    identity = enrol(boot_for(tmp_path, f, ca), tmp_path / "data", hardware=HARDWARE)
    settings = load_settings(kiosk)
    assert settings.device_id == DEVICE and settings.username == DEVICE
    assert settings.broker == BrokerSettings("mqtt.fleet.test", 8883, DEVICE, identity.password, identity.ca_file, True)
    assert settings.claim_base == f.url + "claim/"
    assert compose.unplaced_view(settings.device_id, settings.claim_base).qr_data == f"{f.url}claim/{DEVICE}"
    assert settings.identity_file == tmp_path / "data" / IDENTITY_NAME


def test_a_broker_table_beside_an_identity_is_refused(tmp_path: Path) -> None:
    kiosk = settings_file(tmp_path, 'identity_file = "identity.toml"\n[broker]\nhost = "x"\n')
    with pytest.raises(SettingsError, match="broker: comes from identity_file"):
        load_settings(kiosk)


def test_settings_need_a_device_id_or_an_identity_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="device_id: is required"):
        load_settings(settings_file(tmp_path, "database = 'v.db'\n"))


def test_broker_ca_file_is_relative_to_the_settings_and_turns_tls_on(tmp_path: Path, ca: TestCA) -> None:
    (tmp_path / "ca.pem").write_bytes(ca.ca_file.read_bytes())
    s = load_settings(settings_file(tmp_path, 'device_id = "kiosk-001"\n[broker]\nport = 8883\nca_file = "ca.pem"\n'))
    assert (s.broker.ca_file, s.broker.tls) == (tmp_path / "ca.pem", True)
    with pytest.raises(SettingsError, match=r"broker\.ca_file: .*nope\.pem does not exist"):
        load_settings(settings_file(tmp_path, 'device_id = "kiosk-001"\n[broker]\nca_file = "nope.pem"\n'))


# -- the kiosk while it enrols -------------------------------------------------------------------


def test_the_kiosk_shows_the_enrolling_notice_with_the_requests_qr_code_until_enrolled(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    from device.ui.display import Display

    f = fleet(pending_polls=1000)
    boot = boot_for(tmp_path, f, ca)
    display = Display((800, 480), dpi=133, fullscreen=False)
    identity_file = tmp_path / "data" / IDENTITY_NAME
    wait = EnrolmentWait(boot, identity_file, display, hardware=HARDWARE, sleep=lambda s: time.sleep(0.02))
    try:
        first = wait.view()
        assert first.kind == "enrolling" and first.device_id == HARDWARE and first.qr_data is None
        assert len(first.messages) == 3  # fi, sv, en
        wait.start()
        deadline = time.monotonic() + 10
        while wait.view().qr_data is None and time.monotonic() < deadline:
            wait.step(0.01)
        view = wait.view()
        assert view.qr_data == f"{f.url}enrolment/request/{REQUEST}" and view.device_id == DEVICE
        assert display.frame is not None and any(fit.text == DEVICE for fit in display.frame.fits)
        with f.lock:
            f.pending_polls = 1  # IT approves
        while not wait.done and time.monotonic() < deadline:
            wait.step(0.01)
        assert wait.identity is not None and wait.identity.device_id == DEVICE
        assert SECRET not in boot.read_text()  # the kiosk forgets the secret too
    finally:
        wait.stop()
        display.close()


def test_a_kiosk_started_before_enrolment_enrols_then_loads_its_settings(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet(pending_polls=2)
    boot_for(tmp_path, f, ca)
    kiosk = settings_file(
        tmp_path,
        'identity_file = "data/identity.toml"\nenrol_file = "boot/hymy-enrol.toml"\n'
        "[screen]\nsize = [800, 480]\nfullscreen = false\n",
    )
    with pytest.raises(NotEnrolled) as info:
        load_settings(kiosk)
    assert wait_for_enrolment(info.value, windowed=True, hardware=HARDWARE, sleep=lambda s: time.sleep(0.01))
    assert load_settings(kiosk).device_id == DEVICE


def test_a_bad_enrolment_file_keeps_the_kiosk_waiting_and_is_read_again(
    tmp_path: Path, ca: TestCA, fleet: Callable[..., FakeEnrolFleet]
) -> None:
    f = fleet()
    boot = boot_file(tmp_path / "boot", f'fleet_url = "{f.url}"\n')  # IT forgot the secret
    wait = EnrolmentWait(boot, tmp_path / "data" / IDENTITY_NAME, retry_s=0.05, hardware=HARDWARE)
    wait.start()
    try:
        wait_until(lambda: wait.problem is not None, what="the problem noticed")
        assert "secret: is required" in (wait.problem or "")
        boot_for(tmp_path, f, ca)  # IT fixes the file
        wait_until(lambda: wait.done, what="enrolled")
        assert wait.identity is not None and wait.identity.device_id == DEVICE
    finally:
        wait.stop()


def test_enroller_refuses_a_hardware_id_the_protocol_does_not_allow(tmp_path: Path, ca: TestCA) -> None:
    boot = load_enrol_file(boot_file(tmp_path, f'fleet_url = "https://h.example/"\nsecret = "{SECRET}"\n'))
    with pytest.raises(ValueError, match="hardware id"):
        Enroller(boot, tmp_path / "data", hardware="not allowed!")
