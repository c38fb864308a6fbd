"""The image's install test: run the pi-gen stage's steps in a debootstrapped Debian Trixie root, then start the kiosk.

    sudo .venv/bin/python -m tests.images.install_harness [--stage images/stage-hymy] [--keep]

What it does, in order (each part printed as it goes, and written to ``report.json`` in the work
directory, which tests/images/test_images_install.py reads):

1. A root like Raspberry Pi OS Lite, the base our stage is added to (pi-gen's stages 0-2):
   ``debootstrap --variant=minbase trixie`` from the mirror this machine's apt uses, then the
   Debian packages of Lite that a stage on top may take for granted (``LITE_PACKAGES``), the groups
   pi-gen's stage2 creates (``LITE_GROUPS``), and /boot/firmware with pi-gen's stage1 cmdline.txt
   and config.txt. It is built once and cached as a tarball (``/var/cache/hymy-trixie-root.tar``,
   keyed on the mirror, suite and these lists), so a second run starts in seconds.
   This machine is amd64 and Raspberry Pi OS arm64; the steps are shell, apt and pip, which do
   not depend on the architecture, so the root is the machine's own architecture.
2. The wheel, built from this repository as images/build.sh builds it (``pip wheel --no-deps``).
3. Every sub-stage of the stage in order, as pi-gen's build.sh ``run_sub_stage`` does: for
   NN = 00..99, NN-debconf, NN-packages-nr, NN-packages (apt-get inside the root; packages that
   exist only in Raspberry Pi OS's own repository are left out, ``RPI_ONLY_PACKAGES``),
   NN-run.sh on the host with ROOTFS_DIR set and pi-gen's ``on_chroot`` defined
   (tests/images/pigen_common.sh), NN-run-chroot.sh through ``on_chroot``. Only the steps in
   ``SKIPPED_STEPS`` are left out, each with its reason. A step that fails stops the run.
4. The proof: the kiosk unit's ExecStart, read from the installed
   /etc/systemd/system/hymy-kiosk.service, run inside the root as the unit's User= with its
   SupplementaryGroups=, WorkingDirectory= and Environment=, but SDL_VIDEODRIVER=dummy (no
   screen here) and a NOTIFY_SOCKET that this harness listens on through a directory bind-mounted
   into the root. It must send READY=1 (device/watchdog.py; a terminal that has not enrolled yet
   sends it too, with STATUS=enrolling, from its enrolling screen) and a watchdog ping; then it is
   stopped with SIGTERM as systemd stops it and must exit cleanly within the unit's TimeoutStopSec.

pip inside the root uses the package indexes this machine's pip uses: file:// indexes and
find-links directories are bind-mounted read-only into the root at the same paths and named to
pip through PIP_* variables, so the step scripts need no change.

Needs root (debootstrap, chroot, mounts), debootstrap (installed with apt-get when missing) and
the network to the Debian mirror and PyPI. About 1.5 minutes the first time (debootstrap about 30 s), then about 25 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).with_name("pigen_common.sh")
SUITE = "trixie"
DEFAULT_STAGE = REPO / "images" / "stage-hymy"
DEFAULT_CACHE = Path("/var/cache/hymy-trixie-root.tar")
DEFAULT_WORK = Path("/var/tmp/hymy-image-test")
UNIT = "etc/systemd/system/hymy-kiosk.service"
#: Where the host pip's CA bundle is bound into the root while the steps run (removed afterwards).
CERT_IN_ROOT = "/var/tmp/hymy-install-test-ca.crt"

#: Debian packages that Raspberry Pi OS Lite has (pi-gen stages 0-2, arm64 branch) and that a stage
#: on top of it may rely on without listing them. minbase has none of them: not even an init.
LITE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "systemd-timesyncd",
    "udev",
    "dbus",
    "kmod",
    "iproute2",  # stage0/1
    "locales",
    "netbase",
    "initramfs-tools",  # stage0 locale, stage1 net-tweaks, stage0 firmware
    "adduser",
    "ca-certificates",
    "curl",
    "sudo",
    "ssh",
    "less",
    "rsync",
    "file",
    "python3",
    "python3-venv",
    "python-is-python3",
    "python3-gpiozero",
    "python3-libgpiod",
    "gpiod",
    "network-manager",  # stage1, stage2
)
#: Groups pi-gen's stage2 adds its first user to (those that exist here).
FIRST_USER_GROUPS = (
    "adm",
    "dialout",
    "cdrom",
    "audio",
    "users",
    "sudo",
    "video",
    "games",
    "plugdev",
    "input",
    "gpio",
    "spi",
    "i2c",
    "netdev",
    "render",
)
#: Groups pi-gen's stage2 (01-sys-tweaks/01-run.sh) creates; Debian itself has no gpio, spi or i2c.
LITE_GROUPS = ("input", "spi", "i2c", "gpio")
#: pi-gen's stage1/00-boot-files: the boot partition's files, which a stage may edit.
LITE_BOOT_FILES = {
    "cmdline.txt": "console=serial0,115200 console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait resize\n",
    "config.txt": "# stand-in for pi-gen's stage1/00-boot-files/files/config.txt\n[all]\n",
}

#: Packages only Raspberry Pi OS's own repository (archive.raspberrypi.com) has: a NN-packages
#: line naming one is left out here, and said so. Any other package Debian does not have fails the run
#: (a typo in a package list must not pass as "Raspberry Pi only").
RPI_ONLY_PACKAGES = frozenset(
    {
        "raspi-config",
        "raspberrypi-sys-mods",
        "raspberrypi-net-mods",
        "raspberrypi-archive-keyring",
        "rpi-cloud-init-mods",
        "rpi-eeprom",
        "rpi-update",
        "raspi-utils",
        "rpi-swap",
        "rpi-loop-utils",
        "rpi-usb-gadget",
        "rpi-connect-lite",
        "rpi-keyboard-config",
        "rpi-keyboard-fw-update",
        "rpifwcrypto",
        "rpicam-apps-lite",
        "linux-image-rpi-v8",
        "linux-image-rpi-2712",
        "linux-headers-rpi-v8",
        "linux-headers-rpi-2712",
        "libraspberrypi-bin",
        "raspinfo",
        "python3-rpi-lgpio",
        "python3-lgpio",  # Lite has them (gpiozero's pin factory); Debian does not
    }
)

#: Steps left out, as (sub-stage, step file) -> why. Kept short: everything else runs.
SKIPPED_STEPS: dict[tuple[str, str], str] = {}

#: How long the kiosk may take to send READY=1 (systemd's TimeoutStartSec= default is 90 s).
READY_TIMEOUT_S = 180.0


class HarnessError(Exception):
    """The run failed; the message says at which step and why."""


@dataclasses.dataclass
class Step:
    substage: str
    name: str
    status: str  # "ran" | "skipped" | "failed"
    seconds: float = 0.0
    detail: str = ""


@dataclasses.dataclass
class Report:
    stage: str
    rootfs: str
    mirror: str = ""
    base_cached: bool = False
    base_seconds: float = 0.0
    debootstrap_seconds: float | None = None
    wheel: str = ""
    steps: list[Step] = dataclasses.field(default_factory=list)
    skipped_packages: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    checks: dict[str, object] = dataclasses.field(default_factory=dict)
    kiosk: dict[str, object] = dataclasses.field(default_factory=dict)
    ok: bool = False
    error: str = ""
    seconds: float = 0.0


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    log: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command, its output teed to ``log`` (and the terminal); raise HarnessError when it fails."""
    out = subprocess.run(
        list(cmd),
        env=None if env is None else dict(env),
        cwd=cwd,
        input=stdin,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {shlex.join(cmd)}\n{out.stdout}\n")
    if check and out.returncode != 0:
        tail = "\n".join(out.stdout.splitlines()[-40:])
        raise HarnessError(f"{shlex.join(cmd)} exited {out.returncode}:\n{tail}")
    return out


# --- the host: mirror, pip indexes, mounts -------------------------------------------------------------


def apt_mirror(
    sources: Sequence[Path] = (Path("/etc/apt/sources.list"),), sources_d: Path = Path("/etc/apt/sources.list.d")
) -> str:
    """The Debian mirror this machine's apt uses (its first .../debian URI), else deb.debian.org."""
    files = [p for p in sources if p.is_file()] + (sorted(sources_d.glob("*")) if sources_d.is_dir() else [])
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            uris = re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", line)
            for uri in uris:
                if re.search(r"/debian/?$", uri):
                    return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def pip_sources(environ: Mapping[str, str] = os.environ) -> tuple[dict[str, str], list[Path]]:
    """The package indexes this machine's pip uses, as PIP_* variables, and the local directories they name.

    Read from ``pip config list`` (all of pip's config files) and PIP_* variables, which win.
    """
    config: dict[str, str] = {}
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    for line in listed.splitlines():
        m = re.match(r"^(?::env:|global|install)\.([\w-]+)='(.*)'$", line.strip())
        if m and m.group(1) in ("index-url", "extra-index-url", "find-links", "cert"):
            config[m.group(1)] = m.group(2)
    for key in ("index-url", "extra-index-url", "find-links", "cert"):
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            config[key] = value
    env: dict[str, str] = {}
    local: list[Path] = []
    cert = config.pop("cert", None)
    if cert and Path(cert).is_file():
        # The CA bundle that this machine's pip trusts (a TLS-intercepting proxy's CA, say), bound into the root at
        # CERT_IN_ROOT. Named through SSL_CERT_FILE, not PIP_CERT: pip >= 24.2 verifies through truststore, which
        # reads OpenSSL's default paths (SSL_CERT_FILE), and on Python 3.13 ignored PIP_CERT here.
        env["SSL_CERT_FILE"] = CERT_IN_ROOT
        local.append(Path(cert))
    for key, value in config.items():
        env["PIP_" + key.upper().replace("-", "_")] = value
        for item in value.split():
            path = (
                Path(item[len("file://") :])
                if item.startswith("file://")
                else Path(item)
                if item.startswith("/")
                else None
            )
            if path is None:
                continue
            # Bind the index's top directory: a simple/ index's links may point beside it.
            top = path.parent if path.name == "simple" else path
            if top.is_dir() and top not in local:
                local.append(top)
    return env, local


def in_rootfs(rootfs: Path, path: Path) -> Path:
    """Where a host path is bound inside the root: the same path, but the CA bundle at CERT_IN_ROOT."""
    return rootfs / (CERT_IN_ROOT if path.is_file() else str(path)).lstrip("/")


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    real = os.path.realpath(root)
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == real or target.startswith(real + "/"):
                found.append(target)
    return sorted(found, key=len, reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount everything under ``root`` (as pi-gen's ``unmount`` does at the end of a stage)."""
    for _ in range(6):
        targets = mounts_under(root)
        if not targets:
            return
        for target in targets:
            subprocess.run(["umount", target], capture_output=True)
        if mounts_under(root):
            for target in mounts_under(root):
                subprocess.run(["umount", "-l", target], capture_output=True)
            time.sleep(0.5)
    left = mounts_under(root)
    if left:
        raise HarnessError(f"could not unmount {left}; not removing {root}")


def remove_tree(path: Path) -> None:
    """Remove a work directory, but never through a mount (a bound /dev or package index)."""
    if not path.exists():
        return
    unmount_all(path)
    shutil.rmtree(path)


def bind(src: Path, dst: Path, readonly: bool = True) -> list[Path]:
    """Bind ``src`` on ``dst`` (read-only); returns what it made for the mount point, deepest first, to remove later."""
    made = [d for d in [dst, *dst.parents] if not d.exists()]
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.touch()
    run(["mount", "--bind", str(src), str(dst)])
    if readonly:
        run(["mount", "-o", "remount,bind,ro", str(dst)])
    return made


# --- the base root (a stand-in for Raspberry Pi OS Lite) ------------------------------------------------


def _base_key(mirror: str, arch: str) -> str:
    material = json.dumps([SUITE, mirror, arch, LITE_PACKAGES, LITE_GROUPS, LITE_BOOT_FILES], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def chroot_sh(
    rootfs: Path, script: str, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a bash script inside the root (mounts as on_chroot makes them)."""
    shim = f"source {shlex.quote(str(SHIM))}; on_chroot"
    full_env = dict(os.environ if env is None else env)
    full_env["ROOTFS_DIR"] = str(rootfs)
    full_env.setdefault("DEBIAN_FRONTEND", "noninteractive")
    return run(["bash", "-c", shim], env=full_env, stdin=script, log=log)


def build_base(rootfs: Path, mirror: str, log: Path, report: Report) -> None:
    """debootstrap minbase, then what Lite has that our stage may assume."""
    if shutil.which("debootstrap") is None:
        say("installing debootstrap with apt-get")
        run(["apt-get", "update", "-q"], log=log)
        run(
            ["apt-get", "install", "-y", "-q", "debootstrap"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            log=log,
        )
    say(f"debootstrap --variant=minbase {SUITE} {rootfs} {mirror}")
    started = time.monotonic()
    run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror], log=log)
    report.debootstrap_seconds = round(time.monotonic() - started, 1)
    say(f"debootstrap took {report.debootstrap_seconds:.0f} s")
    security = (
        mirror.rsplit("/", 1)[0] + "/debian-security"
        if mirror.endswith("/debian")
        else "http://deb.debian.org/debian-security"
    )
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    # As pi-gen's stage0/00-configure-apt/files/debian.sources.
    components = "Components: main contrib non-free non-free-firmware\n"
    keyring = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}/\nSuites: {SUITE} {SUITE}-updates\n{components}{keyring}\n"
        f"Types: deb\nURIs: {security}/\nSuites: {SUITE}-security\n{components}{keyring}"
    )
    say("installing the Raspberry Pi OS Lite stand-in: " + " ".join(LITE_PACKAGES))
    try:
        chroot_sh(
            rootfs,
            "apt-get update -q\napt-get -o Acquire::Retries=3 install -y -q "
            + " ".join(LITE_PACKAGES)
            + "\nfor GRP in "
            + " ".join(LITE_GROUPS)
            + '; do groupadd -f -r "$GRP"; done\n'
            + "sed -i 's/^# *en_GB.UTF-8/en_GB.UTF-8/' /etc/locale.gen && locale-gen\napt-get clean\n",
            log,
        )
    finally:
        unmount_all(rootfs)
    boot = rootfs / "boot/firmware"
    boot.mkdir(parents=True, exist_ok=True)
    for name, text in LITE_BOOT_FILES.items():
        (boot / name).write_text(text)


def prepare_base(rootfs: Path, cache: Path, mirror: str, log: Path, report: Report, rebuild: bool) -> None:
    """Unpack the cached base into ``rootfs``, building and caching it first when needed."""
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    key = _base_key(mirror, arch)
    stamp = cache.with_suffix(cache.suffix + ".key")
    started = time.monotonic()
    remove_tree(rootfs)
    if not rebuild and cache.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        say(f"unpacking the cached base root {cache}")
        rootfs.mkdir(parents=True)
        run(
            ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(cache), "-C", str(rootfs)], log=log
        )
        report.base_cached = True
        # As pi-gen's stage0 does: fresh package lists (a cached root's may name files the mirror has dropped).
        try:
            chroot_sh(rootfs, "apt-get update -q\n", log)
        finally:
            unmount_all(rootfs)
    else:
        build_base(rootfs, mirror, log, report)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        say(f"caching the base root as {cache}")
        run(
            ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cpf", str(partial), "-C", str(rootfs), "."],
            log=log,
        )
        partial.replace(cache)
        stamp.write_text(key + "\n")
    report.base_seconds = round(time.monotonic() - started, 1)


def add_first_user(rootfs: Path, name: str, log: Path) -> None:
    """pi-gen's first user, as stage1 (01-sys-tweaks) makes it and stage2 puts it in groups."""
    say(f"adding pi-gen's first user {name} (stage1/stage2)")
    try:
        chroot_sh(
            rootfs,
            f"if ! id -u {shlex.quote(name)} >/dev/null 2>&1; then adduser --disabled-login --gecos '' "
            f"{shlex.quote(name)}; fi\nfor GRP in {' '.join(FIRST_USER_GROUPS)}; do\n"
            f'  if getent group "$GRP" >/dev/null; then adduser {shlex.quote(name)} "$GRP"; fi\ndone\n',
            log,
        )
    finally:
        unmount_all(rootfs)


#: pi-gen's own variables, which a config file does not set for a stage (the harness sets them).
PIGEN_INTERNAL = frozenset(
    {
        "ROOTFS_DIR",
        "STAGE",
        "STAGE_DIR",
        "STAGE_WORK_DIR",
        "PREV_STAGE",
        "PREV_STAGE_DIR",
        "PREV_ROOTFS_DIR",
        "WORK_DIR",
        "BASE_DIR",
        "SCRIPT_DIR",
        "LOG_FILE",
        "STAGE_LIST",
        "DEPLOY_DIR",
        "EXPORT_DIR",
        "EXPORT_ROOTFS_DIR",
        "PATH",
        "PWD",
        "SHLVL",
        "_",
        "OLDPWD",
    }
)


def read_config(config: Path | None, stage: Path) -> dict[str, str]:
    """The variables a pi-gen config file (build.sh -c FILE) sets, sourced as build.sh sources it.

    HYMY_STAGE_DIR is set first, as images/build.sh sets it for images/config.
    """
    if config is None or not config.is_file():
        return {}
    config = config.resolve()
    clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "HYMY_STAGE_DIR": str(stage)}
    before = subprocess.run(["bash", "-c", "env -0"], env=clean, capture_output=True, check=True).stdout
    after = subprocess.run(
        ["bash", "-c", 'set -ea; source "$1"; env -0', "bash", str(config)],
        env=clean,
        capture_output=True,
        cwd=config.parent,
    )
    if after.returncode != 0:
        raise HarnessError(f"sourcing {config} failed: {after.stderr.decode(errors='replace')}")
    old = dict(item.split("=", 1) for item in before.decode().split("\0") if "=" in item)
    new = dict(item.split("=", 1) for item in after.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in new.items() if old.get(k) != v and k not in PIGEN_INTERNAL}


# --- the wheel ---------------------------------------------------------------------------------------------


def wheel_places(stage: Path) -> list[Path]:
    """The sub-stages' files/ directories whose steps take the wheel from there (``files/hymy-*.whl``)."""
    places = []
    for substage in sorted(p for p in stage.iterdir() if p.is_dir()):
        for script in sorted(substage.glob("*-run.sh")):
            if "files/hymy-" in script.read_text():
                places.append(substage / "files")
                break
    return places


@contextlib.contextmanager
def wheel_in_stage(stage: Path, wheel: Path, work: Path) -> Iterator[list[Path]]:
    """Put the wheel where the stage takes it (as images/build.sh does); afterwards, put back what was there."""
    aside = work / "wheels-set-aside"
    placed: list[Path] = []
    moved: list[tuple[Path, Path]] = []
    try:
        for place in wheel_places(stage):
            place.mkdir(exist_ok=True)
            for old in place.glob("hymy-*.whl"):
                target = aside / place.parent.name / old.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(old, target)
                moved.append((target, old))
            shutil.copy2(wheel, place / wheel.name)
            placed.append(place / wheel.name)
        yield placed
    finally:
        for path in placed:
            path.unlink(missing_ok=True)
        for target, old in moved:
            shutil.move(target, old)


def build_wheel(out: Path, log: Path) -> Path:
    """The wheel as images/build.sh builds it: ``pip wheel --no-deps --wheel-dir`` of this repository.

    Built from a copy of the tree, so setuptools' build/ and egg-info (root-owned here) do not land in it.
    """
    remove_tree(out)
    out.mkdir(parents=True)
    src = out.parent / "wheel-src"
    remove_tree(src)
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        "*.egg-info",
        "build",
        "dist",
        "__pycache__",
        "mutants",
        "*.whl",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "node_modules",
    )
    shutil.copytree(REPO, src, ignore=ignore, symlinks=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        log=log,
    )
    shutil.rmtree(src)
    wheels = sorted(out.glob("hymy-*.whl"))
    if len(wheels) != 1:
        raise HarnessError(f"expected one hymy wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


# --- the stage -----------------------------------------------------------------------------------------------


def package_list(path: Path) -> list[str]:
    """A NN-packages file as pi-gen reads it (scripts/remove-comments.sed): comments out, whitespace collapsed."""
    text = re.sub(r"#[^\n]*", "", path.read_text())
    return text.split()


def available(rootfs: Path, packages: Sequence[str], log: Path) -> set[str]:
    """Which of ``packages`` Debian's archive (the root's apt lists) has, as a package or a virtual one."""
    names = [re.split(r"[=/]", p)[0].rstrip("+") for p in packages]
    script = (
        "for p in " + " ".join(shlex.quote(n) for n in names) + "; do\n"
        '  if apt-cache show "$p" >/dev/null 2>&1; then echo "HAVE $p";\n'
        "  elif apt-cache showpkg \"$p\" 2>/dev/null | sed -n '/^Reverse Provides:/,$p' | tail -n +2 | grep -q .;"
        ' then echo "HAVE $p"; fi\ndone\n'
    )
    out = chroot_sh(rootfs, script, log).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("HAVE ")}


def pigen_env(stage: Path, rootfs: Path, work: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The variables pi-gen's build.sh exports to a stage's scripts (defaults from its arm64 branch)."""
    # The host's environment, as pi-gen's scripts get it, less what would point Python or pip at this machine.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "SSL_CERT_FILE", "SSL_CERT_DIR")
        and not k.startswith("PIP_")
    }
    env.update(
        {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "BASE_DIR": str(work),
            "WORK_DIR": str(work),
            "SCRIPT_DIR": str(work / "scripts"),
            "LOG_FILE": str(work / "build.log"),
            "STAGE": stage.name,
            "STAGE_DIR": str(stage),
            "STAGE_WORK_DIR": str(rootfs.parent),
            "ROOTFS_DIR": str(rootfs),
            "PREV_STAGE": "stage2",
            "PREV_ROOTFS_DIR": str(rootfs),
            "RELEASE": SUITE,
            "ARCH": run(["dpkg", "--print-architecture"]).stdout.strip(),
            "IMG_NAME": "hymy-test",
            "IMG_DATE": time.strftime("%Y-%m-%d"),
            "TARGET_HOSTNAME": "raspberrypi",
            "FIRST_USER_NAME": "pi",
            "ENABLE_SSH": "0",
            "PUBKEY_ONLY_SSH": "0",
            "LOCALE_DEFAULT": "en_GB.UTF-8",
            "TIMEZONE_DEFAULT": "Europe/London",
            "ENABLE_CLOUD_INIT": "1",
            "CAPSH_ARG": "--drop=cap_setfcap",
            "GIT_HASH": "0" * 40,
            "PI_GEN": "pi-gen",
            "PI_GEN_RELEASE": "hymy install test",
            # pi-gen's build-docker.sh sets this; without a terminal, debconf would fall back to it anyway.
            "DEBIAN_FRONTEND": "noninteractive",
        }
    )
    env.update(extra)
    return env


def run_step(
    report: Report,
    substage: Path,
    name: str,
    cmd: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    stdin: str | None = None,
    detail: str = "",
) -> None:
    key = (substage.name, name)
    if key in SKIPPED_STEPS:
        say(f"skip {substage.name}/{name}: {SKIPPED_STEPS[key]}")
        report.steps.append(Step(substage.name, name, "skipped", 0.0, SKIPPED_STEPS[key]))
        return
    say(f"Begin {substage.name}/{name}" + (f" ({detail})" if detail else ""))
    started = time.monotonic()
    step = Step(substage.name, name, "ran", 0.0, detail)
    report.steps.append(step)
    try:
        out = run(cmd, env=env, cwd=substage, stdin=stdin, log=log, check=False)
    finally:
        step.seconds = round(time.monotonic() - started, 1)
    if out.returncode != 0:
        step.status = "failed"
        tail = "\n".join(out.stdout.splitlines()[-40:])
        step.detail = (detail + "; " if detail else "") + f"exit {out.returncode}: {tail[-3000:]}"
        raise HarnessError(f"{substage.name}/{name} failed (exit {out.returncode}):\n{tail}")
    say(f"End {substage.name}/{name} ({step.seconds:.0f} s)")


def run_stage(stage: Path, rootfs: Path, work: Path, extra_env: Mapping[str, str], log: Path, report: Report) -> None:
    """pi-gen's run_stage and run_sub_stage (build.sh) for one stage, on ``rootfs``."""
    env = pigen_env(stage, rootfs, work, extra_env)
    (work / "scripts").mkdir(parents=True, exist_ok=True)
    shim = f"source {shlex.quote(str(SHIM))}; "
    if (stage / "SKIP").exists():
        raise HarnessError(f"{stage}/SKIP exists: pi-gen would skip the whole stage")
    try:
        if (stage / "prerun.sh").is_file():
            if not os.access(stage / "prerun.sh", os.X_OK):
                raise HarnessError(f"{stage}/prerun.sh is not executable: pi-gen would skip it without a word")
            run_step(report, stage, "prerun.sh", ["bash", "-c", shim + "exec ./prerun.sh"], env, log)
        for substage in sorted(p for p in stage.iterdir() if p.is_dir()):
            if (substage / "SKIP").exists():
                report.steps.append(Step(substage.name, "*", "skipped", 0.0, "SKIP file in the sub-stage"))
                continue
            for i in (f"{n:02d}" for n in range(100)):
                if (substage / f"{i}-debconf").is_file():
                    text = (substage / f"{i}-debconf").read_text()
                    run_step(
                        report,
                        substage,
                        f"{i}-debconf",
                        ["bash", "-c", shim + "on_chroot"],
                        env,
                        log,
                        stdin=f"debconf-set-selections <<'SELEOF'\n{text}\nSELEOF\n",
                    )
                for suffix, recommends in (("packages-nr", "--no-install-recommends "), ("packages", "")):
                    path = substage / f"{i}-{suffix}"
                    if not path.is_file():
                        continue
                    wanted = package_list(path)
                    have = available(rootfs, [p for p in wanted if not p.endswith("-")], log)
                    rpi_only = [p for p in wanted if p in RPI_ONLY_PACKAGES and p not in have]
                    unknown = [
                        p
                        for p in wanted
                        if not p.endswith("-") and p.rstrip("+") not in have and p not in RPI_ONLY_PACKAGES
                    ]
                    if unknown:
                        report.steps.append(Step(substage.name, path.name, "failed", 0.0, f"not in Debian: {unknown}"))
                        raise HarnessError(
                            f"{substage.name}/{path.name}: Debian {SUITE} has no package {unknown} "
                            "(and they are not in RPI_ONLY_PACKAGES)"
                        )
                    if rpi_only:
                        report.skipped_packages[f"{substage.name}/{path.name}"] = rpi_only
                    chosen = [p for p in wanted if p not in rpi_only]
                    detail = " ".join(chosen) + (
                        f"; left out (Raspberry Pi OS only): {' '.join(rpi_only)}" if rpi_only else ""
                    )
                    if chosen:
                        run_step(
                            report,
                            substage,
                            path.name,
                            ["bash", "-c", shim + "on_chroot"],
                            env,
                            log,
                            stdin=f"apt-get -o Acquire::Retries=3 install {recommends}-y {' '.join(chosen)}\n",
                            detail=detail,
                        )
                if (substage / f"{i}-patches").is_dir():
                    raise HarnessError(f"{substage.name}/{i}-patches: quilt patches are not emulated by this harness")
                script = substage / f"{i}-run.sh"
                if script.is_file():
                    if not os.access(script, os.X_OK):
                        report.steps.append(Step(substage.name, script.name, "failed", 0.0, "not executable"))
                        raise HarnessError(
                            f"{substage.name}/{script.name} is not executable: pi-gen skips it "
                            "('Skip ... (not executable)') and the image silently lacks the step"
                        )
                    run_step(report, substage, script.name, ["bash", "-c", shim + f"exec ./{script.name}"], env, log)
                chroot_script = substage / f"{i}-run-chroot.sh"
                if chroot_script.is_file():
                    run_step(
                        report,
                        substage,
                        chroot_script.name,
                        ["bash", "-c", shim + "on_chroot"],
                        env,
                        log,
                        stdin=chroot_script.read_text(),
                    )
    finally:
        unmount_all(rootfs)


# --- after the stage: what the image has --------------------------------------------------------------------


def in_root(rootfs: Path, cmd: Sequence[str], log: Path) -> subprocess.CompletedProcess[str]:
    return run(["chroot", str(rootfs), *cmd], log=log, check=False)


def check_install(rootfs: Path, log: Path, report: Report) -> None:
    """The hymy user and its groups, and the installed command."""
    ident = in_root(rootfs, ["id", "hymy"], log)
    report.checks["id_hymy"] = ident.stdout.strip() if ident.returncode == 0 else None
    groups = in_root(rootfs, ["id", "-nG", "hymy"], log)
    report.checks["hymy_groups"] = groups.stdout.split() if groups.returncode == 0 else []
    shell = in_root(rootfs, ["getent", "passwd", "hymy"], log).stdout.strip().split(":")
    report.checks["hymy_shell"] = shell[-1] if len(shell) == 7 else None
    try:
        with mounted_for_run(rootfs):
            version = in_root(rootfs, ["/opt/hymy/.venv/bin/hymy", "--version"], log)
            report.checks["hymy_version"] = version.stdout.strip() if version.returncode == 0 else None
            report.checks["hymy_version_output"] = version.stdout.strip()[-2000:]
            python = in_root(rootfs, ["/opt/hymy/.venv/bin/python", "--version"], log)
            report.checks["venv_python"] = python.stdout.strip()
            freeze = in_root(rootfs, ["/opt/hymy/.venv/bin/python", "-m", "pip", "freeze", "--all"], log)
            report.checks["venv_packages"] = freeze.stdout.split()
    finally:
        unmount_all(rootfs)


@contextlib.contextmanager
def mounted_for_run(rootfs: Path) -> Iterator[None]:
    """The mounts on_chroot makes, for running programs inside the root."""
    run(
        ["bash", "-c", f"source {shlex.quote(str(SHIM))}; on_chroot -c true"],
        env={**os.environ, "ROOTFS_DIR": str(rootfs), "CAPSH_ARG": ""},
    )
    yield


def parse_unit(text: str) -> dict[str, list[str]]:
    """A systemd unit's [Service] keys (all values of each, in order; continuation lines joined)."""
    text = re.sub(r"\\\n", " ", text)
    section = ""
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def unit_environment(service: Mapping[str, list[str]], rootfs: Path) -> dict[str, str]:
    """Environment= and EnvironmentFile= as systemd reads them."""
    env: dict[str, str] = {}
    for value in service.get("EnvironmentFile", []):
        optional = value.startswith("-")
        path = rootfs / value.lstrip("-").lstrip("/")
        if not path.is_file():
            if optional:
                continue
            raise HarnessError(f"EnvironmentFile={value} does not exist in the image: systemd would refuse to start")
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", ";")) and "=" in line:
                key, _, val = line.partition("=")
                env[key.strip()] = val.strip().strip('"').strip("'")
    for value in service.get("Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    return env


def run_kiosk(rootfs: Path, work: Path, log: Path, report: Report, timeout: float = READY_TIMEOUT_S) -> None:
    """Start the unit's ExecStart headless as its User=, wait for READY=1 and a watchdog ping, stop it with SIGTERM."""
    unit_path = rootfs / UNIT
    if not unit_path.is_file():
        raise HarnessError(f"the stage installed no /{UNIT}")
    service = parse_unit(unit_path.read_text())
    exec_start = service.get("ExecStart", [""])[-1]
    argv = shlex.split(exec_start)
    if argv and argv[0][0] in "-@:+!":
        argv[0] = argv[0].lstrip("-@:+!")
    if not argv:
        raise HarnessError(f"/{UNIT} has no ExecStart")
    user = service.get("User", ["root"])[-1]
    group = service.get("Group", [user])[-1]
    supplementary = " ".join(service.get("SupplementaryGroups", [])).split()
    workdir = service.get("WorkingDirectory", ["/"])[-1].lstrip("-")
    watchdog_s = float(re.sub(r"s$", "", service.get("WatchdogSec", ["0"])[-1]) or 0)
    stop_timeout = float(re.sub(r"s$", "", service.get("TimeoutStopSec", ["90"])[-1]) or 90)
    env = unit_environment(service, rootfs)
    env["SDL_VIDEODRIVER"] = "dummy"
    env.setdefault("SDL_AUDIODRIVER", "dummy")
    report.kiosk.update(
        {
            "exec_start": argv,
            "user": user,
            "group": group,
            "supplementary_groups": supplementary,
            "working_directory": workdir,
            "unit_environment": unit_environment(service, rootfs),
        }
    )

    # What systemd would do before starting it: StateDirectory=, RuntimeDirectory= owned by the user.
    passwd = in_root(rootfs, ["getent", "passwd", user], log).stdout.strip().split(":")
    if len(passwd) != 7:
        raise HarnessError(f"User={user} of the unit does not exist in the image")
    for key, base in (
        ("StateDirectory", "var/lib"),
        ("RuntimeDirectory", "run"),
        ("LogsDirectory", "var/log"),
        ("CacheDirectory", "var/cache"),
    ):
        for name in " ".join(service.get(key, [])).split():
            path = rootfs / base / name
            if base == "run":
                continue  # made after /run is mounted, below
            path.mkdir(parents=True, exist_ok=True)
            in_root(rootfs, ["chown", f"{user}:{group}", f"/{base}/{name}"], log)

    notify_dir = work / "notify"
    remove_tree(notify_dir)
    notify_dir.mkdir(parents=True)
    sock_path = notify_dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    os.chmod(notify_dir, 0o755)
    os.chmod(sock_path, 0o777)  # the kiosk sends as its own user, as systemd's socket allows
    sock.settimeout(1.0)
    inside = "/run/hymy-test-notify"
    env.update(
        {
            "NOTIFY_SOCKET": f"{inside}/notify",
            "HOME": passwd[5],
            "USER": user,
            "LOGNAME": user,
            "SHELL": passwd[6],
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
        }
    )
    if watchdog_s:
        env["WATCHDOG_USEC"] = str(int(watchdog_s * 1_000_000))
    messages: list[str] = []
    kiosk_log = work / "kiosk.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with mounted_for_run(rootfs):
            for name in " ".join(service.get("RuntimeDirectory", [])).split():
                (rootfs / "run" / name).mkdir(parents=True, exist_ok=True)
                in_root(rootfs, ["chown", f"{user}:{group}", f"/run/{name}"], log)
            bind(notify_dir, rootfs / inside.lstrip("/"), readonly=False)
            # WATCHDOG_PID: every program below execs the next, so the shell's $$ is the kiosk's pid.
            starter = 'cd "$1" && shift && export WATCHDOG_PID=$$ && exec "$@"'
            groups = ",".join(supplementary)
            cmd = [
                "chroot",
                str(rootfs),
                "/usr/bin/setpriv",
                f"--reuid={user}",
                f"--regid={group}",
                f"--groups={groups}" if groups else "--clear-groups",
                "--no-new-privs",
                "/usr/bin/env",
                "-i",
                *(f"{k}={v}" for k, v in sorted(env.items())),
                "/bin/sh",
                "-c",
                starter,
                "sh",
                workdir,
                *argv,
            ]
            report.kiosk["command"] = cmd[2:]
            say("starting the kiosk: " + shlex.join(argv) + f" as {user} (SDL_VIDEODRIVER=dummy)")
            started = time.monotonic()
            with kiosk_log.open("wb") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            ready_at = ping_at = None
            deadline = started + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    data = sock.recv(4096).decode(errors="replace")
                except TimeoutError:
                    continue
                now = round(time.monotonic() - started, 2)
                for line in data.splitlines():
                    messages.append(f"{now:.2f}s {line}")
                    if line == "READY=1" and ready_at is None:
                        ready_at = now
                        say(f"READY=1 after {now:.1f} s")
                    if line == "WATCHDOG=1" and ping_at is None:
                        ping_at = now
                if ready_at is not None and (ping_at is not None or not watchdog_s):
                    break
            report.kiosk["ready_after_s"] = ready_at
            report.kiosk["first_watchdog_ping_s"] = ping_at
            report.kiosk["exited_early"] = proc.poll()
            # Leave it a moment more in its loop (a crash right after READY=1 would show here), then stop it.
            if proc.poll() is None:
                time.sleep(3)
                report.kiosk["alive_after_ready"] = proc.poll() is None
                proc.send_signal(signal.SIGTERM)
                stop_started = time.monotonic()
                try:
                    code = proc.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    code = proc.wait()
                    report.kiosk["killed_after_timeout"] = True
                report.kiosk["stop_seconds"] = round(time.monotonic() - stop_started, 2)
                report.kiosk["exit_code"] = code
            else:
                report.kiosk["alive_after_ready"] = False
                report.kiosk["exit_code"] = proc.returncode
            with contextlib.suppress(TimeoutError, OSError):
                sock.settimeout(0.2)
                while True:
                    data = sock.recv(4096).decode(errors="replace")
                    messages.extend(f"after stop {line}" for line in data.splitlines())
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        sock.close()
        unmount_all(rootfs)
    report.kiosk["notify_messages"] = messages
    report.kiosk["output_tail"] = kiosk_log.read_text(errors="replace")[-4000:]
    status = [m.split("STATUS=", 1)[1] for m in messages if "STATUS=" in m]
    report.kiosk["status"] = status
    if report.kiosk.get("ready_after_s") is None:
        raise HarnessError(
            f"the kiosk sent no READY=1 within {timeout:.0f} s (exit {report.kiosk.get('exit_code')}); "
            f"its output:\n{report.kiosk['output_tail']}"
        )


# --- the whole run -----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.images.install_harness",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", type=Path, default=DEFAULT_STAGE, help="the pi-gen stage (default: %(default)s)")
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help="work directory, emptied first (default: %(default)s)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the cached base root (default: %(default)s)")
    parser.add_argument(
        "--mirror",
        default=os.environ.get("HYMY_DEBIAN_MIRROR") or None,
        help="Debian mirror (default: the one this machine's apt uses)",
    )
    parser.add_argument("--rebuild-base", action="store_true", help="debootstrap again even when the cache is good")
    parser.add_argument("--keep", action="store_true", help="keep the root in the work directory afterwards")
    parser.add_argument("--wheel", type=Path, help="a ready wheel instead of building one")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_STAGE.parent / "config",
        help="pi-gen config file whose variables the steps see, if it exists (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the install test needs root (debootstrap, chroot, mounts)", file=sys.stderr)
        return 2
    stage = args.stage.resolve()
    if not stage.is_dir():
        print(f"error: no stage at {stage}", file=sys.stderr)
        return 2
    work = args.work.resolve()
    rootfs = work / "rootfs"
    started = time.monotonic()
    remove_tree(work)
    work.mkdir(parents=True)
    log = work / "harness.log"
    report = Report(stage=str(stage), rootfs=str(rootfs))
    pip_env, local_indexes = pip_sources()
    try:
        report.mirror = args.mirror or apt_mirror()
        prepare_base(rootfs, args.cache, report.mirror, log, report, args.rebuild_base)
        if args.wheel:
            wheel = args.wheel.resolve()
        else:
            say("building the wheel")
            wheel = build_wheel(work / "wheel", log)
        report.wheel = str(wheel)
        say(f"wheel: {wheel.name}")
        config = read_config(args.config, stage)
        report.checks["config"] = config
        add_first_user(rootfs, config.get("FIRST_USER_NAME", "pi"), log)
        # The local package indexes, read-only at the same paths inside the root, for pip in the steps.
        made: list[Path] = []
        for index in local_indexes:
            made += bind(index, in_rootfs(rootfs, index))
        extra = {**config, **pip_env, "HYMY_WHEEL": str(wheel), "HYMY_WHEEL_DIR": str(wheel.parent)}
        try:
            with wheel_in_stage(stage, wheel, work) as placed:
                report.checks["wheel_placed"] = [str(p) for p in placed]
                run_stage(stage, rootfs, work, extra, log, report)
        finally:
            unmount_all(rootfs)
            for point in sorted(made, key=lambda d: len(str(d)), reverse=True):  # leave only what the stage made
                with contextlib.suppress(OSError):
                    point.rmdir() if point.is_dir() else point.unlink()
        check_install(rootfs, log, report)
        run_kiosk(rootfs, work, log, report)
        report.ok = True
    except HarnessError as exc:
        report.error = str(exc)
        say(f"FAILED: {exc}")
    finally:
        unmount_all(rootfs)
        report.seconds = round(time.monotonic() - started, 1)
        (work / "report.json").write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
        if not args.keep:
            remove_tree(rootfs)
    say(("PASSED" if report.ok else "FAILED") + f" in {report.seconds:.0f} s; report: {work / 'report.json'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
