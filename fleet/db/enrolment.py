"""Enrolment secrets and requests in the fleet database (the rules are in fleet/enrolment.py).

A secret is kept as its SHA-256 only (it is shown once, like an API token); a terminal's broker
password, which the terminal chose, as its SHA-256 only (it is 32+ random characters, so a fast hash
is enough to recognise it and useless to reverse). A use of a secret is taken by one conditional
UPDATE, so concurrent enrolments never take more uses than the secret allows. People's changes
(secrets made and revoked, requests approved or refused, terminals revoked) and terminals' enrolments
are in the audit log, never a secret, a password or a hash of either.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import audit
from .store import SqlFleetStore
from .tables import enrolment_requests, enrolment_secrets, placements, retired_terminals, terminals

_S = enrolment_secrets.c
_R = enrolment_requests.c

PENDING = "pending"
ENROLLED = "enrolled"
REFUSED = "refused"
REVOKED = "revoked"
REQUEST_STATUSES = (PENDING, ENROLLED, REFUSED, REVOKED)
MAX_NAME = 100


class SecretRefused(Exception):
    """A secret that cannot be used now; ``error`` is the protocol's refusal (secret_unknown, …)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


class EnrolmentRecordError(ValueError):
    """A change that cannot be made (unknown secret or request, wrong state); the message says why."""


def digest(text: str) -> str:
    """The stored form of a secret or a terminal's password: SHA-256 in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class EnrolmentSecret:
    """One enrolment secret as IT sees it (never the secret itself)."""

    id: int
    name: str
    created_by: str
    created_at: int  # ms
    expires_at: int  # ms
    max_uses: int | None  # None: unlimited
    uses: int
    require_approval: bool
    replaces: str | None
    revoked_at: int | None
    revoked_by: str | None

    def state(self, now_ms: int) -> str:
        """``active``, ``revoked``, ``expired`` or ``used_up``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now_ms:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "active"


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """One terminal's enrolment: the device id it got and where its request stands."""

    id: str
    secret_id: int
    hardware: str
    fw: str | None
    device: str
    status: str
    requested_at: int
    decided_by: str | None
    decided_at: int | None
    password_hash: str  # only to recognise the terminal's status requests; never shown


def _secret(row: Any) -> EnrolmentSecret:
    return EnrolmentSecret(
        id=row.id,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        require_approval=bool(row.require_approval),
        replaces=row.replaces,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _request(row: Any) -> EnrolmentRequest:
    return EnrolmentRequest(
        id=row.id,
        secret_id=row.secret_id,
        hardware=row.hardware,
        fw=row.fw,
        device=row.device,
        status=row.status,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        password_hash=row.password_hash,
    )


def _shown_secret(s: EnrolmentSecret) -> dict[str, Any]:
    """A secret as the audit log keeps it: what it allows, never the secret or its hash."""
    return {
        "name": s.name,
        "expires_at": s.expires_at,
        "max_uses": s.max_uses,
        "require_approval": s.require_approval,
        "replaces": s.replaces,
        "revoked": s.revoked_at is not None,
    }


def _shown_request(r: EnrolmentRequest) -> dict[str, Any]:
    return {"request": r.id, "secret_id": r.secret_id, "hardware": r.hardware, "fw": r.fw, "status": r.status}


class EnrolmentRecords:
    """Enrolment secrets and requests over one fleet store, each change with its audit entry."""

    def __init__(self, store: SqlFleetStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> int:
        """The store's idea of now, in ms."""
        return int(self._clock() * 1000)

    # -- secrets ---------------------------------------------------------------------------------

    def add_secret(
        self,
        actor: str,
        name: str,
        secret: str,
        *,
        expires_at: int,
        max_uses: int | None = None,
        require_approval: bool = False,
        replaces: str | None = None,
    ) -> EnrolmentSecret:
        """Keep a new secret (its hash); raises EnrolmentRecordError for a bad name or limit."""
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise EnrolmentRecordError(f"a secret's name is 1–{MAX_NAME} characters")
        if max_uses is not None and max_uses < 1:
            raise EnrolmentRecordError("the number of uses is at least 1 (or unlimited)")
        with self.store.writing() as conn:
            if replaces is not None and _retired(conn, replaces):
                raise EnrolmentRecordError(f"{replaces} is retired: it cannot be replaced")
            now = self.now()
            new_id = conn.execute(
                sa.insert(enrolment_secrets)
                .values(
                    name=name,
                    secret_hash=digest(secret),
                    created_by=actor,
                    created_at=now,
                    expires_at=expires_at,
                    max_uses=max_uses,
                    uses=0,
                    require_approval=require_approval,
                    replaces=replaces,
                )
                .returning(_S.id)
            ).scalar_one()
            made = self._secret(conn, new_id)
            obj = f"terminal:{replaces}" if replaces else f"enrolment_secret:{made.id}"
            audit.record(conn, now, actor, "enrolment_secret.create", obj, None, _shown_secret(made))
            return made

    def secrets(self) -> list[EnrolmentSecret]:
        """Every secret, newest first."""
        with self.store.reading() as conn:
            return [_secret(r) for r in conn.execute(sa.select(enrolment_secrets).order_by(_S.id.desc()))]

    def secret(self, secret_id: int) -> EnrolmentSecret | None:
        """One secret, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(enrolment_secrets).where(_S.id == secret_id)).first()
            return None if row is None else _secret(row)

    def revoke_secret(self, actor: str, secret_id: int) -> EnrolmentSecret:
        """Withdraw a secret: no terminal enrols with it from now on (those enrolled stay)."""
        with self.store.writing() as conn:
            before = self._secret(conn, secret_id)
            if before.revoked_at is not None:
                return before
            now = self.now()
            conn.execute(
                sa.update(enrolment_secrets).where(_S.id == secret_id).values(revoked_at=now, revoked_by=actor)
            )
            after = self._secret(conn, secret_id)
            audit.record(
                conn,
                now,
                actor,
                "enrolment_secret.revoke",
                f"enrolment_secret:{secret_id}",
                _shown_secret(before),
                _shown_secret(after),
            )
            return after

    # -- a terminal enrols -----------------------------------------------------------------------

    def find_secret(self, secret: str) -> EnrolmentSecret | None:
        """The secret whose hash this is, in whatever state, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(enrolment_secrets).where(_S.secret_hash == digest(secret))).first()
            return None if row is None else _secret(row)

    def repeated(self, secret_id: int, hardware: str, password: str) -> EnrolmentRequest | None:
        """The request this terminal already made with this secret and password (its answer was lost)."""
        with self.store.reading() as conn:
            row = conn.execute(
                sa.select(enrolment_requests)
                .where(_R.secret_id == secret_id, _R.hardware == hardware, _R.password_hash == digest(password))
                .order_by(_R.requested_at.desc())
            ).first()
            return None if row is None else _request(row)

    def take_use(
        self,
        secret: str,
        request_id: str,
        hardware: str,
        fw: str | None,
        password: str,
        choose_device: Callable[[Connection, EnrolmentSecret], str],
    ) -> tuple[EnrolmentSecret, EnrolmentRequest]:
        """Take one use of ``secret`` and record the request, in one transaction.

        Raises SecretRefused (secret_unknown, secret_revoked, secret_expired, secret_used_up). The
        use is taken by one conditional UPDATE, so concurrent requests never overshoot ``max_uses``.
        ``choose_device(conn, secret)`` names the device id inside the transaction; the request is
        pending when the secret requires approval, else enrolled. ``give_back`` undoes it all.
        """
        with self.store.writing() as conn:
            row = conn.execute(sa.select(enrolment_secrets).where(_S.secret_hash == digest(secret))).first()
            if row is None:
                raise SecretRefused("secret_unknown", "no such enrolment secret")
            found = _secret(row)
            now = self.now()
            state = found.state(now)
            if state == "revoked":
                raise SecretRefused("secret_revoked", "the enrolment secret was revoked")
            if state == "expired":
                raise SecretRefused("secret_expired", "the enrolment secret has expired")
            if state == "used_up":
                raise SecretRefused("secret_used_up", "every use of the enrolment secret is taken")
            if found.replaces is not None and _retired(conn, found.replaces):
                raise SecretRefused("secret_revoked", "the terminal this secret replaces is retired")
            took = conn.execute(
                sa.update(enrolment_secrets)
                .where(
                    _S.id == found.id,
                    _S.revoked_at.is_(None),
                    _S.expires_at > now,
                    sa.or_(_S.max_uses.is_(None), _S.uses < _S.max_uses),
                )
                .values(uses=_S.uses + 1)
            )
            if took.rowcount != 1:  # another request took the last use meanwhile
                raise SecretRefused("secret_used_up", "every use of the enrolment secret is taken")
            device = choose_device(conn, found)
            conn.execute(
                sa.insert(enrolment_requests).values(
                    id=request_id,
                    secret_id=found.id,
                    hardware=hardware,
                    fw=fw,
                    device=device,
                    password_hash=digest(password),
                    status=PENDING if found.require_approval else ENROLLED,
                    requested_at=now,
                )
            )
            return self._secret(conn, found.id), self._request(conn, request_id)

    def give_back(self, request_id: str) -> None:
        """Undo ``take_use`` (the broker's account store failed): the use is free again, the request gone."""
        with self.store.writing() as conn:
            row = conn.execute(sa.select(enrolment_requests).where(_R.id == request_id)).first()
            if row is None:
                return
            conn.execute(sa.delete(enrolment_requests).where(_R.id == request_id))
            conn.execute(
                sa.update(enrolment_secrets).where(_S.id == row.secret_id, _S.uses > 0).values(uses=_S.uses - 1)
            )

    def enrolled(self, req: EnrolmentRequest, secret: EnrolmentSecret) -> None:
        """Audit a terminal's enrolment; a replacement's earlier requests for the same device end as revoked."""
        with self.store.writing(req.device) as conn:
            now = self.now()
            before = None
            if secret.replaces is not None:
                older = conn.execute(
                    sa.select(enrolment_requests).where(
                        _R.device == req.device, _R.id != req.id, _R.status.in_((PENDING, ENROLLED))
                    )
                ).all()
                if older:
                    before = {"replaced": sorted(r.id for r in older)}
                    conn.execute(
                        sa.update(enrolment_requests)
                        .where(_R.id.in_([r.id for r in older]))
                        .values(status=REVOKED, decided_by=f"replaced by {req.id}", decided_at=now)
                    )
            actor = f"enrolment:{secret.name}"
            audit.record(conn, now, actor, "terminal.enrol", f"terminal:{req.device}", before, _shown_request(req))

    # -- requests --------------------------------------------------------------------------------

    def request(self, request_id: str) -> EnrolmentRequest | None:
        """One request, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(enrolment_requests).where(_R.id == request_id)).first()
            return None if row is None else _request(row)

    def requests(self, status: str | None = None, limit: int = 200) -> list[EnrolmentRequest]:
        """Requests, newest first; ``status`` keeps those in one state."""
        query = sa.select(enrolment_requests).order_by(_R.requested_at.desc(), _R.id).limit(limit)
        if status is not None:
            query = query.where(_R.status == status)
        with self.store.reading() as conn:
            return [_request(r) for r in conn.execute(query)]

    def latest(self, device: str) -> EnrolmentRequest | None:
        """The device's newest request (what its enrolment stands at), or None if it never enrolled."""
        with self.store.reading() as conn:
            row = conn.execute(
                sa.select(enrolment_requests)
                .where(_R.device == device)
                .order_by(_R.requested_at.desc(), sa.case((_R.status == ENROLLED, 0), else_=1))
            ).first()
            return None if row is None else _request(row)

    def decide(self, actor: str, request_id: str, status: str) -> EnrolmentRequest:
        """Approve (``enrolled``) or refuse (``refused``) a pending request."""
        if status not in (ENROLLED, REFUSED):
            raise ValueError(f"a decision is enrolled or refused, not {status!r}")
        with self.store.writing() as conn:
            before = self._request(conn, request_id)
            if before.status == status:
                return before
            if before.status != PENDING:
                raise EnrolmentRecordError(f"request {request_id} is {before.status}, not pending")
            now = self.now()
            conn.execute(
                sa.update(enrolment_requests)
                .where(_R.id == request_id)
                .values(status=status, decided_by=actor, decided_at=now)
            )
            after = self._request(conn, request_id)
            action = "enrolment_request.approve" if status == ENROLLED else "enrolment_request.refuse"
            audit.record(
                conn, now, actor, action, f"terminal:{after.device}", _shown_request(before), _shown_request(after)
            )
            return after

    def revoke_device(self, actor: str, device: str, reason: str) -> list[EnrolmentRequest]:
        """Mark the device's live requests revoked and audit it (the caller removed its broker login)."""
        with self.store.writing(device) as conn:
            live = [
                _request(r)
                for r in conn.execute(
                    sa.select(enrolment_requests).where(_R.device == device, _R.status.in_((PENDING, ENROLLED)))
                )
            ]
            now = self.now()
            if live:
                conn.execute(
                    sa.update(enrolment_requests)
                    .where(_R.id.in_([r.id for r in live]))
                    .values(status=REVOKED, decided_by=actor, decided_at=now)
                )
            before = {"requests": sorted(r.id for r in live)} if live else None
            audit.record(conn, now, actor, "terminal.revoke", f"terminal:{device}", before, {"reason": reason})
            return live

    # -- device ids ------------------------------------------------------------------------------

    @staticmethod
    def device_taken(conn: Connection, device: str) -> bool:
        """True if any terminal, placement, retirement or enrolment already uses the id."""
        for column in (_R.device, terminals.c.device, placements.c.device, retired_terminals.c.device):
            if conn.execute(sa.select(sa.literal(1)).where(column == device).limit(1)).first() is not None:
                return True
        return False

    @staticmethod
    def retired(conn: Connection, device: str) -> bool:
        """True if the terminal is retired."""
        return _retired(conn, device)

    @staticmethod
    def _secret(conn: Connection, secret_id: int) -> EnrolmentSecret:
        row = conn.execute(sa.select(enrolment_secrets).where(_S.id == secret_id)).first()
        if row is None:
            raise EnrolmentRecordError(f"no enrolment secret {secret_id}")
        return _secret(row)

    @staticmethod
    def _request(conn: Connection, request_id: str) -> EnrolmentRequest:
        row = conn.execute(sa.select(enrolment_requests).where(_R.id == request_id)).first()
        if row is None:
            raise EnrolmentRecordError(f"no enrolment request {request_id}")
        return _request(row)


def _retired(conn: Connection, device: str) -> bool:
    found = conn.execute(sa.select(retired_terminals.c.device).where(retired_terminals.c.device == device)).first()
    return found is not None
