"""A terminal's first boot (device/firstboot.py) against a directory laid out like a boot partition and a root."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from device import firstboot
from device.enrol import load_enrol_file
from tests.tlsca import TestCA

SECRET = "batch7-Secret_0123456789abcdef"
PSK = "Wifi-Pass-Word-42"
SERIAL = "10000000abcdef12"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx6b3J0ZW5rZXlmb3J0ZXN0c29ubHkxMjM0NTY3 it@hus.example"
CMDLINE = "console=serial0,115200 console=tty3 root=PARTUUID=abcd-02 rootfstype=ext4 fsck.repair=yes rootwait\n"


@pytest.fixture
def card(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(boot, root, data): a fresh card as the image leaves it, before IT's files."""
    boot, root = tmp_path / "boot", tmp_path / "root"
    boot.mkdir()
    (boot / "cmdline.txt").write_text(CMDLINE)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/serial-number").write_bytes(SERIAL.encode() + b"\0")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("hymy\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\thymy\n")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "hymy-admin:x:1000:1000::/home/hymy-admin:/bin/bash\n"
        "hymy:x:999:999::/var/lib/hymy:/usr/sbin/nologin\n"
    )
    return boot, root, root / "var/lib/hymy"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def enrol_text(extra: str = "", *, secret: str = SECRET) -> str:
    return f'fleet_url = "https://hymy.hus.example/"\nsecret = "{secret}"\nca_file = "hymy-ca.pem"\n{extra}'


def snapshot(*dirs: Path) -> dict[str, bytes | str]:
    """Every file and link under ``dirs`` with its content, to prove nothing changed."""
    seen: dict[str, bytes | str] = {}
    for top in dirs:
        for path in sorted(top.rglob("*")):
            if path.is_symlink():
                seen[str(path)] = f"-> {path.readlink()}"
            elif path.is_file():
                seen[str(path)] = path.read_bytes()
    return seen


def run(boot: Path, root: Path, data: Path, *extra: str) -> int:
    return firstboot.main(["--boot", str(boot), "--root", str(root), "--data", str(data), *extra])


def test_good_enrolment_file_sets_hostname_wifi_ssh_and_read_only_root(card, ca, capsys) -> None:
    boot, root, data = card
    (boot / "hymy-ca.pem").write_bytes(ca.ca_file.read_bytes())
    wifi = f'[wifi]\nssid = "HUS-IoT"\npsk = "{PSK}"\n\n[ssh]\nauthorized_keys = ["{KEY}"]\n'
    (boot / "hymy-enrol.toml").write_text(enrol_text(wifi))

    assert run(boot, root, data) == 0

    assert (root / "etc/hostname").read_text() == "hymy-10000000abcdef12\n"
    assert "127.0.1.1\thymy-10000000abcdef12" in (root / "etc/hosts").read_text().splitlines()
    keyfile = root / "etc/NetworkManager/system-connections/hymy-wifi.nmconnection"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    text = keyfile.read_text()
    assert "ssid=HUS-IoT\n" in text and f"psk={PSK}\n" in text and "key-mgmt=wpa-psk\n" in text
    keys = root / "home/hymy-admin/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700
    assert (root / firstboot.SSH_WANTS).readlink() == Path("/usr/lib/systemd/system/ssh.service")
    assert "tcp dport 22" in (root / firstboot.NFT_SSH).read_text()
    assert (boot / "cmdline.txt").read_text() == "overlayroot=tmpfs " + CMDLINE
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert "hostname = hymy-10000000abcdef12" in (data / firstboot.DONE_NAME).read_text()
    # The enrolment file stays for the kiosk, still valid, its secret in place; the Wi-Fi password is taken out.
    left = load_enrol_file(boot / "hymy-enrol.toml")
    assert left.secret == SECRET and left.ca_file == boot / "hymy-ca.pem"
    assert PSK not in (boot / "hymy-enrol.toml").read_text()
    out = capsys.readouterr()
    assert "hymy-10000000abcdef12: SSH on (key-only), Wi-Fi 'HUS-IoT'" in out.out
    assert SECRET not in out.out + out.err and PSK not in out.out + out.err


def test_without_ssh_asked_ssh_is_turned_off_even_if_cloud_init_turned_it_on(card) -> None:
    boot, root, data = card
    (boot / "hymy-enrol.toml").write_text(enrol_text().replace('ca_file = "hymy-ca.pem"\n', ""))
    (boot / "user-data").write_text("#cloud-config\nssh_pwauth: true\n#ssh_authorized_keys:\n#- " + KEY + "\n")
    wants = root / firstboot.SSH_WANTS
    wants.parent.mkdir(parents=True)
    wants.symlink_to("/usr/lib/systemd/system/ssh.service")

    assert run(boot, root, data) == 0

    assert not wants.is_symlink() and not (root / firstboot.NFT_SSH).exists()
    assert not (root / "home/hymy-admin/.ssh").exists()
    assert not (root / "etc/NetworkManager").exists()
    assert "ssh = off" in (data / firstboot.DONE_NAME).read_text()


def test_ssh_keys_in_imagers_user_data_turn_ssh_on_key_only(card) -> None:
    boot, root, data = card
    (boot / "hymy-enrol.toml").write_text(enrol_text().replace('ca_file = "hymy-ca.pem"\n', ""))
    (boot / "user-data").write_text(f"#cloud-config\nusers:\n- name: it\n  ssh_authorized_keys:\n  - {KEY}\n")
    (boot / "network-config").write_text("network:\n  version: 2\n  wifis:\n    wlan0:\n      dhcp4: true\n")

    assert run(boot, root, data, "--no-overlay") == 0

    assert (root / firstboot.SSH_WANTS).is_symlink()
    assert not (root / "etc/NetworkManager").exists(), "network-config's Wi-Fi is cloud-init's, not written twice"
    assert (boot / "cmdline.txt").read_text() == CMDLINE


def test_a_plain_mqtt_broker_in_the_file_opens_its_port_and_nothing_else(card) -> None:
    boot, root, data = card
    text = enrol_text('broker = "mqtt.hus.example:1883"\n').replace('ca_file = "hymy-ca.pem"\n', "")
    (boot / "hymy-enrol.toml").write_text(text)

    assert run(boot, root, data) == 0

    assert "output tcp dport 1883" in (root / firstboot.NFT_BROKER).read_text()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (None, "no enrolment file"),
        ('fleet_url = "https://hymy.hus.example/"\nsecret = "' + SECRET + '"\nbroken = [\n', "not valid TOML"),
        ('fleet_url = "ftp://hymy.hus.example/"\nsecret = "' + SECRET + '"\n', "fleet_url"),
        ('fleet_url = "http://hymy.hus.example/"\nsecret = "' + SECRET + '"\n', "fleet_url"),
        ('fleet_url = "https://hymy.hus.example/"\n', "secret: is required"),
        ('fleet_url = "https://hymy.hus.example/"\nsecret = "' + SECRET + '"\nca_file = "nope.pem"\n', "ca_file"),
        (enrol_text('[wifi]\nssid = "HUS-IoT"\npsk = "short"\n'), "wifi.psk"),
        (enrol_text('[wifi]\nssid = "HUS-IoT"\npassword = "' + PSK + '"\n'), "wifi.password"),
        (enrol_text('[ssh]\nauthorized_keys = ["hunter2"]\n'), "ssh.authorized_keys"),
    ],
    ids=[
        "missing",
        "malformed-toml",
        "bad-scheme",
        "plain-http",
        "no-secret",
        "missing-ca",
        "short-psk",
        "typo",
        "bad-key",
    ],
)
def test_bad_or_missing_enrolment_file_leaves_a_clear_message_and_changes_nothing(
    card, ca, capsys, text, named
) -> None:
    boot, root, data = card
    if text is not None:
        (boot / "hymy-ca.pem").write_bytes(ca.ca_file.read_bytes())
        (boot / "hymy-enrol.toml").write_text(text)
    before = snapshot(boot, root)

    assert run(boot, root, data) == 1

    message = (boot / firstboot.ERROR_NAME).read_text()
    after = snapshot(boot, root)
    del after[str(boot / firstboot.ERROR_NAME)]
    assert after == before and not data.exists()
    err = capsys.readouterr().err
    assert named in message and named in err
    assert "changed nothing" in message
    for secret in (SECRET, PSK, "hunter2"):
        assert secret not in message and secret not in err


def test_a_fixed_file_clears_the_last_error(card, ca) -> None:
    boot, root, data = card
    (boot / "hymy-enrol.toml").write_text('fleet_url = "https://hymy.hus.example/"\n')
    assert run(boot, root, data) == 1
    (boot / "hymy-ca.pem").write_bytes(ca.ca_file.read_bytes())
    (boot / "hymy-enrol.toml").write_text(enrol_text())

    assert run(boot, root, data) == 0

    assert not (boot / firstboot.ERROR_NAME).exists()


def test_serial_comes_from_cpuinfo_when_the_device_tree_has_none(card) -> None:
    boot, root, _ = card
    (root / "proc/device-tree/serial-number").unlink()
    (root / "proc/cpuinfo").write_text("processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 00000000c0ffee42\n")
    assert firstboot.hostname_for(firstboot.read_serial(root)) == "hymy-c0ffee42"


def test_no_serial_number_is_an_error_that_changes_nothing(card) -> None:
    boot, root, data = card
    (root / "proc/device-tree/serial-number").unlink()
    (boot / "hymy-enrol.toml").write_text(enrol_text().replace('ca_file = "hymy-ca.pem"\n', ""))
    assert run(boot, root, data) == 1
    assert "serial number" in (boot / firstboot.ERROR_NAME).read_text()
    assert (root / "etc/hostname").read_text() == "hymy\n"


def test_secret_is_removed_from_the_boot_partition_only_once_enrolled(card) -> None:
    boot, _, data = card
    (boot / "hymy-enrol.toml").write_text(enrol_text().replace('ca_file = "hymy-ca.pem"\n', ""))

    assert firstboot.main(["--remove-secret", "--boot", str(boot), "--data", str(data)]) == 0
    assert SECRET in (boot / "hymy-enrol.toml").read_text()

    data.mkdir(parents=True)
    (data / "identity.toml").write_text("# written by enrolment\n")
    assert firstboot.remove_secret_if_enrolled(boot, data) is True
    text = (boot / "hymy-enrol.toml").read_text()
    assert SECRET not in text and "fleet_url" in text
    assert firstboot.remove_secret_if_enrolled(boot, data) is False
