"""Enrolment, the fleet's side (SPEC §13): blank terminals trade IT's enrolment secret for an identity.

Claim-based, like ThingsBoard's device provisioning and AWS IoT's fleet provisioning by claim. IT
makes a secret for a batch of terminals (``create_secret``: the plaintext is returned once, only its
hash is kept); each terminal sends it with its hardware serial and the broker password it chose
(``enrol``), and gets a device id of its own and a broker login (``BrokerAccounts.add_terminal``),
enabled at once or, when the secret requires approval, once IT approves (``approve``; ``refuse``
deletes the login). A one-use *replacement* secret (``replacement_secret``) re-enrols a new card or
new hardware under the device id of the terminal it replaces, whose login it takes over and whose
placement continues. ``revoke`` deletes a terminal's login: the broker disconnects it at once.

If the broker's account store cannot be reached, the terminal is told ``unavailable`` and the use
of the secret is given back. Refusals are counted (``refusals``, by error) and logged, never with a
secret or a password.

Without the web (the CLI, tests)::

    enrolment = Enrolment.from_settings(store, settings)     # or Enrolment(store, accounts, broker)
    secret, plain = enrolment.create_secret("cli:it", "Batch 7", valid_days=14, max_uses=20)
    answer = enrolment.enrol(EnrolRequest(plain, "10000000abcd1234", password))
    enrolment.approve(answer.request, "cli:it")   # when the secret requires approval
    enrolment.revoke(answer.device, "cli:it", "stolen")
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from protocol.enrolment import ENROLLED as ANSWER_ENROLLED
from protocol.enrolment import PENDING as ANSWER_PENDING
from protocol.enrolment import Broker, EnrolAnswer, EnrolmentError, EnrolRequest, StatusRequest
from protocol.topics import DEVICE_ID_RE

from .brokerauth import BrokerAccounts, BrokerAccountsError, accounts_from_settings
from .db.enrolment import (
    ENROLLED,
    PENDING,
    REFUSED,
    EnrolmentRecordError,
    EnrolmentRecords,
    EnrolmentRequest,
    EnrolmentSecret,
    SecretRefused,
    digest,
)
from .db.store import SqlFleetStore

log = logging.getLogger(__name__)

DEVICE_PREFIX = "hymy-"
#: A replacement secret: one use, valid this long.
REPLACEMENT_DAYS = 1
MAX_VALID_DAYS = 365
DAY_MS = 86_400_000
#: How many random ids are tried before giving up (2^32 ids: a collision is already rare).
RANDOM_TRIES = 20
UNAVAILABLE = "the broker's account store cannot be reached; try again later"
_SEPARATORS = re.compile(r"[:._-]")
_HEX8 = re.compile(r"[0-9a-f]{8}\Z")


class EnrolmentChangeError(ValueError):
    """A change IT asked for that cannot be made (bad limit, unknown request); the message says why."""


def device_from_hardware(hardware: str) -> str | None:
    """``hymy-`` and the serial's last 8 hex digits (lowercased), if it ends in them; else None."""
    compact = _SEPARATORS.sub("", hardware).lower()
    tail = compact[-8:]
    if not _HEX8.match(tail):
        return None
    device = DEVICE_PREFIX + tail
    return device if DEVICE_ID_RE.match(device) else None


def enrol_file_text(fleet_url: str, secret: str, name: str = "") -> str:
    """The boot partition's ``hymy-enrol.toml`` for ``secret`` (SPEC §13.1), ready to copy."""
    lines = [
        f"# Hymy enrolment file{f': {_comment(name)}' if name else ''}",
        "# Put it on each terminal's boot partition as hymy-enrol.toml. It holds a secret: keep it like a password.",
        f'fleet_url = "{_toml(fleet_url)}"',
        f'secret = "{_toml(secret)}"',
        "# The CA certificate that signed the fleet's and the broker's certificates, beside this file",
        "# (without it the terminal trusts the system's CA store):",
        '# ca_file = "hymy-ca.pem"',
        "# Only if the terminals must reach the broker by another name or port than the fleet says:",
        '# broker = "mqtt.example.fi:8883"',
    ]
    return "\n".join(lines) + "\n"


def _toml(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _comment(text: str) -> str:
    return " ".join(text.split())


class Enrolment:
    """Enrolment secrets, terminals' enrolment requests, approval and revocation, over one store."""

    def __init__(
        self,
        store: SqlFleetStore,
        accounts: BrokerAccounts,
        broker: Broker,
        *,
        poll_s: int = 30,
        clock: Callable[[], float] = time.time,
        token: Callable[[], str] = lambda: secrets.token_urlsafe(24),
        random_hex: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        self.records = EnrolmentRecords(store, clock)
        self.accounts = accounts
        self.broker = broker
        self.poll_s = poll_s
        self._token = token
        self._random_hex = random_hex
        self._lock = threading.Lock()
        #: Refusals since this process started, by error (for /metrics and the enrolment page).
        self.refusals: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, store: SqlFleetStore, settings: Any) -> Enrolment:
        """The service the fleet settings describe: their account store and the broker terminals are told."""
        broker = Broker(
            settings.terminal_broker_host or settings.broker_host,
            settings.terminal_broker_port,
            settings.terminal_broker_tls,
        )
        return cls(store, accounts_from_settings(settings), broker)

    # -- secrets (IT) ----------------------------------------------------------------------------

    def create_secret(
        self,
        actor: str,
        name: str,
        *,
        valid_days: int,
        max_uses: int | None = None,
        require_approval: bool = False,
        replaces: str | None = None,
    ) -> tuple[EnrolmentSecret, str]:
        """A new secret and its plaintext (``secrets.token_urlsafe(24)``), to show once."""
        if not 1 <= valid_days <= MAX_VALID_DAYS:
            raise EnrolmentChangeError(f"a secret is valid for 1–{MAX_VALID_DAYS} days")
        plain = self._token()
        expires_at = self.records.now() + valid_days * DAY_MS
        try:
            made = self.records.add_secret(
                actor,
                name,
                plain,
                expires_at=expires_at,
                max_uses=max_uses,
                require_approval=require_approval,
                replaces=replaces,
            )
        except EnrolmentRecordError as exc:
            raise EnrolmentChangeError(str(exc)) from exc
        return made, plain

    def replacement_secret(self, actor: str, device: str) -> tuple[EnrolmentSecret, str]:
        """A one-use secret, valid for a day, that enrols a new terminal as ``device`` (placement kept)."""
        if not DEVICE_ID_RE.match(device):
            raise EnrolmentChangeError(f"bad device id {device!r}")
        return self.create_secret(
            actor, f"Replacement for {device}", valid_days=REPLACEMENT_DAYS, max_uses=1, replaces=device
        )

    def revoke_secret(self, actor: str, secret_id: int) -> EnrolmentSecret:
        """Withdraw a secret; terminals already enrolled with it keep their identity."""
        try:
            return self.records.revoke_secret(actor, secret_id)
        except EnrolmentRecordError as exc:
            raise EnrolmentChangeError(str(exc)) from exc

    def secrets(self) -> list[EnrolmentSecret]:
        """Every secret, newest first."""
        return self.records.secrets()

    # -- terminals (the JSON endpoints) ----------------------------------------------------------

    def enrol(self, req: EnrolRequest) -> EnrolAnswer:
        """Enrol a terminal; raises EnrolmentError (the protocol's refusal) if it cannot be."""
        try:
            return self._enrol(req)
        except EnrolmentError as exc:
            self.refused(exc, req.hardware)
            raise

    def _enrol(self, req: EnrolRequest) -> EnrolAnswer:
        found = self.records.find_secret(req.secret)
        if found is not None:
            again = self.records.repeated(found.id, req.hardware, req.password)
            if again is not None:  # the terminal never got our answer: the same request, no new use
                return self._answer_again(again, req.password)
        request_id = self._token()
        try:
            secret, made = self.records.take_use(
                req.secret, request_id, req.hardware, req.fw, req.password, self._choose_device(req.hardware)
            )
        except SecretRefused as exc:
            raise EnrolmentError(exc.error, exc.detail) from None
        try:
            self.accounts.add_terminal(made.device, req.password, enabled=made.status == ENROLLED)
        except BrokerAccountsError as exc:
            self.records.give_back(made.id)
            log.error("enrolment of %s: the broker's account store failed: %s", made.device, exc)
            raise EnrolmentError("unavailable", UNAVAILABLE) from None
        self.records.enrolled(made, secret)
        log.info(
            "terminal %s enrolled (hardware %s, secret %r, %s)", made.device, made.hardware, secret.name, made.status
        )
        return self._answer(made)

    def _answer_again(self, req: EnrolmentRequest, password: str) -> EnrolAnswer:
        if req.status not in (PENDING, ENROLLED):
            raise EnrolmentError("refused", "this terminal's enrolment was refused or revoked")
        try:  # the login may never have been made: making it again is idempotent
            self.accounts.add_terminal(req.device, password, enabled=req.status == ENROLLED)
        except BrokerAccountsError as exc:
            log.error("enrolment of %s: the broker's account store failed: %s", req.device, exc)
            raise EnrolmentError("unavailable", UNAVAILABLE) from None
        return self._answer(req)

    def status(self, req: StatusRequest) -> EnrolAnswer:
        """Where a terminal's request stands: pending or enrolled; refused or unknown_request raise."""
        try:
            found = self.records.request(req.request)
            if found is None or not hmac.compare_digest(found.password_hash, digest(req.password)):
                raise EnrolmentError("unknown_request", "no request with that id and password")
            if found.status not in (PENDING, ENROLLED):
                raise EnrolmentError("refused", "this terminal's enrolment was refused or revoked")
            return self._answer(found)
        except EnrolmentError as exc:
            self.refused(exc, None)
            raise

    def refused(self, exc: EnrolmentError, hardware: str | None) -> None:
        """Count and log a refusal (the web counts its rate-limited ones here too); no secret is logged."""
        with self._lock:
            self.refusals[exc.error] += 1
        log.warning("enrolment refused: %s (%s)%s", exc.error, exc.detail, f", hardware {hardware}" if hardware else "")

    def _answer(self, req: EnrolmentRequest) -> EnrolAnswer:
        status = ANSWER_ENROLLED if req.status == ENROLLED else ANSWER_PENDING
        return EnrolAnswer(status, req.device, req.id, self.broker, self.poll_s)

    def _choose_device(self, hardware: str) -> Callable[[Connection, EnrolmentSecret], str]:
        def choose(conn: Connection, secret: EnrolmentSecret) -> str:
            if secret.replaces is not None:
                with self.records.store.writing(secret.replaces):  # serialises with its ingest
                    return secret.replaces
            candidates = [device_from_hardware(hardware)] + [
                DEVICE_PREFIX + self._random_hex() for _ in range(RANDOM_TRIES)
            ]
            for device in candidates:
                if device is None or not DEVICE_ID_RE.match(device):
                    continue
                # On PostgreSQL the device's lock keeps another process from taking the same id now.
                with self.records.store.writing(device):
                    if not self.records.device_taken(conn, device):
                        return device
            raise EnrolmentError("unavailable", "no free device id was found; try again")

        return choose

    # -- decisions (IT) --------------------------------------------------------------------------

    def pending(self) -> list[EnrolmentRequest]:
        """Requests waiting for IT's approval, newest first."""
        return self.records.requests(PENDING)

    def request(self, request_id: str) -> EnrolmentRequest | None:
        """One request, or None."""
        return self.records.request(request_id)

    def approve(self, request_id: str, by: str) -> EnrolmentRequest:
        """Let a pending terminal log in; raises BrokerAccountsError (nothing changed) or EnrolmentChangeError."""
        found = self._pending(request_id)
        self.accounts.enable_terminal(found.device, True)
        return self._decide(by, request_id, ENROLLED)

    def refuse(self, request_id: str, by: str) -> EnrolmentRequest:
        """Refuse a pending terminal: its login is deleted and its status requests answer ``refused``."""
        found = self._pending(request_id)
        self.accounts.remove_terminal(found.device)
        return self._decide(by, request_id, REFUSED)

    def _pending(self, request_id: str) -> EnrolmentRequest:
        found = self.records.request(request_id)
        if found is None:
            raise EnrolmentChangeError(f"no enrolment request {request_id}")
        if found.status != PENDING:
            raise EnrolmentChangeError(f"the request is {found.status}, not pending")
        return found

    def _decide(self, by: str, request_id: str, status: str) -> EnrolmentRequest:
        try:
            return self.records.decide(by, request_id, status)
        except EnrolmentRecordError as exc:
            raise EnrolmentChangeError(str(exc)) from exc

    def revoke(self, device: str, by: str, reason: str) -> list[EnrolmentRequest]:
        """Lock a terminal out: delete its broker login (it is disconnected at once) and mark it revoked.

        Raises BrokerAccountsError if the account store cannot be reached (then nothing is marked).
        """
        if not DEVICE_ID_RE.match(device):
            raise EnrolmentChangeError(f"bad device id {device!r}")
        self.accounts.remove_terminal(device)
        revoked = self.records.revoke_device(by, device, reason)
        log.info("terminal %s revoked by %s", device, by)
        return revoked

    def latest(self, device: str) -> EnrolmentRequest | None:
        """The device's newest enrolment request, or None."""
        return self.records.latest(device)

    def revoked(self, device: str) -> bool:
        """True if the device's newest enrolment was revoked or refused (it cannot log in)."""
        found = self.records.latest(device)
        return found is not None and found.status not in (PENDING, ENROLLED)
