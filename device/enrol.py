"""Enrolment, the terminal's side (SPEC §13, protocol/enrolment.py): trade IT's enrolment secret for an identity.

IT drops an *enrolment file* on the boot partition (``/boot/firmware/hymy-enrol.toml``)::

    fleet_url = "https://hymy.hus.example/"   # https:// (http:// only to 127.0.0.1/localhost, for tests)
    secret = "…"                                # the batch's enrolment secret
    ca_file = "hymy-ca.pem"                     # optional, beside this file; or ca_pem = "-----BEGIN…"
    # broker = "mqtt.hus.example:8883"          # optional: overrides the broker the fleet names
    # [wifi] and [ssh]: optional, for the terminal image's first boot (device/firstboot.py)

The terminal chooses its broker password itself and records it, with its request, in a pending
state file (0600, in its 0700 data directory, written atomically) *before* it sends anything, so
a restart resumes the same request instead of spending another use of the secret. It asks over
HTTPS, the fleet's certificate and host name verified against the file's CA (else the system's
store); a ``pending`` answer is asked again every ``poll_s``; ``enrolled`` writes the identity
(device/identity.py) and removes the pending state. The secret is never written under the data
directory, and neither it nor the password is ever logged.

``hymy enrol [--file BOOTFILE] [--data DIR] [--remove-file]`` runs it to the end and prints the
device id.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from protocol import enrolment as wire

from .errors import DeviceError
from .identity import IDENTITY_NAME, Identity, ensure_private_dir, load_identity, write_identity, write_private

log = logging.getLogger(__name__)

DEFAULT_ENROL_FILE = Path("/boot/firmware/hymy-enrol.toml")
DEFAULT_DATA_DIR = Path("/var/lib/hymy")
STATE_NAME = "enrol-pending.json"
#: Tables of the enrolment file that are for the image's first boot, not enrolment (device/firstboot.py).
IMAGE_TABLES = ("wifi", "ssh")
#: Plain http:// is allowed only to these (a test's stand-in fleet on this machine).
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HTTP_TIMEOUT_S = 30.0
#: A fleet that cannot be reached is asked again after this long, doubling up to the maximum.
BACKOFF_MIN_S = 5.0
BACKOFF_MAX_S = 300.0
#: The fleet says rate_limited without saying how long: wait this long.
RATE_LIMIT_DEFAULT_S = 60.0
#: Refusals after which the pending request is dead: the next attempt starts afresh.
_FINAL = frozenset(
    {"secret_unknown", "secret_expired", "secret_used_up", "secret_revoked", "refused", "unknown_request"}
)
_ADVICE = {
    "secret_unknown": "the fleet does not know this enrolment secret (a typo, or another fleet's?)",
    "secret_expired": "the enrolment secret has expired: ask IT for a new enrolment file",
    "secret_used_up": "the enrolment secret has been used by as many terminals as it allows: ask IT for a new one",
    "secret_revoked": "IT has withdrawn the enrolment secret: ask IT for a new enrolment file",
    "refused": "IT refused this terminal's enrolment request",
    "unknown_request": "the fleet no longer knows this terminal's pending request: run enrolment again",
    "invalid": "the fleet did not accept the request (or sent an answer this terminal cannot read)",
}


class EnrolFileError(DeviceError):
    """The enrolment file is missing, not TOML, or has a bad key (the message names both, never the secret)."""


class EnrolError(DeviceError):
    """Enrolment cannot go on: the fleet refused (``error`` is the protocol's key) or could not be trusted."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class EnrolTlsError(EnrolError):
    """The fleet's certificate did not verify against the CA the enrolment file names: nothing was sent."""


class EnrolCancelled(EnrolError):
    """``Enroller.cancel`` was called (the kiosk is stopping)."""


class _Transient(Exception):
    """The fleet could not be reached or answered with a server error: ask again later."""


@dataclass(frozen=True, slots=True)
class EnrolFile:
    """What the enrolment file says: where the fleet is, the secret, whom to trust."""

    path: Path
    fleet_url: str
    secret: str = field(repr=False)
    ca_file: Path | None = None
    ca_pem: str | None = None
    #: Overrides the broker the fleet's answer names.
    broker: tuple[str, int] | None = None

    def ca_bytes(self) -> bytes | None:
        """The CA certificate(s) as PEM, or None for the system's store."""
        if self.ca_pem is not None:
            return self.ca_pem.encode()
        if self.ca_file is not None:
            return self.ca_file.read_bytes()
        return None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the fleet's certificate and host name against this file's CA."""
        if self.ca_pem is not None:
            return ssl.create_default_context(cadata=self.ca_pem)
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return ssl.create_default_context()


def _file_error(path: Path, key: str, message: str) -> EnrolFileError:
    return EnrolFileError(f"{path}: {key}: {message}")


def _fleet_url(path: Path, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _file_error(path, "fleet_url", "is required: the fleet's address, e.g. https://hymy.example/")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise _file_error(path, "fleet_url", f"is not an address: {exc}") from None
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise _file_error(path, "fleet_url", "must be https:// (http:// only to 127.0.0.1 or localhost)")
    if parts.scheme not in ("https", "http") or not host:
        raise _file_error(path, "fleet_url", f"must be an https:// address, got {value!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _file_error(path, "fleet_url", "must have no user, query or fragment")
    return value if value.endswith("/") else value + "/"


def _host_port(path: Path, value: Any) -> tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if sep and host and port.isdigit() and 1 <= int(port) <= 65535 and not any(c.isspace() for c in host):
            return host.strip("[]"), int(port)
    raise _file_error(path, "broker", f'must be "host:port", got {value!r}')


def load_enrol_file(path: Path | str) -> EnrolFile:
    """Read and check the enrolment file; EnrolFileError names the file and key (never the secret)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnrolFileError(f"{path}: no enrolment file here (IT puts one on the boot partition)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnrolFileError(f"{path}: cannot read the enrolment file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EnrolFileError(f"{path}: not valid TOML: {exc}") from None
    fleet_url = _fleet_url(path, data.pop("fleet_url", None))
    secret = data.pop("secret", None)
    if secret is None:
        raise _file_error(path, "secret", "is required: the enrolment secret IT made for this batch")
    if not isinstance(secret, str) or not wire.SECRET_RE.match(secret):
        raise _file_error(path, "secret", "must be 16..128 of A-Z, a-z, 0-9, '_' and '-' (check for a typo)")
    raw_ca_file, ca_pem = data.pop("ca_file", None), data.pop("ca_pem", None)
    if raw_ca_file is not None and ca_pem is not None:
        raise _file_error(path, "ca_pem", "give ca_file or ca_pem, not both")
    ca_file = None
    if raw_ca_file is not None:
        if not isinstance(raw_ca_file, str) or not raw_ca_file:
            raise _file_error(path, "ca_file", "must be a file name (relative to this file)")
        ca_file = path.parent / Path(raw_ca_file).expanduser()
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise _file_error(path, "ca_file", f"{ca_file} is not a readable PEM certificate: {exc}") from None
    if ca_pem is not None:
        if not isinstance(ca_pem, str) or "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise _file_error(path, "ca_pem", "must be a PEM certificate (-----BEGIN CERTIFICATE----- …)")
        try:
            ssl.create_default_context(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise _file_error(path, "ca_pem", f"is not a valid PEM certificate: {exc}") from None
    broker = None if "broker" not in data else _host_port(path, data.pop("broker"))
    for table in IMAGE_TABLES:  # the image's first boot reads these (device/firstboot.py); enrolment does not
        if not isinstance(data.pop(table, {}), dict):
            raise _file_error(path, table, "must be a table ([wifi] or [ssh] on a line of its own)")
    if data:
        raise _file_error(path, sorted(data)[0], "unknown key (a typo?)")
    return EnrolFile(path, fleet_url, secret, ca_file, ca_pem, broker)


def remove_secret(path: Path | str) -> None:
    """Take the secret out of the enrolment file (the rest stays, for the record); delete the file if that fails."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    kept = "".join(line for line in text.splitlines(keepends=True) if not re.match(r"\s*secret\s*=", line))
    try:
        ok = "secret" not in tomllib.loads(kept)
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        path.unlink()
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(kept, encoding="utf-8")
    os.replace(tmp, path)


def hardware_id() -> str:
    """This machine's serial number (a Raspberry Pi's, else one derived from the machine id, else the host name)."""
    candidates: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        candidates.append(Path("/sys/firmware/devicetree/base/serial-number").read_text(encoding="utf-8"))
    with contextlib.suppress(OSError):
        # machine-id(5) asks that the id itself never leaves the machine: send a hash made for us.
        machine = Path("/etc/machine-id").read_bytes().strip()
        if machine:
            candidates.append("m-" + hashlib.sha256(b"hymy-enrol:" + machine).hexdigest()[:24])
    candidates.append(socket.gethostname())
    for raw in candidates:
        value = re.sub(r"[^A-Za-z0-9_.:-]", "", raw)[:64]
        if value:
            return value
    return "unknown"


def firmware_version() -> str | None:
    """``hymy-<version>`` of the installed package, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"hymy-{version('hymy')}"[:64]
    except PackageNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class Progress:
    """Where enrolment is, for a screen: ``sending``, ``pending``, ``retrying`` or ``enrolled``."""

    status: str
    hardware: str
    request: str | None = None
    device: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The enrolment endpoints never redirect; following one could carry the secret elsewhere."""

    def redirect_request(self, *args: Any) -> None:
        return None


class Enroller:
    """One terminal's enrolment with one enrolment file, into one data directory; ``run`` goes on until done."""

    def __init__(
        self,
        boot: EnrolFile,
        data_dir: Path | str,
        *,
        identity_name: str = IDENTITY_NAME,
        hardware: str | None = None,
        fw: str | None = None,
        sleep: Callable[[float], object] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> None:
        """``sleep`` waits between attempts (default: a wait that ``cancel`` cuts short); tests pass their own."""
        self.boot = boot
        self.data_dir = Path(data_dir)
        self.identity_path = self.data_dir / identity_name
        self.state_path = self.data_dir / STATE_NAME
        self.hardware = hardware or hardware_id()
        if not wire.HARDWARE_RE.match(self.hardware):
            raise ValueError(f"hardware id {self.hardware!r} is not 1..64 of A-Z, a-z, 0-9 and _ . : -")
        self.fw = fw if fw is not None else firmware_version()
        self._cancel = threading.Event()
        self._sleep = sleep or self._cancel.wait
        self._on_progress = on_progress or (lambda p: None)
        self._timeout = timeout_s
        handlers: list[Any] = [_NoRedirect()]
        if urlsplit(boot.fleet_url).scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=boot.ssl_context()))
        self._opener = urllib.request.build_opener(*handlers)

    def cancel(self) -> None:
        """Make ``run`` stop at its next wait (raising EnrolCancelled); thread-safe."""
        self._cancel.set()

    # -- the pending state ----------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("enrolment: ignoring unreadable pending state %s: %s", self.state_path, exc)
            return None
        if not isinstance(state, dict) or not isinstance(state.get("password"), str):
            log.warning("enrolment: ignoring malformed pending state %s", self.state_path)
            return None
        if state.get("fleet_url") != self.boot.fleet_url or state.get("hardware") != self.hardware:
            log.warning("enrolment: the pending request was for another fleet or machine; starting afresh")
            return None
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        write_private(self.state_path, json.dumps(state).encode())

    def _forget_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    # -- talking to the fleet -------------------------------------------------------------------

    def _post(self, path: str, req: wire.EnrolRequest | wire.StatusRequest) -> wire.EnrolAnswer:
        url = self.boot.fleet_url + path
        request = urllib.request.Request(
            url,
            data=wire.encode_request(req),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as resp:
                body = resp.read(wire.MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(wire.MAX_BODY_BYTES + 1)
                err = wire.decode_error(body)
                if err.error == "invalid" and exc.code >= 500:
                    raise _Transient(f"HTTP {exc.code} from {url}") from None  # a proxy's error page
                if err.error == "rate_limited" and err.retry_after is None:
                    header = exc.headers.get("Retry-After", "")
                    if header.isdigit():
                        err.retry_after = int(header)
                raise err from None
        except urllib.error.URLError as exc:
            self._check_tls(url, exc.reason)
            raise _Transient(f"cannot reach {url}: {exc.reason}") from None
        except (http.client.HTTPException, OSError) as exc:
            self._check_tls(url, exc)
            raise _Transient(f"cannot reach {url}: {exc!r}") from None
        return wire.decode_answer(body)

    def _check_tls(self, url: str, reason: object) -> None:
        if isinstance(reason, ssl.SSLCertVerificationError):
            trust = "the system's CA store" if self.boot.ca_bytes() is None else "the CA in " + str(self.boot.path)
            raise EnrolTlsError(
                f"cannot verify the fleet's certificate at {url} with {trust}: {reason.verify_message} "
                "(is ca_file/ca_pem the fleet's CA, and is this terminal's clock right?)",
            )

    def _wait(self, seconds: float) -> None:
        if self._cancel.is_set():
            raise EnrolCancelled("enrolment cancelled")
        self._sleep(seconds)
        if self._cancel.is_set():
            raise EnrolCancelled("enrolment cancelled")

    # -- the whole exchange ----------------------------------------------------------------------

    def run(self) -> Identity:
        """Enrol (or resume a pending request) until enrolled; returns the identity written.

        Already enrolled (the identity file exists): returns it without asking the fleet.
        Raises EnrolError on a refusal or an untrusted fleet, EnrolCancelled after ``cancel``.
        """
        if self.identity_path.exists():
            return load_identity(self.identity_path)
        ensure_private_dir(self.data_dir)
        state = self._load_state()
        if state is None:
            state = {
                "v": 1,
                "fleet_url": self.boot.fleet_url,
                "hardware": self.hardware,
                "password": secrets.token_urlsafe(32),
                "request": None,
            }
            self._save_state(state)  # before anything is sent: a restart resumes, never re-spends the secret
        else:
            log.info("enrolment: resuming request %s", state.get("request") or "(not yet answered)")
        delay = BACKOFF_MIN_S
        device: str | None = None  # the id the fleet named, shown from its first answer on, every poll
        while True:
            request = state.get("request")
            self._on_progress(Progress("sending" if request is None else "pending", self.hardware, request, device))
            req: wire.EnrolRequest | wire.StatusRequest
            if request is None:
                req = wire.EnrolRequest(self.boot.secret, self.hardware, state["password"], self.fw)
                path = wire.ENROL_PATH
            else:
                req, path = wire.StatusRequest(request, state["password"]), wire.STATUS_PATH
            try:
                answer = self._post(path, req)
            except _Transient as exc:
                log.warning("enrolment: %s; asking again in %.0f s", exc, delay)
                self._on_progress(Progress("retrying", self.hardware, request, device))
                self._wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            except wire.EnrolmentError as exc:
                if exc.error in ("rate_limited", "unavailable"):
                    wait = float(exc.retry_after) if exc.retry_after is not None else None
                    if wait is None:
                        wait = RATE_LIMIT_DEFAULT_S if exc.error == "rate_limited" else delay
                        delay = min(delay * 2, BACKOFF_MAX_S)
                    log.warning("enrolment: the fleet says %s; asking again in %.0f s", exc.error, wait)
                    self._on_progress(Progress("retrying", self.hardware, request, device))
                    self._wait(wait)
                    continue
                if exc.error in _FINAL:
                    self._forget_state()
                detail = f" ({exc.detail})" if exc.detail else ""
                raise EnrolError(f"enrolment refused: {exc.error}: {_ADVICE[exc.error]}{detail}", exc.error) from None
            delay = BACKOFF_MIN_S
            device = answer.device
            if request != answer.request:
                state["request"] = answer.request
                self._save_state(state)
            if answer.status == wire.ENROLLED:
                identity = self._finish(answer, state["password"])
                self._on_progress(Progress("enrolled", self.hardware, answer.request, answer.device))
                return identity
            log.info("enrolment: %s pending (%s); next ask in %d s", answer.request, answer.device, answer.poll_s)
            self._on_progress(Progress("pending", self.hardware, answer.request, answer.device))
            self._wait(answer.poll_s)

    def _finish(self, answer: wire.EnrolAnswer, password: str) -> Identity:
        """Write the identity, then forget the pending request (and with it the last trace of the attempt)."""
        host, port = self.boot.broker or (answer.broker.host, answer.broker.port)
        if not answer.broker.tls:
            log.warning("enrolment: the fleet names a broker without TLS (%s:%d)", host, port)
        fleet, tls = self.boot.fleet_url, answer.broker.tls
        identity = Identity(answer.device, fleet, host, port, answer.username, password, tls=tls)
        written = write_identity(self.data_dir, identity, self.boot.ca_bytes(), self.identity_path.name)
        self._forget_state()
        log.info("enrolment: enrolled as %s (request %s)", answer.device, answer.request)
        return written


def enrol(enrol_file: Path | str, data_dir: Path | str, **kwargs: Any) -> Identity:
    """Read the enrolment file and enrol into ``data_dir`` (keyword arguments go to ``Enroller``)."""
    return Enroller(load_enrol_file(enrol_file), data_dir, **kwargs).run()


def build_parser() -> argparse.ArgumentParser:
    """``hymy enrol``'s command line."""
    p = argparse.ArgumentParser(
        prog="hymy enrol",
        description="Enrol this terminal with the fleet, using the enrolment file IT put on the boot partition; "
        "prints the device id.",
    )
    p.add_argument("--file", type=Path, default=DEFAULT_ENROL_FILE, help="the enrolment file (default: %(default)s)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="where the identity goes (default: %(default)s)")
    p.add_argument("--remove-file", action="store_true", help="take the secret out of the enrolment file once enrolled")
    p.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run enrolment to the end; 0 and the device id on stdout when enrolled."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)

    told: set[str | None] = set()

    def say(p: Progress) -> None:
        if p.status == "pending" and p.request not in told:
            told.add(p.request)
            print(f"pending: request {p.request} (device {p.device}) waits for IT's approval", file=sys.stderr)

    try:
        identity = enrol(args.file, args.data, on_progress=say)
    except (EnrolFileError, EnrolError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the data directory cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the pending request is kept; run again to resume it", file=sys.stderr)
        return 130
    if args.remove_file:
        try:
            remove_secret(args.file)
        except OSError as exc:
            print(f"warning: could not remove the secret from {args.file}: {exc}", file=sys.stderr)
    print(identity.device_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
