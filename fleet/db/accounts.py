"""Accounts in the fleet database; every change is in the audit log (never the password or its hash)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..accounts import (
    LANGUAGES,
    ROLES,
    Account,
    AccountError,
    check_password,
    check_username,
    hash_password,
    needs_rehash,
    verify_password,
)
from . import audit
from .store import SqlFleetStore
from .tables import accounts, org_nodes

_A = accounts.c


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        role=row.role,
        scope_id=row.scope_id,
        lang=row.lang,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_login=row.last_login,
        session_key=row.password_hash[-16:],
    )


def _shown(a: Account) -> dict[str, Any]:
    return {"username": a.username, "role": a.role, "scope_id": a.scope_id, "lang": a.lang, "disabled": a.disabled}


class Accounts:
    """Create, find, authenticate and change accounts."""

    def __init__(self, store: SqlFleetStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def create(
        self, actor: str, username: str, password: str, role: str, scope_id: int | None = None, lang: str = "fi"
    ) -> Account:
        """A new account; raises AccountError for a taken name, a weak password or an unknown role."""
        username = check_username(username)
        check_password(password)
        self._check(role, lang)
        with self.store.writing() as conn:
            self._check_scope(conn, role, scope_id)
            if conn.execute(sa.select(_A.id).where(sa.func.lower(_A.username) == username.lower())).first():
                raise AccountError(f"the username {username!r} is taken")
            new_id = conn.execute(
                sa.insert(accounts)
                .values(
                    username=username,
                    password_hash=hash_password(password),
                    role=role,
                    scope_id=scope_id,
                    lang=lang,
                    created_at=self._now(),
                )
                .returning(_A.id)
            ).scalar_one()
            account = self._get(conn, new_id)
            audit.record(conn, self._now(), actor, "account.create", f"account:{username}", None, _shown(account))
            return account

    def update(
        self,
        actor: str,
        account_id: int,
        *,
        role: str | None = None,
        scope_id: int | None = None,
        lang: str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> Account:
        """Change an account; a new password (or disabling it) ends its sessions."""
        with self.store.writing() as conn:
            before = self._get(conn, account_id)
            values: dict[str, Any] = {}
            new_role = role if role is not None else before.role
            new_scope = scope_id if role is not None else before.scope_id
            self._check(new_role, lang if lang is not None else before.lang)
            if role is not None:
                self._check_scope(conn, new_role, new_scope)
                values.update(role=new_role, scope_id=new_scope)
            if lang is not None:
                values["lang"] = lang
            if disabled is not None:
                values["disabled"] = disabled
            if password is not None:
                values["password_hash"] = hash_password(check_password(password))
            if values:
                conn.execute(sa.update(accounts).where(_A.id == account_id).values(values))
            after = self._get(conn, account_id)
            shown_after = dict(_shown(after), **({"password": "changed"} if password is not None else {}))
            if shown_after != _shown(before):
                audit.record(
                    conn,
                    self._now(),
                    actor,
                    "account.update",
                    f"account:{before.username}",
                    _shown(before),
                    shown_after,
                )
            return after

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the name and password match and it is enabled, else None (in the same time)."""
        with self.store.writing() as conn:
            row = conn.execute(
                sa.select(accounts).where(sa.func.lower(_A.username) == username.strip().lower())
            ).first()
            if not verify_password(None if row is None else row.password_hash, password) or row is None:
                return None
            if row.disabled:
                return None
            values: dict[str, Any] = {"last_login": self._now()}
            if needs_rehash(row.password_hash):
                values["password_hash"] = hash_password(password)
            conn.execute(sa.update(accounts).where(_A.id == row.id).values(values))
            return self._get(conn, row.id)

    def get(self, account_id: int) -> Account | None:
        """One account, or None."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(accounts).where(_A.id == account_id)).first()
            return None if row is None else _account(row)

    def all(self) -> list[Account]:
        """Every account, by username."""
        with self.store.reading() as conn:
            return [_account(r) for r in conn.execute(sa.select(accounts).order_by(_A.username))]

    def count(self) -> int:
        """How many accounts exist."""
        with self.store.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one())

    def _get(self, conn: Connection, account_id: int) -> Account:
        row = conn.execute(sa.select(accounts).where(_A.id == account_id)).first()
        if row is None:
            raise AccountError(f"no account {account_id}")
        return _account(row)

    @staticmethod
    def _check(role: str, lang: str) -> None:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if lang not in LANGUAGES:
            raise AccountError(f"language must be one of {', '.join(LANGUAGES)}")

    @staticmethod
    def _check_scope(conn: Connection, role: str, scope_id: int | None) -> None:
        if scope_id is None:
            if role != "admin":
                raise AccountError("a unit manager or viewer needs a part of the organisation to see")
            return
        if conn.execute(sa.select(org_nodes.c.id).where(org_nodes.c.id == scope_id)).first() is None:
            raise AccountError(f"no organisation node {scope_id}")
