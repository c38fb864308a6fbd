"""The hymy command lists its subcommands and hands each to its module, importing only that one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from sim import cli


def test_help_lists_every_command_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name, command in cli.COMMANDS.items():
        assert any(line.split() == [name, *command.summary.split()] for line in out.splitlines()), name


def test_version_names_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.startswith("hymy ")


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["nonsense"])
    assert exited.value.code == 2


def test_missing_target_module_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "demo", cli.Command("sim.no_such_module", "x"))
    assert cli.main(["demo", "--fast"]) == 2
    assert "sim.no_such_module does not exist" in capsys.readouterr().err


def test_command_gets_the_rest_of_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hymy_fake_target.py").write_text(
        textwrap.dedent(
            """
            import sys
            seen = []
            def main(argv):
                seen.append((sys.argv[0], argv))
                return 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setitem(cli.COMMANDS, "bench", cli.Command("hymy_fake_target", "x"))
    assert cli.main(["bench", "--runs", "2", "-v"]) == 3
    import hymy_fake_target  # type: ignore[import-not-found]

    assert hymy_fake_target.seen == [("hymy bench", ["--runs", "2", "-v"])]


def test_fleet_command_does_not_import_pygame() -> None:
    code = textwrap.dedent(
        """
        import sys
        from sim.cli import main
        try:
            main(["fleet", "--help"])
        except SystemExit:
            pass
        print("pygame" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr


def test_a_missing_dependency_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One module needs a package at import, the other only once its main runs (a lazily imported part).
    (tmp_path / "hymy_fake_eager.py").write_text("import hymy_no_such_dependency\ndef main(argv): return 0\n")
    (tmp_path / "hymy_fake_lazy.py").write_text("def main(argv):\n    import hymy_no_such_dependency.sub\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setitem(cli.COMMANDS, "kiosk", cli.Command("hymy_fake_eager", "x", "kiosk"))
    monkeypatch.setitem(cli.COMMANDS, "fleet", cli.Command("hymy_fake_lazy", "x", "fleet"))
    assert cli.main(["kiosk", "--help"]) == 2
    err = capsys.readouterr().err
    assert "hymy_no_such_dependency" in err and "pip install 'hymy[kiosk]'" in err
    assert cli.main(["fleet", "serve"]) == 2
    err = capsys.readouterr().err
    assert "hymy_no_such_dependency" in err and "pip install 'hymy[fleet]'" in err


def test_a_missing_module_of_our_own_is_not_blamed_on_an_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hymy_fake_broken.py").write_text("def main(argv):\n    import fleet.no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setitem(cli.COMMANDS, "fleet", cli.Command("hymy_fake_broken", "x", "fleet"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["fleet"])


def test_each_command_names_an_extra_of_the_package() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = set(tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"])
    assert {c.extra for c in cli.COMMANDS.values()} <= extras
    assert cli.COMMANDS["kiosk"].extra == cli.COMMANDS["enrol"].extra == "kiosk"
    assert cli.COMMANDS["fleet"].extra == "fleet"
