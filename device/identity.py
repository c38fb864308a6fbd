"""The terminal's own identity, as enrolment leaves it: device id, fleet address and broker login.

``hymy enrol`` (device/enrol.py) writes it into the terminal's data directory: ``identity.toml``
with the broker password in a file of its own beside it and a copy of the fleet's CA certificate,
every file owner-only (0600) in an owner-only (0700) directory, each written atomically so a power
cut leaves the old file or the new one, never half of one. The settings file names it with
``identity_file`` (device/settings.py), so an image's settings can be written once and the
identity later. Relative paths in it are relative to the identity file.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.topics import DEVICE_ID_RE

from .errors import DeviceError

IDENTITY_NAME = "identity.toml"
PASSWORD_NAME = "broker-password"
CA_NAME = "fleet-ca.pem"


class IdentityError(DeviceError):
    """The identity file is missing, not TOML, or has a wrong key (the message names the file and key)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this terminal is to the fleet and how it logs in to the broker."""

    device_id: str
    fleet_url: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    #: The CA that signed the broker's certificate; None with ``tls``: the system's CA store.
    ca_file: Path | None = None
    tls: bool = True
    #: The file these came from.
    source: Path | None = None

    @property
    def claim_base(self) -> str:
        """Where the claim QR code points: ``<fleet>/claim/`` (the device id follows)."""
        return self.fleet_url + "claim/"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed and make it owner-only (0700); IdentityError if it is another's."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.geteuid():
        path.chmod(0o700)
    elif st.st_mode & 0o077:
        raise IdentityError(f"{path}: belongs to another user and is open to others; give a directory of this user's")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, owner-only (0600): a temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _quote(value: str) -> str:
    """A TOML basic string (values here are host names, URLs and file names: no control characters)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_identity(directory: Path, identity: Identity, ca_pem: bytes | None, name: str = IDENTITY_NAME) -> Identity:
    """Write the password file, the CA copy (when given) and then the identity file, which names them."""
    ensure_private_dir(directory)
    write_private(directory / PASSWORD_NAME, identity.password.encode() + b"\n")
    ca_file = None
    if ca_pem is not None:
        ca_file = directory / CA_NAME
        write_private(ca_file, ca_pem)
    lines = [
        "# Written by `hymy enrol`: this terminal's identity in the fleet. Do not edit.",
        f"device_id = {_quote(identity.device_id)}",
        f"fleet_url = {_quote(identity.fleet_url)}",
        "",
        "[broker]",
        f"host = {_quote(identity.host)}",
        f"port = {identity.port}",
        f"username = {_quote(identity.username)}",
        f"password_file = {_quote(PASSWORD_NAME)}",
        f"tls = {'true' if identity.tls else 'false'}",
    ]
    if ca_file is not None:
        lines.append(f"ca_file = {_quote(CA_NAME)}")
    path = directory / name
    write_private(path, ("\n".join(lines) + "\n").encode())
    return load_identity(path)


def _take(table: dict[str, Any], key: str, kind: type, where: str, required: bool = True) -> Any:
    if key not in table:
        if required:
            raise IdentityError(f"{where}{key}: is required")
        return None
    value = table.pop(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise IdentityError(f"{where}{key}: must be a {kind.__name__}, got {type(value).__name__}")
    return value


def load_identity(path: Path | str) -> Identity:
    """Read and check an identity file; IdentityError names the file and the key at fault."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"{path}: cannot read the identity: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise IdentityError(f"{path}: not valid TOML: {exc}") from exc
    where = f"{path}: "
    device_id = _take(data, "device_id", str, where)
    if not DEVICE_ID_RE.match(device_id):
        raise IdentityError(f"{where}device_id: not a device id: {device_id!r}")
    fleet_url = _take(data, "fleet_url", str, where)
    if not fleet_url.startswith(("https://", "http://")):
        raise IdentityError(f"{where}fleet_url: must be an https:// address")
    if not fleet_url.endswith("/"):
        fleet_url += "/"
    b = _take(data, "broker", dict, where)
    bw = f"{path}: broker."
    host = _take(b, "host", str, bw)
    port = _take(b, "port", int, bw)
    if not 1 <= port <= 65535:
        raise IdentityError(f"{bw}port: must be 1..65535, got {port}")
    username = _take(b, "username", str, bw)
    password_path = path.parent / _take(b, "password_file", str, bw)
    try:
        password = password_path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"{bw}password_file: cannot read {password_path}: {exc}") from exc
    if not password:
        raise IdentityError(f"{bw}password_file: {password_path} is empty")
    tls = _take(b, "tls", bool, bw, required=False)
    ca_name = _take(b, "ca_file", str, bw, required=False)
    ca_file = None if ca_name is None else path.parent / ca_name
    if ca_file is not None and not ca_file.is_file():
        raise IdentityError(f"{bw}ca_file: {ca_file} does not exist")
    for table, prefix in ((b, bw), (data, where)):
        if table:
            raise IdentityError(f"{prefix}{sorted(table)[0]}: unknown key")
    return Identity(
        device_id,
        fleet_url,
        host,
        port,
        username,
        password,
        ca_file,
        bool(ca_file) if tls is None else tls,
        path,
    )
