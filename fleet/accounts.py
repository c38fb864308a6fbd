"""People who sign in to the fleet web: roles, their scope in the hierarchy, and password hashing.

Roles (DESIGN, "access follows the hierarchy"): an IT administrator may do everything; a unit
manager sees and steers the units, terminals and configuration under their part of the hierarchy;
a viewer sees results of their part only. Passwords are hashed with Argon2id (argon2-cffi, the
algorithm OWASP recommends first), and a hash made with older parameters is replaced at the next login.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ADMIN, MANAGER, VIEWER = "admin", "manager", "viewer"
ROLES = (ADMIN, MANAGER, VIEWER)
LANGUAGES = ("fi", "sv", "en")
MIN_PASSWORD = 12
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}\Z")

_hasher = PasswordHasher()
#: Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """An account value that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    """One person's account, without the password hash."""

    id: int
    username: str
    role: str
    scope_id: int | None  # None: the whole organisation
    lang: str
    disabled: bool
    created_at: int
    last_login: int | None
    #: Changes whenever the password changes: part of the session id, so a new password ends old sessions.
    session_key: str


def check_username(name: str) -> str:
    """A username: 2–64 letters, digits or . _ @ -, starting with a letter or digit."""
    name = name.strip()
    if not _USERNAME.match(name):
        raise AccountError("a username is 2–64 letters, digits or . _ @ - and starts with a letter or digit")
    return name


def check_password(password: str) -> str:
    """A password long enough to resist guessing (length is what counts; NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("a password may have at most 1024 characters")
    return password


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; takes as long for an unknown account (``stored_hash`` None)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
