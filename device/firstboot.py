"""A terminal's first boot (images/stage-hymy/04-firstboot): turn IT's boot-partition files into this Pi's setup.

``python -m device.firstboot --boot /boot/firmware --root / [--data /var/lib/hymy]`` reads

- ``hymy-enrol.toml`` (device/enrol.py ``load_enrol_file``: fleet_url, secret, ca_file/ca_pem, broker),
  plus two tables only the image reads: ``[wifi]`` (ssid, psk, hidden) and ``[ssh]``
  (authorized_keys, for the ``hymy-admin`` user);
- Raspberry Pi Imager's cloud-init ``user-data`` (whether it gives SSH public keys) and
  ``network-config`` (Wi-Fi there is cloud-init's to set up, not ours);
- the Pi's serial number (``/proc/device-tree/serial-number`` or ``/proc/cpuinfo``, under ``--root``),

and then sets the host name ``hymy-<serial>``, writes a NetworkManager connection for ``[wifi]``,
enables SSH (key-only) only when asked, makes the data directory, and turns the read-only root
(``overlayroot=tmpfs`` in cmdline.txt, as raspi-config does) on for the next boot. Everything is
read and checked before anything is written: on a bad or missing file it writes nothing but a
message, on stderr and in ``hymy-firstboot-error.txt`` on the boot partition, where IT sees it
when the card is in a PC. Messages never contain the secret or the Wi-Fi password.

The enrolment file stays: the kiosk enrols with it. ``--remove-secret`` (hymy-enrolled.service,
run as root once the identity exists) takes the secret out afterwards, because the kiosk itself
may not write to the boot partition.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .enrol import EnrolFile, EnrolFileError, load_enrol_file, remove_secret
from .errors import DeviceError
from .identity import IDENTITY_NAME

ENROL_NAME = "hymy-enrol.toml"
ERROR_NAME = "hymy-firstboot-error.txt"
DONE_NAME = "firstboot.done"
KIOSK_USER = "hymy"
ADMIN_USER = "hymy-admin"
WIFI_CONNECTION = "hymy-wifi"
OVERLAY_ARG = "overlayroot=tmpfs"
SSH_UNIT = "ssh.service"
SSH_WANTS = "etc/systemd/system/multi-user.target.wants/ssh.service"
SSH_SOCKET_WANTS = "etc/systemd/system/sockets.target.wants/ssh.socket"
#: Firewall additions (images/stage-hymy/07-harden/files/nftables.conf includes /etc/nftables.d/*.nft).
NFT_SSH = "etc/nftables.d/hymy-ssh.nft"
NFT_BROKER = "etc/nftables.d/hymy-broker.nft"
#: Outbound ports the image's firewall always allows (HTTPS, MQTT over TLS).
OPEN_PORTS = frozenset({443, 8883})

#: An OpenSSH public key line: type, base64 blob, optional comment.
_KEY_RE = re.compile(
    r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\n\r]*)?"
)
_SERIAL_RE = re.compile(r"[0-9a-f]{8,16}")


class FirstbootError(DeviceError):
    """IT's files (or this machine) do not allow a first boot; the message says what to fix, never a secret."""


@dataclass(frozen=True, slots=True)
class Wifi:
    """The ``[wifi]`` table: one WPA-PSK network."""

    ssid: str
    psk: str = field(repr=False)
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What the first boot will do, read and checked before anything is written."""

    hostname: str
    enrol: EnrolFile
    wifi: Wifi | None
    #: Keys from ``[ssh]`` for ADMIN_USER; Imager's keys are cloud-init's to install.
    ssh_keys: tuple[str, ...]
    ssh_from_user_data: bool
    notes: tuple[str, ...] = ()

    @property
    def ssh(self) -> bool:
        """Whether SSH is asked for (by hymy-enrol.toml's ``[ssh]`` or Imager's user-data keys)."""
        return bool(self.ssh_keys) or self.ssh_from_user_data


def read_serial(root: Path) -> str:
    """The Pi's serial number (lower-case hex), from the device tree or /proc/cpuinfo under ``root``."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        raw = (root / "proc/device-tree/serial-number").read_text(encoding="ascii").strip("\0\n ").lower()
        if _SERIAL_RE.fullmatch(raw):
            return raw
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in (root / "proc/cpuinfo").read_text(encoding="ascii").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Serial" and _SERIAL_RE.fullmatch(value.strip().lower()):
                return value.strip().lower()
    raise FirstbootError(f"cannot read this Pi's serial number under {root} (proc/device-tree or proc/cpuinfo)")


def hostname_for(serial: str) -> str:
    """``hymy-`` and the serial without its leading zeros: unique per Pi, and the same at every re-image."""
    tail = serial.lstrip("0")
    if not tail:
        raise FirstbootError(f"this Pi's serial number {serial!r} is all zeros")
    return f"hymy-{tail}"


def _wifi(path: Path, table: Any) -> Wifi | None:
    if table is None:
        return None
    table = dict(table)
    ssid, psk, hidden = table.pop("ssid", None), table.pop("psk", None), table.pop("hidden", False)
    if table:
        raise FirstbootError(f"{path}: wifi.{sorted(table)[0]}: unknown key (ssid, psk and hidden are known)")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32 or any(ord(c) < 32 for c in ssid):
        raise FirstbootError(f"{path}: wifi.ssid: must be the network's name, 1..32 bytes")
    if not isinstance(psk, str) or not (
        (8 <= len(psk) <= 63 and all(32 <= ord(c) < 127 for c in psk)) or re.fullmatch(r"[0-9A-Fa-f]{64}", psk)
    ):
        raise FirstbootError(f"{path}: wifi.psk: must be the WPA password, 8..63 printable ASCII characters")
    if not isinstance(hidden, bool):
        raise FirstbootError(f"{path}: wifi.hidden: must be true or false")
    return Wifi(ssid, psk, hidden)


def _ssh_keys(path: Path, table: Any) -> tuple[str, ...]:
    if table is None:
        return ()
    table = dict(table)
    keys = table.pop("authorized_keys", None)
    if table:
        raise FirstbootError(f"{path}: ssh.{sorted(table)[0]}: unknown key (authorized_keys is known)")
    if not isinstance(keys, list) or not keys:
        raise FirstbootError(f"{path}: ssh.authorized_keys: must be a list of public keys (SSH is key-only)")
    for n, key in enumerate(keys, 1):
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key.strip()):
            raise FirstbootError(f"{path}: ssh.authorized_keys: key {n} is not an OpenSSH public key line")
    return tuple(k.strip() for k in keys)


def _user_data(boot: Path) -> tuple[bool, list[str]]:
    """Whether Imager's user-data gives SSH public keys, and notes on what the image ignores there."""
    try:
        text = (boot / "user-data").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False, []
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    keys = any(_KEY_RE.search(ln) for ln in lines)
    notes = []
    if any(re.match(r"\s*ssh_pwauth\s*:\s*(true|yes)\b", ln) for ln in lines):
        notes.append("user-data asks for SSH password login: this image allows keys only")
    return keys, notes


def _network_config_has_wifi(boot: Path) -> bool:
    try:
        text = (boot / "network-config").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(re.match(r"\s*wifis\s*:", ln) for ln in text.splitlines())


def _passwd(root: Path, user: str) -> tuple[int, int, Path] | None:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in (root / "etc/passwd").read_text(encoding="utf-8").splitlines():
            parts = line.split(":")
            if len(parts) >= 7 and parts[0] == user:
                return int(parts[2]), int(parts[3]), Path(parts[5])
    return None


def read_plan(boot: Path, root: Path, *, overlay: bool = True) -> Plan:
    """Read and check everything the first boot needs; writes nothing. FirstbootError says what is wrong."""
    path = boot / ENROL_NAME
    try:
        enrol = load_enrol_file(path)
    except EnrolFileError as exc:
        raise FirstbootError(str(exc)) from None
    data = tomllib.loads(path.read_text(encoding="utf-8"))  # parsed once already: cannot fail now
    wifi = _wifi(path, data.get("wifi"))
    ssh_keys = _ssh_keys(path, data.get("ssh"))
    ssh_from_user_data, notes = _user_data(boot)
    if wifi is not None and _network_config_has_wifi(boot):
        notes.append("Wi-Fi is in both network-config (cloud-init sets it up) and hymy-enrol.toml [wifi]")
    if (boot / "ssh").exists() or (boot / "ssh.txt").exists():
        notes.append("the 'ssh' file on the boot partition is ignored: ask for SSH in hymy-enrol.toml [ssh]")
    if ssh_keys and _passwd(root, ADMIN_USER) is None:
        raise FirstbootError(f"this image has no {ADMIN_USER} user for [ssh] (etc/passwd under {root})")
    if overlay and not (boot / "cmdline.txt").is_file():
        raise FirstbootError(f"no cmdline.txt in {boot}: is --boot the boot partition?")
    hostname = hostname_for(read_serial(root))
    return Plan(hostname, enrol, wifi, ssh_keys, ssh_from_user_data, tuple(notes))


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write atomically with ``mode`` (a temp file beside it, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)  # the umask does not decide
    os.replace(tmp, path)


def _chown(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, gid)


def nm_keyfile(wifi: Wifi) -> str:
    """A NetworkManager keyfile (nm-settings-keyfile(5)) for a WPA-PSK network, autoconnecting over DHCP."""
    ssid = wifi.ssid.replace("\\", "\\\\")
    con_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"hymy-wifi:{wifi.ssid}")
    return (
        f"[connection]\nid={WIFI_CONNECTION}\nuuid={con_uuid}\ntype=wifi\nautoconnect=true\n\n"
        f"[wifi]\nmode=infrastructure\nssid={ssid}\nhidden={'true' if wifi.hidden else 'false'}\n\n"
        f"[wifi-security]\nkey-mgmt=wpa-psk\npsk={wifi.psk}\n\n"
        "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\naddr-gen-mode=default\n"
    )


def _set_hostname(root: Path, hostname: str) -> None:
    _write(root / "etc/hostname", hostname + "\n")
    hosts = root / "etc/hosts"
    try:
        lines = hosts.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = ["127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"]
    kept = [ln for ln in lines if not ln.startswith("127.0.1.1")]
    _write(hosts, "\n".join([*kept, f"127.0.1.1\t{hostname}"]) + "\n")


def _set_ssh(root: Path, plan: Plan) -> None:
    wants = root / SSH_WANTS
    if plan.ssh_keys:
        found = _passwd(root, ADMIN_USER)
        assert found is not None  # read_plan checked
        uid, gid, home = found
        ssh_dir = root / home.relative_to("/") / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        _write(ssh_dir / "authorized_keys", "".join(k + "\n" for k in plan.ssh_keys), 0o600)
        _chown(ssh_dir, uid, gid)
        _chown(ssh_dir / "authorized_keys", uid, gid)
    if plan.ssh:
        wants.parent.mkdir(parents=True, exist_ok=True)
        if not wants.is_symlink():
            wants.symlink_to(f"/usr/lib/systemd/system/{SSH_UNIT}")
        _write(root / NFT_SSH, "# SSH asked for at first boot (device/firstboot.py)\n" + _nft_rule("input", 22))
    else:  # cloud-init or an 'ssh' file may have turned it on: off unless asked here
        for link in (wants, root / SSH_SOCKET_WANTS, root / NFT_SSH):
            with contextlib.suppress(FileNotFoundError):
                link.unlink()


def _nft_rule(chain: str, port: int) -> str:
    return f"add rule inet hymy {chain} tcp dport {port} ct state new accept\n"


def _set_broker_port(root: Path, plan: Plan) -> None:
    """Open the broker port hymy-enrol.toml names when the firewall does not already (e.g. 1883)."""
    path = root / NFT_BROKER
    if plan.enrol.broker is not None and plan.enrol.broker[1] not in OPEN_PORTS:
        _write(
            path,
            "# the broker hymy-enrol.toml names (device/firstboot.py)\n" + _nft_rule("output", plan.enrol.broker[1]),
        )
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _enable_overlay(boot: Path) -> None:
    cmdline = boot / "cmdline.txt"
    words = cmdline.read_text(encoding="utf-8").split()
    if OVERLAY_ARG not in words:
        _write(cmdline, " ".join([OVERLAY_ARG, *words]) + "\n", 0o755)


def _drop_psk(path: Path) -> None:
    """Take the Wi-Fi password out of the enrolment file once it is in NetworkManager's keyfile."""
    text = path.read_text(encoding="utf-8")
    kept = "".join(ln for ln in text.splitlines(keepends=True) if not re.match(r"\s*psk\s*=", ln))
    tomllib.loads(kept)  # still valid TOML, or leave the file alone
    _write(path, kept, 0o755)


def apply_plan(plan: Plan, boot: Path, root: Path, data: Path, *, overlay: bool = True) -> None:
    """Write what ``plan`` says; the last step marks the first boot done (``<data>/firstboot.done``)."""
    if plan.wifi is not None:
        keyfile = root / "etc/NetworkManager/system-connections" / f"{WIFI_CONNECTION}.nmconnection"
        _write(keyfile, nm_keyfile(plan.wifi), 0o600)
    _set_ssh(root, plan)
    _set_broker_port(root, plan)
    _set_hostname(root, plan.hostname)
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.chmod(0o700)
    kiosk = _passwd(root, KIOSK_USER)
    if kiosk is not None:
        _chown(data, kiosk[0], kiosk[1])
    if overlay:
        _enable_overlay(boot)
    with contextlib.suppress(FileNotFoundError):
        (boot / ERROR_NAME).unlink()
    if plan.wifi is not None:
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
            _drop_psk(plan.enrol.path)
    summary = [f"hostname = {plan.hostname}", f"ssh = {'on' if plan.ssh else 'off'}"]
    summary += [f"wifi = {plan.wifi.ssid!r}" if plan.wifi else "wifi = none", f"read_only_root = {overlay}"]
    _write(data / DONE_NAME, "".join(s + "\n" for s in summary), 0o644)


def report_error(boot: Path, message: str) -> None:
    """Tell IT what went wrong: on stderr, and in a file on the boot partition they can read on any PC."""
    print(f"hymy-firstboot: error: {message}", file=sys.stderr)
    text = (
        "The Hymy terminal's first boot stopped, and changed nothing on this card.\r\n\r\n"
        f"Problem: {message}\r\n\r\n"
        f"Fix {ENROL_NAME} on this partition (see images/README.md in the Hymy repository),\r\n"
        "delete this file, put the card back and start the terminal again.\r\n"
    )
    try:
        _write(boot / ERROR_NAME, text, 0o755)
    except OSError as exc:
        print(f"hymy-firstboot: could not write {boot / ERROR_NAME}: {exc}", file=sys.stderr)


def firstboot(boot: Path, root: Path, data: Path, *, overlay: bool = True) -> Plan:
    """Read, check and apply; on FirstbootError report it (stderr and the boot partition) and re-raise."""
    try:
        plan = read_plan(boot, root, overlay=overlay)
    except FirstbootError as exc:
        report_error(boot, str(exc))
        raise
    apply_plan(plan, boot, root, data, overlay=overlay)
    return plan


def remove_secret_if_enrolled(boot: Path, data: Path) -> bool:
    """Once ``<data>/identity.toml`` exists, take the secret out of the boot partition's file; True if it did."""
    path = boot / ENROL_NAME
    if not (data / IDENTITY_NAME).exists() or not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    if not any(re.match(r"\s*secret\s*=", ln) for ln in text.splitlines()):
        return False
    remove_secret(path)
    return True


def build_parser() -> argparse.ArgumentParser:
    """``python -m device.firstboot``'s command line."""
    p = argparse.ArgumentParser(prog="python -m device.firstboot", description=__doc__.split("\n", 1)[0])
    p.add_argument("--boot", type=Path, default=Path("/boot/firmware"), help="the boot partition (%(default)s)")
    p.add_argument("--root", type=Path, default=Path("/"), help="the root file system to configure (%(default)s)")
    p.add_argument("--data", type=Path, help="the data directory (default: ROOT/var/lib/hymy)")
    p.add_argument("--no-overlay", action="store_true", help="leave the root file system writable")
    p.add_argument("--remove-secret", action="store_true", help="only: remove the secret if enrolled")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the first boot (or ``--remove-secret``); 0 when done, 1 with a message when IT's files are wrong."""
    args = build_parser().parse_args(argv)
    data = args.data if args.data is not None else args.root / "var/lib/hymy"
    if args.remove_secret:
        try:
            removed = remove_secret_if_enrolled(args.boot, data)
        except OSError as exc:
            print(f"hymy-firstboot: could not remove the secret: {exc}", file=sys.stderr)
            return 1
        print("secret removed" if removed else "nothing to remove (not enrolled yet, or already removed)")
        return 0
    try:
        plan = firstboot(args.boot, args.root, data, overlay=not args.no_overlay)
    except FirstbootError:
        return 1
    for note in plan.notes:
        print(f"hymy-firstboot: note: {note}", file=sys.stderr)
    ssh = "on (key-only)" if plan.ssh else "off"
    wifi = f", Wi-Fi {plan.wifi.ssid!r}" if plan.wifi else ""
    print(f"hymy-firstboot: {plan.hostname}: SSH {ssh}{wifi}; fleet {plan.enrol.fleet_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
