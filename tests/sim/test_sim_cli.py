"""The hymy command lists its subcommands and hands each to its module, importing only that one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
