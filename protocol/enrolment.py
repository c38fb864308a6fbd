"""Enrolment: how a blank terminal gets its own identity and broker credentials (SPEC §13).

Claim-based, like ThingsBoard's device provisioning and AWS IoT's fleet provisioning by claim: IT
gives a batch of terminals one *enrolment secret* (the claim); each terminal trades it, once, over
HTTPS, for an identity of its own. The terminal chooses its broker password itself and sends it in
the request (as a device sends a CSR, keeping its key), so the fleet never stores or returns a
password: it hands it to the broker's account store and keeps only a hash to recognise the
terminal's later status requests. When IT requires approval the answer is ``pending`` and the
terminal asks again with its request id and password until it is ``enrolled`` or ``refused``.

Pure data and one JSON codec with strict validation, like the MQTT messages; no I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import topics

#: Paths under the fleet's web address (``https://fleet.example/`` + path).
ENROL_PATH = "enrol/v1"
STATUS_PATH = "enrol/v1/status"
VERSION = 1
MAX_BODY_BYTES = 4096

ENROLLED = "enrolled"
PENDING = "pending"
STATUSES = (ENROLLED, PENDING)

#: Refusals: the ``error`` of a 4xx/5xx answer, with its HTTP status.
ERRORS = {
    "invalid": 400,  # the request does not follow this contract (the detail says what)
    "secret_unknown": 403,  # no such enrolment secret (a typo, or another fleet's)
    "secret_expired": 403,  # the secret's time is up: IT makes a new one
    "secret_used_up": 403,  # as many terminals as the secret allows have enrolled with it
    "secret_revoked": 403,  # IT withdrew the secret
    "refused": 403,  # IT refused this terminal's request (or revoked the identity it got)
    "unknown_request": 404,  # a status request for a request id / password the fleet does not know
    "rate_limited": 429,  # too many attempts from this address: wait ``retry_after`` seconds
    "unavailable": 503,  # the fleet could not reach the broker's account store: try again later
}

SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}\Z")
HARDWARE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
PASSWORD_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}\Z")
REQUEST_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
FW_RE = re.compile(r"^[ -~]{1,64}\Z")


class EnrolmentError(ValueError):
    """A refusal, or a body that breaks the contract; ``error`` is a key of ERRORS."""

    def __init__(self, error: str, detail: str, retry_after: int | None = None) -> None:
        if error not in ERRORS:
            raise ValueError(f"unknown enrolment error {error!r}")
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        """The HTTP status this refusal travels with."""
        return ERRORS[self.error]


@dataclass(frozen=True, slots=True)
class EnrolRequest:
    """A terminal asks to join: the batch's secret, its hardware serial and the password it chose."""

    secret: str
    hardware: str
    password: str
    fw: str | None = None

    def __repr__(self) -> str:  # secrets never reach a log through a repr
        return f"EnrolRequest(hardware={self.hardware!r}, fw={self.fw!r})"


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A pending terminal asks again: its request id and the password it sent the first time."""

    request: str
    password: str

    def __repr__(self) -> str:
        return f"StatusRequest(request={self.request!r})"


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the enrolled terminal connects (its username is its device id)."""

    host: str
    port: int
    tls: bool


@dataclass(frozen=True, slots=True)
class EnrolAnswer:
    """The fleet's answer: the terminal's device id, and ``enrolled`` (connect now) or ``pending``."""

    status: str
    device: str
    request: str
    broker: Broker
    #: Pending: ask again after this many seconds.
    poll_s: int = 30

    @property
    def username(self) -> str:
        """The broker login: always the device id, so the broker can confine it to its own topics."""
        return self.device


def _fail(detail: str) -> EnrolmentError:
    return EnrolmentError("invalid", detail)


def _object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise _fail(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail("not a JSON object")
    if data.get("v") != VERSION:
        raise _fail(f"v must be {VERSION}, got {data.get('v')!r}")
    return data


def _text(data: dict[str, Any], key: str, pattern: re.Pattern[str], what: str, required: bool = True) -> Any:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _fail(f"{key} must be {what}")  # never echo the value: it may be a secret
    return value


def _only(data: dict[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(data) - keys - {"v"})
    if unknown:
        raise _fail(f"unknown field(s) {', '.join(unknown)}")


def encode_request(req: EnrolRequest | StatusRequest) -> bytes:
    """The JSON body of an enrolment or status request."""
    if isinstance(req, EnrolRequest):
        body: dict[str, Any] = {"v": VERSION, "secret": req.secret, "hardware": req.hardware, "password": req.password}
        if req.fw is not None:
            body["fw"] = req.fw
    else:
        body = {"v": VERSION, "request": req.request, "password": req.password}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_enrol(body: bytes) -> EnrolRequest:
    """Check an enrolment request body; EnrolmentError('invalid') says what is wrong (never the values)."""
    data = _object(body)
    _only(data, {"secret", "hardware", "password", "fw"})
    return EnrolRequest(
        _text(data, "secret", SECRET_RE, "16..128 of A-Z, a-z, 0-9, '_' and '-'"),
        _text(data, "hardware", HARDWARE_RE, "1..64 of A-Z, a-z, 0-9 and _ . : -"),
        _text(data, "password", PASSWORD_RE, "32..128 of A-Z, a-z, 0-9, '_' and '-'"),
        _text(data, "fw", FW_RE, "1..64 printable ASCII characters", required=False),
    )


def decode_status(body: bytes) -> StatusRequest:
    """Check a status request body."""
    data = _object(body)
    _only(data, {"request", "password"})
    return StatusRequest(
        _text(data, "request", REQUEST_RE, "16..64 of A-Z, a-z, 0-9, '_' and '-'"),
        _text(data, "password", PASSWORD_RE, "32..128 of A-Z, a-z, 0-9, '_' and '-'"),
    )


def encode_answer(answer: EnrolAnswer) -> bytes:
    """The JSON body of a 200 answer."""
    body = {
        "v": VERSION,
        "status": answer.status,
        "device": answer.device,
        "username": answer.username,
        "request": answer.request,
        "broker": {"host": answer.broker.host, "port": answer.broker.port, "tls": answer.broker.tls},
        "poll_s": answer.poll_s,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_answer(body: bytes) -> EnrolAnswer:
    """Check a 200 answer (the terminal's side)."""
    data = _object(body)
    status = data.get("status")
    if status not in STATUSES:
        raise _fail(f"status must be one of {', '.join(STATUSES)}")
    device = data.get("device")
    if not isinstance(device, str) or not topics.DEVICE_ID_RE.match(device):
        raise _fail("device must be a device id")
    if data.get("username") != device:
        raise _fail("username must equal device")
    request = _text(data, "request", REQUEST_RE, "a request id")
    b = data.get("broker")
    if not isinstance(b, dict) or set(b) != {"host", "port", "tls"}:
        raise _fail("broker must be an object with host, port and tls")
    host, port, tls = b["host"], b["port"], b["tls"]
    if not isinstance(host, str) or not 0 < len(host) <= 253 or any(c.isspace() for c in host):
        raise _fail("broker.host must be a host name")
    if type(port) is not int or not 0 < port < 65536:
        raise _fail("broker.port must be 1..65535")
    if type(tls) is not bool:
        raise _fail("broker.tls must be true or false")
    poll_s = data.get("poll_s", 30)
    if type(poll_s) is not int or not 1 <= poll_s <= 3600:
        raise _fail("poll_s must be 1..3600")
    return EnrolAnswer(status, device, request, Broker(host, port, tls), poll_s)


def encode_error(exc: EnrolmentError) -> bytes:
    """The JSON body of a refusal."""
    body: dict[str, Any] = {"v": VERSION, "error": exc.error, "detail": exc.detail}
    if exc.retry_after is not None:
        body["retry_after"] = exc.retry_after
    return json.dumps(body, separators=(",", ":")).encode()


def decode_error(body: bytes) -> EnrolmentError:
    """Read a refusal (the terminal's side); a body that is not one becomes an 'invalid' error."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _fail("the fleet's refusal was not JSON")
    if not isinstance(data, dict) or data.get("error") not in ERRORS:
        return _fail("the fleet's refusal named no known error")
    retry = data.get("retry_after")
    detail = data.get("detail")
    return EnrolmentError(
        data["error"], detail if isinstance(detail, str) else "", retry if type(retry) is int else None
    )
