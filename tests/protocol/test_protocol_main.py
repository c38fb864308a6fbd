"""`python -m protocol check` tells a terminal builder whether a payload follows the contract."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from protocol import TerminalState, encode
from protocol.__main__ import main


def test_a_valid_payload_is_printed_in_canonical_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "state.json"
    payload.write_bytes(encode(TerminalState("term-0001", True, 3, 1_700_000_000_000)))
    assert main(["check", str(payload), "--topic", "hymy/v1/term-0001/state"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid TerminalState")
    assert '"conn": 3' in out


def test_a_payload_on_another_terminals_topic_is_rejected_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "state.json"
    payload.write_bytes(encode(TerminalState("term-0001", True, 3, 1_700_000_000_000)))
    assert main(["check", str(payload), "--topic", "hymy/v1/term-0002/state"]) == 1
    assert "rejected (device_mismatch)" in capsys.readouterr().err


def test_stdin_garbage_is_rejected_as_malformed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff{not json")))
    assert main(["check", "-"]) == 1
    assert "rejected (malformed)" in capsys.readouterr().err


def test_spec_names_the_contract_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec"]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()
