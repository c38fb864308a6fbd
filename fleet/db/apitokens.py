"""Bearer tokens for the read-only reporting API, each over a part of the organisation and revocable.

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when it is made; only its
SHA-256 is stored, and a request's token is found by its hash (a guess cannot be timed against a
stored secret, and a random token needs no slow hash). Making and revoking one is in the audit log,
never the token or its hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..org import LOCATION
from . import audit
from .store import SqlFleetStore
from .tables import api_tokens, org_nodes

_T = api_tokens.c
#: ``last_used_at`` is written at most this often per token (ms): a busy reporting system does not
#: turn every read into a write.
USE_RESOLUTION_MS = 60_000
MAX_NAME = 100


class ApiTokenError(ValueError):
    """A token that cannot be made or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One token as IT sees it (never the token itself)."""

    id: int
    name: str
    scope_id: int | None  # None: the whole organisation
    created_by: str
    created_at: int  # ms
    revoked_at: int | None
    last_used_at: int | None

    @property
    def revoked(self) -> bool:
        """True once the token has been revoked (it is refused from then on)."""
        return self.revoked_at is not None


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        scope_id=row.scope_id,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _shown(t: ApiToken) -> dict[str, Any]:
    return {"name": t.name, "scope_id": t.scope_id, "revoked": t.revoked}


class ApiTokens:
    """Create, list, revoke and check API tokens."""

    def __init__(
        self,
        store: SqlFleetStore,
        clock: Callable[[], float] = time.time,
        secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self.store = store
        self._clock = clock
        self._secret = secret

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def create(self, actor: str, name: str, scope_id: int | None) -> tuple[ApiToken, str]:
        """A new token over ``scope_id`` (None: everything), and the token itself, to show once."""
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME:
            raise ApiTokenError(f"a token's name is 1–{MAX_NAME} characters")
        plain = self._secret()
        with self.store.writing() as conn:
            if scope_id is not None:
                kind = conn.execute(sa.select(org_nodes.c.kind).where(org_nodes.c.id == scope_id)).scalar()
                if kind is None:
                    raise ApiTokenError(f"no organisation node {scope_id}")
                if kind == LOCATION:  # votes know their unit, not the location inside it
                    raise ApiTokenError("a token covers a region, a service area or a unit, not a location")
            new_id = conn.execute(
                sa.insert(api_tokens)
                .values(
                    name=name, token_hash=token_hash(plain), scope_id=scope_id, created_by=actor, created_at=self._now()
                )
                .returning(_T.id)
            ).scalar_one()
            made = self._get(conn, new_id)
            audit.record(conn, self._now(), actor, "api_token.create", f"api_token:{made.id}", None, _shown(made))
        return made, plain

    def all(self) -> list[ApiToken]:
        """Every token, active ones first, newest first."""
        with self.store.reading() as conn:
            rows = conn.execute(sa.select(api_tokens).order_by(_T.revoked_at.is_not(None), _T.id.desc()))
            return [_token(r) for r in rows]

    def get(self, token_id: int) -> ApiToken | None:
        """One token, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(api_tokens).where(_T.id == token_id)).first()
            return None if row is None else _token(row)

    def revoke(self, actor: str, token_id: int) -> ApiToken:
        """Revoke a token for good (revoking a revoked one changes nothing); raises ApiTokenError if unknown."""
        with self.store.writing() as conn:
            before = self._get(conn, token_id)
            if before.revoked:
                return before
            conn.execute(sa.update(api_tokens).where(_T.id == token_id).values(revoked_at=self._now()))
            after = self._get(conn, token_id)
            audit.record(
                conn, self._now(), actor, "api_token.revoke", f"api_token:{token_id}", _shown(before), _shown(after)
            )
            return after

    def check(self, token: str) -> ApiToken | None:
        """The token's record if ``token`` is a token that is not revoked, else None; notes its use."""
        if not token:
            return None
        digest = token_hash(token)
        with self.store.reading() as conn:
            row = conn.execute(sa.select(api_tokens).where(_T.token_hash == digest)).first()
        if row is None or row.revoked_at is not None:
            return None
        found = _token(row)
        now = self._now()
        if found.last_used_at is None or now - found.last_used_at >= USE_RESOLUTION_MS:
            with self.store.writing() as conn:
                conn.execute(
                    sa.update(api_tokens).where(_T.id == found.id, _T.revoked_at.is_(None)).values(last_used_at=now)
                )
        return found

    @staticmethod
    def _get(conn: Connection, token_id: int) -> ApiToken:
        row = conn.execute(sa.select(api_tokens).where(_T.id == token_id)).first()
        if row is None:
            raise ApiTokenError(f"no API token {token_id}")
        return _token(row)
