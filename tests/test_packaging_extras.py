"""Each extra installs alone and runs its commands: a terminal gets no Flask or broker, a server no pygame.

The package's dependencies are split into extras (pyproject.toml): ``hymy[kiosk]`` for a terminal,
``hymy[fleet]`` for a fleet server, ``hymy[all]`` for everything the README's commands use. For each
(and for the bare package) a fresh virtual environment gets the wheel built from this checkout and
nothing else but what that extra asks for, then runs the ``hymy`` entry point and looks at what is
installed.

The wheel is built once per session. The dependencies' wheels are resolved once per interpreter into
a wheelhouse kept in the running virtual environment (``<sys.prefix>/hymy-wheelhouse``), through pip
as configured on the machine (its local index, else PyPI); after that first time the fresh
environments install from it with ``--no-index``, so a run fetches nothing unless pyproject.toml
asks for something the wheelhouse lacks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the wheel is built from: the project file, the README it names, and the four packages.
SOURCES = ("pyproject.toml", "README.md", "protocol", "device", "fleet", "sim")
WHEELHOUSE = Path(sys.prefix) / "hymy-wheelhouse"
PIP_TIMEOUT_S = 600

#: Import names of what a terminal must not carry, and what a fleet server must not carry.
SERVER_ONLY = ("flask", "werkzeug", "sqlalchemy", "alembic", "psycopg", "waitress", "argon2", "amqtt", "selenium")
TERMINAL_ONLY = ("pygame", "gpiozero", "serial", "sqlite_utils", "amqtt", "selenium")


def _pip(*args: str) -> None:
    """Run this interpreter's pip; fail the test with everything pip said if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _requirements() -> list[str]:
    """Every third-party requirement of every extra but ``test``, self-references expanded."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    reqs = [r for name, rs in extras.items() if name != "test" for r in rs if not r.startswith("hymy[")]
    return sorted(set(reqs))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with this checkout's wheel; the dependencies' wheels are in WHEELHOUSE."""
    out = tmp_path_factory.mktemp("hymy-wheel")
    src = tmp_path_factory.mktemp("hymy-src")
    for name in SOURCES:  # a copy, so building leaves no build/ or egg-info in the shared tree
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(src))
    reqs = _requirements()
    WHEELHOUSE.mkdir(exist_ok=True)
    offline = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-index", "--find-links", str(WHEELHOUSE), "--wheel-dir"]
        + [str(WHEELHOUSE), *reqs],
        capture_output=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    if offline.returncode != 0:  # first run, or pyproject.toml asks for something new: fetch it once
        _pip("wheel", "--find-links", str(WHEELHOUSE), "--wheel-dir", str(WHEELHOUSE), *reqs)
    return out


class Venv:
    """A fresh virtual environment with hymy installed from the wheel, with one extra or none."""

    def __init__(self, path: Path, wheels: Path, extra: str | None) -> None:
        self.path = path
        self.bin = path / "bin"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
        spec = "hymy" if extra is None else f"hymy[{extra}]"
        # The running pip installs into the new environment: quicker than giving each one its own pip.
        _pip(
            "--python",
            str(self.bin / "python"),
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--find-links",
            str(WHEELHOUSE),
            spec,
        )

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run a command from the environment's bin, outside the checkout, as a user would."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.path,
            env=env,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        """Run a command that must succeed; return what it printed."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def importable(self, names: Sequence[str]) -> list[str]:
        """Which of these top-level modules the environment can import."""
        code = "import importlib.util, sys; print(' '.join(n for n in sys.argv[1:] if importlib.util.find_spec(n)))"
        return self.ok("python", "-c", code, *names).split()

    def import_all(self, package: str, skip: Sequence[str] = ()) -> None:
        """Import every module of ``package`` (but ``skip``): the lazily imported ones too."""
        code = (
            "import importlib, pkgutil, sys\n"
            "pkg = importlib.import_module(sys.argv[1])\n"
            "for m in pkgutil.walk_packages(pkg.__path__, sys.argv[1] + '.'):\n"
            "    if m.name not in sys.argv[2:]:\n"
            "        importlib.import_module(m.name)\n"
        )
        self.ok("python", "-c", code, package, *skip)


MakeVenv = Callable[[str | None], Venv]


@pytest.fixture(scope="module")
def make_venv(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> MakeVenv:
    def make(extra: str | None) -> Venv:
        return Venv(tmp_path_factory.mktemp(f"venv-{extra or 'bare'}"), wheels, extra)

    return make


def test_the_bare_package_has_no_dependencies_and_names_the_extra_a_command_needs(make_venv: MakeVenv) -> None:
    venv = make_venv(None)
    assert "hymy" in venv.ok("hymy", "--help")
    venv.ok("python", "-c", "import protocol; protocol.decode")  # the contract needs nothing
    assert "usage: hymy enrol" in venv.ok("hymy", "enrol", "--help")  # enrolment is the standard library only
    for command, extra in (("kiosk", "kiosk"), ("fleet", "fleet"), ("demo", "all"), ("sim", "all"), ("bench", "all")):
        done = venv.run("hymy", command, "--help")
        assert done.returncode == 2 and f"pip install 'hymy[{extra}]'" in done.stderr, (command, done.stderr)


def test_kiosk_extra_runs_the_terminal_and_carries_no_server(make_venv: MakeVenv) -> None:
    venv = make_venv("kiosk")
    assert venv.importable(SERVER_ONLY) == []
    assert "--settings" in venv.ok("hymy", "kiosk", "--help")
    assert "usage: hymy enrol" in venv.ok("hymy", "enrol", "--help")
    venv.import_all("device")
    # The headless terminal opens its vote store and starts syncing (to no broker) until stdin ends.
    said = venv.ok("hymy", "kiosk", "--db", "votes.db", "--device", "term-0001", "--broker", "127.0.0.1:9", stdin="2\n")
    assert "no configuration yet" in said and (venv.path / "votes.db").is_file()
    # The fleet's command line loads (MQTT is here), but its store is not: the command says what to install.
    done = venv.run("hymy", "fleet", "push-config", "desk-001", "1", "--db", "fleet.db")
    assert done.returncode == 2 and "pip install 'hymy[fleet]'" in done.stderr, done.stderr


def test_fleet_extra_runs_the_server_and_carries_no_terminal(make_venv: MakeVenv) -> None:
    venv = make_venv("fleet")
    assert venv.importable(TERMINAL_ONLY) == []
    assert "push-config" in venv.ok("hymy", "fleet", "--help")
    # browser and screens need selenium (hymy[all]); env runs only under alembic.
    venv.import_all("fleet", skip=("fleet.web.browser", "fleet.web.screens", "fleet.migrations.env"))
    # A real store: the schema migrated by Alembic from the packaged migrations, then a configuration.
    said = venv.ok("hymy", "fleet", "push-config", "desk-001", "1", "--unit", "unit-a", "--db", "fleet.db")
    assert "desired configuration is version 1" in said
    done = venv.run("hymy", "kiosk", "--help")
    assert done.returncode == 2 and "pip install 'hymy[kiosk]'" in done.stderr, done.stderr


def test_all_extra_runs_every_command(make_venv: MakeVenv) -> None:
    venv = make_venv("all")
    everything = {*SERVER_ONLY, *TERMINAL_ONLY, "cryptography"}
    assert set(venv.importable(sorted(everything))) == everything
    for command in ("demo", "sim", "bench", "fleet", "kiosk", "enrol"):
        venv.ok("hymy", command, "--help")
    venv.import_all("sim")
