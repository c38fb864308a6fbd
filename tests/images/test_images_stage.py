"""The image recipe (images/): pi-gen's conventions, shellcheck, systemd-analyze verify, and files that exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from device.settings import NotEnrolled, load_settings

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
STAGE = IMAGES / "stage-hymy"
SUB_STAGES = sorted(p for p in STAGE.iterdir() if p.is_dir())
STEP_SCRIPTS = sorted(STAGE.glob("*/[0-9][0-9]-run*.sh"))
UNIT_SUFFIXES = (".service", ".path", ".timer", ".mount", ".socket")
KIOSK_UNIT = REPO / "device/systemd/hymy-kiosk.service"


def _shell_scripts() -> list[Path]:
    """Every shell file under images/: a bash/sh shebang or a ``# shellcheck shell=`` directive."""
    found = []
    for path in sorted(IMAGES.rglob("*")):
        if not path.is_file() or path.suffix in (".whl", ".md", ".toml"):
            continue
        head = path.read_text(encoding="utf-8", errors="replace")[:200]
        if re.match(r"#!\s*/(usr/)?bin/(env )?(ba)?sh\b", head) or "# shellcheck shell=" in head:
            found.append(path)
    return found


def _units() -> list[Path]:
    units = [p for p in IMAGES.rglob("*") if p.suffix in UNIT_SUFFIXES and p.is_file()]
    return sorted([*units, KIOSK_UNIT])


def _shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        pytest.skip("shellcheck is not installed and this run cannot install it: bash tests/run.sh installs it")
    return path


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not available here (a machine without systemd)")
    return path


def _verify(units_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_systemd_analyze(), "verify", "--man=no", *sorted(str(p) for p in units_dir.iterdir() if p.is_file())],
        capture_output=True,
        text=True,
        check=False,
    )


def _stub_our_binaries(text: str, bin_dir: Path) -> str:
    """Point the image's own programs (not on this machine) at executable stubs, keeping every other path."""
    for prefix in ("/opt/hymy/.venv/bin/", "/usr/local/sbin/"):
        for name in re.findall(re.escape(prefix) + r"([\w.-]+)", text):
            stub = bin_dir / name
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
        text = text.replace(prefix, f"{bin_dir}/")
    return text


def test_every_shell_script_under_images_passes_shellcheck() -> None:
    scripts = _shell_scripts()
    assert STAGE / "prerun.sh" in scripts and IMAGES / "build.sh" in scripts and IMAGES / "config" in scripts
    result = subprocess.run(
        [_shellcheck(), "--external-sources", *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_shell_script_stops_at_the_first_error() -> None:
    for path in _shell_scripts():
        if path.name in ("config", "EXPORT_IMAGE"):  # sourced by pi-gen's own (set -e) build.sh
            continue
        assert "set -euo pipefail" in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("unit", _units(), ids=lambda p: p.name)
def test_every_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    units_dir, bin_dir = tmp_path / "units", tmp_path / "bin"
    units_dir.mkdir()
    bin_dir.mkdir()
    # The unit with its companions (a .path's service), so references resolve as on the terminal.
    for other in _units():
        (units_dir / other.name).write_text(_stub_our_binaries(other.read_text(encoding="utf-8"), bin_dir))
    result = _verify(units_dir)
    ours = [ln for ln in (result.stdout + result.stderr).splitlines() if unit.name in ln]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def _drop_ins() -> list[Path]:
    """The systemd unit drop-ins the steps install (not journald's, timesyncd's or sshd's configuration)."""
    confs = sorted(STAGE.glob("*/files/*-hymy.conf"))
    return [p for p in confs if re.search(r"^\[(Unit|Service|Timer)\]", p.read_text(encoding="utf-8"), re.M)]


@pytest.mark.parametrize("drop_in", _drop_ins(), ids=lambda p: p.name)
def test_every_systemd_drop_in_passes_systemd_analyze_verify(drop_in: Path, tmp_path: Path) -> None:
    text = drop_in.read_text(encoding="utf-8")
    units_dir, bin_dir = tmp_path / "units", tmp_path / "bin"
    units_dir.mkdir()
    bin_dir.mkdir()
    timer = "[Timer]" in text
    base = "[Unit]\nDescription=base\n[Service]\nType=oneshot\nExecStart=/bin/true\n"
    (units_dir / "hymy-dropin-test.service").write_text(base + ("" if timer else _stub_our_binaries(text, bin_dir)))
    if timer:
        (units_dir / "hymy-dropin-test.timer").write_text("[Unit]\nDescription=base\n" + text)
    result = _verify(units_dir)
    assert result.returncode == 0 and "hymy-dropin-test" not in result.stdout + result.stderr, result.stderr


def _copied_sources(script: Path) -> list[str]:
    """The source paths of every ``install``/``cp``/``cat`` of a file in a step (not directories, not ROOTFS_DIR)."""
    sources = []
    for line in script.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] not in ("install", "cp", "cat") or "-d" in words:
            continue
        args, skip = [], False
        for word in words[1:]:
            if skip:
                skip = False
            elif word in ("-m", "-o", "-g"):
                skip = True
            elif word in (">", ">>"):
                break
            elif not word.startswith("-"):
                args.append(word)
        sources += [w for w in (args if words[0] == "cat" else args[:-1]) if "ROOTFS_DIR" not in w]
    return sources


def test_every_file_a_step_copies_exists() -> None:
    checked = 0
    for script in STEP_SCRIPTS:
        for source in _copied_sources(script):
            if source == "${wheels[0]}":  # images/build.sh builds it into 02-install/files/
                assert "02-install/files" in (IMAGES / "build.sh").read_text(encoding="utf-8")
                continue
            assert "$" not in source, f"{script}: cannot check {source}: name the file plainly"
            assert (script.parent / source).is_file(), f"{script.relative_to(REPO)} copies {source}, which is missing"
            checked += 1
    assert checked >= 20


def test_every_file_beside_a_step_is_used_by_it() -> None:
    for files in STAGE.glob("*/files"):
        used = "".join(p.read_text(encoding="utf-8") for p in files.parent.glob("*.sh"))
        for path in files.iterdir():
            if path.name != ".gitignore" and path.suffix != ".whl":
                assert f"files/{path.name}" in used, f"{path.relative_to(REPO)} is never copied"


def test_package_lists_have_one_package_per_line_and_no_duplicates() -> None:
    seen: dict[str, Path] = {}
    lists = sorted(STAGE.glob("*/[0-9][0-9]-packages*"))
    assert lists
    for path in lists:
        for line in path.read_text(encoding="utf-8").splitlines():
            assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", line), f"{path}: {line!r} is not one package name"
            assert line not in seen, f"{line} is in both {seen[line]} and {path}"
            seen[line] = path
    for wanted in ("python3-venv", "nftables", "unattended-upgrades", "fake-hwclock", "systemd-timesyncd"):
        assert wanted in seen


def test_stage_steps_are_named_and_numbered_in_the_order_pi_gen_runs_them() -> None:
    names = [p.name for p in SUB_STAGES]
    assert names == [
        "00-packages",
        "01-user",
        "02-install",
        "03-kiosk",
        "04-firstboot",
        "05-readonly",
        "06-time",
        "07-harden",
    ]
    assert sorted(names) == names and len({n[:2] for n in names}) == len(names)
    for sub in SUB_STAGES:
        for path in sub.iterdir():
            if path.name == "files":
                continue
            assert re.fullmatch(r"\d\d-(run\.sh|run-chroot\.sh|packages|packages-nr|debconf)", path.name), path
            if path.name.endswith("-run.sh"):  # pi-gen skips a run script that is not executable
                assert path.stat().st_mode & 0o111, f"{path} must be executable"
    assert (STAGE / "prerun.sh").stat().st_mode & 0o111
    assert (STAGE / "EXPORT_IMAGE").is_file()


def test_kiosk_unit_in_the_image_is_the_one_in_device_systemd() -> None:
    step = (STAGE / "03-kiosk/00-run.sh").read_text(encoding="utf-8")
    assert "install -m 644 ../../../device/systemd/hymy-kiosk.service" in step
    assert (STAGE / "03-kiosk" / "../../../device/systemd/hymy-kiosk.service").resolve() == KIOSK_UNIT
    assert not list(IMAGES.rglob("hymy-kiosk.service")), "a second copy of the kiosk unit under images/"
    unit = KIOSK_UNIT.read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StartLimitBurst=",
        "RequiresMountsFor=/var/lib/hymy",
    ):
        assert line in unit


def test_image_kiosk_settings_enrol_from_the_boot_partition(tmp_path: Path) -> None:
    with pytest.raises(NotEnrolled) as caught:
        load_settings(STAGE / "03-kiosk/files/kiosk.toml")
    assert caught.value.enrol_file == Path("/boot/firmware/hymy-enrol.toml")
    assert caught.value.identity_file == Path("/var/lib/hymy/identity.toml")


def test_config_builds_trixie_lite_and_then_our_stage() -> None:
    script = f"HYMY_STAGE_DIR={shlex.quote(str(STAGE))}; source {shlex.quote(str(IMAGES / 'config'))}; "
    names = ("RELEASE", "STAGE_LIST", "ENABLE_SSH", "FIRST_USER_NAME", "LOCALE_DEFAULT", "TIMEZONE_DEFAULT")
    script += "".join(f'printf "%s\\n" "${name}"; ' for name in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    values = dict(zip(names, out, strict=True))
    assert values["RELEASE"] == "trixie"
    assert values["STAGE_LIST"] == f"stage0 stage1 stage2 {STAGE}"
    assert values["ENABLE_SSH"] == "0"
    assert not re.search(r"^\s*FIRST_USER_PASS=", (IMAGES / "config").read_text(encoding="utf-8"), re.M)
    assert values["FIRST_USER_NAME"] == "hymy-admin"
    assert (values["LOCALE_DEFAULT"], values["TIMEZONE_DEFAULT"]) == ("fi_FI.UTF-8", "Europe/Helsinki")


def test_ssh_is_key_only_and_the_firewall_opens_only_what_a_terminal_uses() -> None:
    sshd = (STAGE / "07-harden/files/sshd-hymy.conf").read_text(encoding="utf-8")
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin no" in sshd
    nft = (STAGE / "07-harden/files/nftables.conf").read_text(encoding="utf-8")
    assert nft.count("policy drop") == 3
    assert "tcp dport { 443, 8883 } accept" in nft and "udp dport 123 accept" in nft
    assert "dport 22" not in nft, "SSH opens only through /etc/nftables.d/hymy-ssh.nft, written when asked"
    assert 'include "/etc/nftables.d/*.nft"' in nft


def test_the_firewall_and_the_rules_first_boot_adds_pass_nft_check(tmp_path: Path) -> None:
    """nft's own parser (check mode, nothing applied) reads the ruleset with SSH and a broker port added."""
    from device.firstboot import _nft_rule

    nft = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if Path(p).exists()), None)
    if nft is None:
        pytest.skip("nft is not installed: bash tests/run.sh installs nftables")
    extra = tmp_path / "nftables.d"
    extra.mkdir()
    (extra / "hymy-ssh.nft").write_text(_nft_rule("input", 22))
    (extra / "hymy-broker.nft").write_text(_nft_rule("output", 1883))
    text = (STAGE / "07-harden/files/nftables.conf").read_text(encoding="utf-8")
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(text.replace('include "/etc/nftables.d/*.nft"', f'include "{extra}/*.nft"'))
    checked = subprocess.run([nft, "-c", "-f", str(ruleset)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    (extra / "broken.nft").write_text("add rule inet hymy output tcp dport accept\n")  # the check can fail
    assert subprocess.run([nft, "-c", "-f", str(ruleset)], capture_output=True).returncode != 0
