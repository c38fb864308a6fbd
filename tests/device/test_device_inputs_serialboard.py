"""The serial button board over loop:// and a pty pair: presses, LED commands, bad input survived, unplug survived."""

from __future__ import annotations

import logging
import os
import select
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from device.inputs import AnswerSource, InputError
from device.inputs.serialboard import PROTOCOL_VERSION, BoardInfo, SerialBoard
from tests.waiting import wait_until


class PtyBoard:
    """Plays the board on the master side of a pty, reached through a symlink as udev's by-id names are.

    ``unplug`` closes the master and removes the link (the device node goes away, as on a USB
    unplug); ``plug`` makes a new pty behind the same link.
    """

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self._pending = b""
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before the terminal opens and configures it
        name = os.ttyname(slave)
        # Kept open: with no slave open at all, reading the master fails with EIO before the terminal opens it.
        self.master, self.slave = master, slave
        self._pending = b""
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(name)

    def unplug(self) -> None:
        self.close()
        self.link.unlink()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, line: bytes, timeout: float = 5.0) -> None:
        """Read lines from the terminal until ``line`` comes, or fail."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                got, self._pending = self._pending.split(b"\n", 1)
                if got == line:
                    return
            left = deadline - time.monotonic()
            assert left > 0, f"board never got {line!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                self._pending += os.read(self.master, 1024)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


@pytest.fixture
def pty_board(tmp_path: Path) -> Iterator[PtyBoard]:
    """A fake board on a pty, reachable at ``pty_board.link``."""
    board = PtyBoard(tmp_path / "hymy-board")
    yield board
    board.close()


@pytest.fixture
def answers() -> list[int]:
    """Answers delivered by the source under test (list.append is thread-safe)."""
    return []


@pytest.fixture
def connected(pty_board: PtyBoard, answers: list[int]) -> Iterator[SerialBoard]:
    """A started SerialBoard on the pty that has said HELLO; stopped afterwards."""
    board = SerialBoard(str(pty_board.link), retry_initial_s=0.02, retry_max_s=0.1, read_timeout_s=0.02)
    board.start(answers.append)
    pty_board.expect(b"HELLO?")
    pty_board.send(b"HELLO hymy-board 1 4\n")
    assert board.hello.wait(5)
    yield board
    board.stop()


@pytest.fixture
def loop_port() -> serial.SerialBase:
    """A pyserial loop:// port: what is written to it comes back."""
    return serial.serial_for_url("loop://", timeout=0.02)


def test_is_an_answer_source_and_hears_hello(connected: SerialBoard) -> None:
    source: AnswerSource = connected
    assert source.kind == "serial"
    assert connected.board == BoardInfo(PROTOCOL_VERSION, 4)
    assert connected.connected


def test_presses_become_answers_over_a_pty(connected: SerialBoard, pty_board: PtyBoard, answers: list[int]) -> None:
    pty_board.send(b"BTN 0\nBTN 3\r\nBTN 1\n")
    wait_until(lambda: len(answers) == 3, what="three answers")
    assert answers == [0, 3, 1]
    assert connected.counters["presses"] == 3


def test_presses_over_loop_url(loop_port: serial.SerialBase, answers: list[int]) -> None:
    board = SerialBoard("loop://", open_port=lambda: loop_port)
    board.start(answers.append)
    try:
        wait_until(lambda: board.counters["unknown"] == 1, what="our own HELLO? echoed back")
        loop_port.write(b"BTN 2\n")
        wait_until(lambda: answers == [2], what="answer")
    finally:
        board.stop()


def test_a_line_in_pieces_is_put_together(loop_port: serial.SerialBase, answers: list[int]) -> None:
    board = SerialBoard("loop://", open_port=lambda: loop_port)
    board.start(answers.append)
    try:
        wait_until(lambda: board.connected, what="open")
        loop_port.write(b"BT")
        wait_until(lambda: board.buffered == 2, what="partial line read")
        assert answers == []
        loop_port.write(b"N 1\nBTN")
        wait_until(lambda: answers == [1], what="answer")
        loop_port.write(b" 3\n")
        wait_until(lambda: answers == [1, 3], what="second answer")
    finally:
        board.stop()


def test_bad_input_is_survived_and_counted_by_kind(
    connected: SerialBoard, pty_board: PtyBoard, answers: list[int]
) -> None:
    pty_board.send(
        b"\xff\xfeBTN 1\n"  # non-ASCII
        b"BTN\nBTN one\nBTN 1 2\nBTN 0001\n\x01\x02\nHELLO world\n"  # garbage
        b"FOO 1\nLED 1 ON\n"  # unknown
        b"\n\r\n"  # blank: ignored
        + b"X" * 200
        + b"\n"  # over-long
        + b"BTN 4\nBTN 99\n"  # out of range for four answers
        b"ERR button 2 stuck\n"
        b"BTN 2\n"
    )
    wait_until(lambda: answers == [2], what="the good press after the bad lines")
    counters = connected.counters
    assert {
        k: counters[k] for k in ("non_ascii", "garbage", "unknown", "overlong", "out_of_range", "board_errors")
    } == {
        "non_ascii": 1,
        "garbage": 6,
        "unknown": 2,
        "overlong": 1,
        "out_of_range": 2,
        "board_errors": 1,
    }


def test_an_overlong_line_in_pieces_is_dropped_once_with_its_tail(
    connected: SerialBoard, pty_board: PtyBoard, answers: list[int]
) -> None:
    pty_board.send(b"Y" * 100)
    wait_until(lambda: connected.counters["overlong"] == 1, what="over-long noticed before its newline")
    pty_board.send(b"Y" * 100)
    pty_board.send(b"BTN 1\nBTN 2\n")  # "…YYYBTN 1" is the over-long line's tail
    wait_until(lambda: answers == [2], what="the next good line")
    assert connected.counters["overlong"] == 1


def test_repeated_bad_lines_are_logged_rate_limited(
    connected: SerialBoard, pty_board: PtyBoard, answers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="device.inputs.serialboard"):
        pty_board.send(b"FOO\n" * 50 + b"BTN 0\n")
        wait_until(lambda: answers == [0], what="answer")
    assert connected.counters["unknown"] == 50
    assert len([r for r in caplog.records if "unknown line" in r.getMessage()]) == 1


def test_a_version_mismatch_is_logged_clearly(
    connected: SerialBoard, pty_board: PtyBoard, answers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    connected.hello.clear()
    with caplog.at_level(logging.ERROR, logger="device.inputs.serialboard"):
        pty_board.send(b"HELLO hymy-board 2 4\nBTN 1\n")
        wait_until(lambda: answers == [1], what="press still taken")
    assert connected.board == BoardInfo(2, 4)
    assert connected.counters["version_mismatch"] == 1
    assert "protocol version 2" in caplog.text and "speaks version 1" in caplog.text


def test_feedback_lights_the_pressed_led_then_puts_it_out(connected: SerialBoard, pty_board: PtyBoard) -> None:
    connected.feedback(2, 0.05)
    pty_board.expect(b"LED ALL OFF")
    pty_board.expect(b"LED 2 ON")
    pty_board.expect(b"LED 2 OFF")


def test_stop_puts_the_leds_out(pty_board: PtyBoard, answers: list[int]) -> None:
    board = SerialBoard(str(pty_board.link), read_timeout_s=0.02)
    board.start(answers.append)
    pty_board.expect(b"HELLO?")
    board.feedback(1, 30.0)
    pty_board.expect(b"LED 1 ON")
    board.stop()
    board.stop()
    pty_board.expect(b"LED ALL OFF")
    assert not board.connected


def test_unplug_and_replug_is_survived_and_logged(
    connected: SerialBoard, pty_board: PtyBoard, answers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="device.inputs.serialboard"):
        pty_board.send(b"BTN 1\n")
        wait_until(lambda: answers == [1], what="press before unplug")
        pty_board.send(b"BTN")  # a partial line lost with the cable
        pty_board.unplug()
        wait_until(lambda: connected.counters["disconnects"] == 1, what="the unplug noticed")
        wait_until(lambda: connected.counters["open_failures"] >= 2, what="retries while unplugged")
        assert not connected.connected
        connected.feedback(0, 0.01)  # nowhere to send it: dropped, not raised
        pty_board.plug()
        pty_board.expect(b"HELLO?")  # the terminal asks who is back
        pty_board.send(b"2\nBTN 2\n")  # the lost partial line's rest is just garbage now
        wait_until(lambda: answers == [1, 2], what="press after replug")
    assert connected.counters["reconnects"] == 1
    assert connected.counters["writes_dropped"] >= 1
    assert "vanished" in caplog.text and "not there" in caplog.text and "is back" in caplog.text


def test_a_missing_port_at_start_is_retried(tmp_path: Path, answers: list[int]) -> None:
    link = tmp_path / "later"
    board = SerialBoard(str(link), retry_initial_s=0.01, retry_max_s=0.05, read_timeout_s=0.02)
    board.start(answers.append)
    try:
        wait_until(lambda: board.counters["open_failures"] >= 2, what="retries")
        fake = PtyBoard(link)
        fake.expect(b"HELLO?")
        fake.send(b"BTN 3\n")
        wait_until(lambda: answers == [3], what="answer")
    finally:
        board.stop()
    fake.close()


def test_a_failing_callback_does_not_stop_the_reader(connected: SerialBoard, pty_board: PtyBoard) -> None:
    got: list[int] = []

    def flaky(answer: int) -> None:
        got.append(answer)
        raise RuntimeError("queue full")

    connected._on_answer = flaky
    pty_board.send(b"BTN 1\nBTN 2\n")
    wait_until(lambda: got == [1, 2], what="both presses")


def test_misuse_of_the_api_is_refused(connected: SerialBoard, answers: list[int]) -> None:
    with pytest.raises(InputError, match="already"):
        connected.start(answers.append)
    with pytest.raises(ValueError):
        connected.feedback(4, 1.0)
    with pytest.raises(InputError):
        SerialBoard("loop://", buttons=0)
