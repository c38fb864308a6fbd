"""A serial button board (a microcontroller with the buttons and LEDs) speaking the line protocol of SERIAL.md.

One reader thread owns the port: it opens it (with backoff while it is missing), reads lines,
and turns ``BTN <n>`` into ``on_answer(n)`` on that thread, so ``on_answer`` must be thread-safe.
Nothing the board sends can stop it: garbage, unknown commands, over-long lines, non-ASCII bytes
and out-of-range buttons are counted by kind and logged at most once a minute per kind; a port
that vanishes (USB unplugged, pty closed) is closed and reopened with backoff until it returns.
pyserial's exceptions never leave this module.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from .base import AnswerCallback, InputError, RateLimitedLog

log = logging.getLogger(__name__)

#: The version of SERIAL.md this terminal speaks.
PROTOCOL_VERSION = 1
#: Longest line, in bytes before the newline (a trailing carriage return included).
MAX_LINE = 64
#: The board's name in HELLO.
BOARD_NAME = "hymy-board"
DEFAULT_BAUDRATE = 115200

COUNTER_KINDS = (
    "presses",
    "garbage",
    "unknown",
    "overlong",
    "non_ascii",
    "out_of_range",
    "board_errors",
    "version_mismatch",
    "disconnects",
    "open_failures",
    "reconnects",
    "write_errors",
    "writes_dropped",
)


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What the board said about itself in its last HELLO."""

    version: int
    buttons: int


class SerialBoard:
    """Answers from a serial button board; LED thank-you by ``LED`` commands; survives unplugging."""

    kind = "serial"

    def __init__(
        self,
        url: str,
        baudrate: int = DEFAULT_BAUDRATE,
        *,
        buttons: int = 4,
        read_timeout_s: float = 0.1,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        log_interval_s: float = 60.0,
        open_port: Callable[[], Any] | None = None,
    ) -> None:
        """``url`` is what ``serial.serial_for_url`` takes (a device path, ``loop://``); ``open_port`` overrides it."""
        if not 1 <= buttons <= 11:
            raise InputError(f"a serial board gives 1..11 answers, not {buttons}")
        self.url = url
        self.buttons = buttons
        self._open_port = open_port or (
            lambda: serial.serial_for_url(url, baudrate=baudrate, timeout=read_timeout_s, write_timeout=1.0)
        )
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._log = RateLimitedLog(log, log_interval_s)
        self._lock = threading.Lock()  # guards the port for writers, the counters and the LED timer
        self._port: Any = None
        self._counts: Counter[str] = Counter()
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes until its newline
        self._on_answer: AnswerCallback | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._timer: threading.Timer | None = None
        self._generation = 0
        self.board: BoardInfo | None = None
        self.hello = threading.Event()  # set at each HELLO from the board

    # -- the AnswerSource interface ------------------------------------------------------------

    def start(self, on_answer: AnswerCallback) -> None:
        """Start the reader thread; it opens the port (retrying while it is missing) and delivers presses."""
        if self._stopped:
            raise InputError("this serial board is stopped; make a new one")
        if self._thread is not None:
            raise InputError("this serial board is already started")
        self._on_answer = on_answer
        self._thread = threading.Thread(target=self._run, name="hymy-serial-board", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Put the LEDs out, stop the reader and close the port; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        with self._lock:
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
        self._send("LED ALL OFF")
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._drop_port()

    def feedback(self, answer: int, seconds: float) -> None:
        """Light the pressed answer's LED for ``seconds``, the others off; dropped (and counted) while unplugged."""
        if not 0 <= answer < self.buttons:
            raise ValueError(f"answer {answer} is not one of this board's 0..{self.buttons - 1}")
        with self._lock:
            if self._stopped:
                return
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
            timer = self._timer = threading.Timer(seconds, self._lights_out, args=(answer, self._generation))
            timer.daemon = True
        self._send("LED ALL OFF")
        self._send(f"LED {answer} ON")
        timer.start()

    # -- diagnostics -----------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """Counts by kind (presses, garbage, unknown, overlong, disconnects, …) for heartbeats and tests."""
        with self._lock:
            return {kind: self._counts[kind] for kind in COUNTER_KINDS}

    @property
    def connected(self) -> bool:
        """Whether the port is open right now."""
        with self._lock:
            return self._port is not None

    @property
    def buffered(self) -> int:
        """Bytes of a line not yet finished by its newline (diagnostics, and tests of partial lines)."""
        return len(self._buf)

    def request_hello(self) -> bool:
        """Ask the board who it is (``HELLO?``); False when the port is not open."""
        return self._send("HELLO?")

    # -- the reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._retry_initial
        failures = 0
        opened_before = False
        while not self._stopping.is_set():
            with self._lock:
                port = self._port
            if port is None:
                try:
                    port = self._open_port()
                except (serial.SerialException, OSError, ValueError) as exc:
                    failures += 1
                    self._count("open_failures")
                    self._log.log(
                        logging.WARNING,
                        "open",
                        "serial button board %s is not there (%s); retrying, next in %.1f s",
                        self.url,
                        exc,
                        delay,
                    )
                    self._stopping.wait(delay)
                    delay = min(delay * 2, self._retry_max)
                    continue
                with self._lock:
                    self._port = port
                self._buf.clear()
                self._discarding = False
                if opened_before:
                    self._count("reconnects")
                    log.warning("serial button board %s is back (after %d failed opens)", self.url, failures)
                else:
                    log.info("serial button board %s open", self.url)
                opened_before = True
                failures, delay = 0, self._retry_initial
                self.request_hello()
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self._count("disconnects")
                self._log.log(
                    logging.WARNING, "vanished", "serial button board %s vanished (%s); reopening", self.url, exc
                )
                self._drop_port()
                continue
            if data:
                try:
                    self._feed(data)
                except Exception:  # a bug here must not silence the buttons; drop what was buffered
                    log.exception("serial button board: could not handle %r", data[:MAX_LINE])
                    self._buf.clear()

    def _drop_port(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass  # it is gone already; closing was only tidying up

    def _feed(self, data: bytes) -> None:
        """Split bytes into lines, keeping a partial line for the next read and dropping over-long ones."""
        self._buf += data
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_LINE:
                    if not self._discarding:
                        self._overlong()
                    self._discarding = True
                    self._buf.clear()
                return
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._discarding:  # the tail of a line already counted as over-long
                self._discarding = False
            elif len(line) > MAX_LINE:
                self._overlong()
            else:
                self._line(line)

    def _overlong(self) -> None:
        self._count("overlong")
        self._log.log(logging.WARNING, "overlong", "serial button board sent a line over %d bytes; dropped", MAX_LINE)

    def _line(self, raw: bytes) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if any(b > 0x7E for b in raw):
            self._bad("non_ascii", raw)
            return
        if any(b < 0x20 for b in raw):
            self._bad("garbage", raw)
            return
        parts = raw.decode("ascii").split()
        if not parts:
            return  # blank lines are harmless
        command = parts[0]
        if command == "BTN":
            if len(parts) != 2 or not parts[1].isdigit() or len(parts[1]) > 3:
                self._bad("garbage", raw)
            elif int(parts[1]) >= self.buttons:
                self._bad("out_of_range", raw)
            else:
                self._count("presses")
                self._deliver(int(parts[1]))
        elif command == "HELLO":
            self._hello(parts, raw)
        elif command == "ERR":
            self._count("board_errors")
            self._log.log(logging.WARNING, "board_error", "serial button board reports an error: %s", raw[4:].decode())
        else:
            self._bad("unknown", raw)

    def _hello(self, parts: list[str], raw: bytes) -> None:
        if len(parts) != 4 or parts[1] != BOARD_NAME or not parts[2].isdigit() or not parts[3].isdigit():
            self._bad("garbage", raw)
            return
        info = BoardInfo(int(parts[2]), int(parts[3]))
        self.board = info
        if info.version != PROTOCOL_VERSION:
            self._count("version_mismatch")
            log.error(
                "serial button board on %s speaks protocol version %d but this terminal speaks version %d; "
                "presses that still parse are taken, but update the board or the terminal",
                self.url,
                info.version,
                PROTOCOL_VERSION,
            )
        elif info.buttons != self.buttons:
            log.warning(
                "serial button board on %s has %d buttons but this terminal asks %d answers; "
                "buttons beyond the answers are ignored",
                self.url,
                info.buttons,
                self.buttons,
            )
        else:
            log.info("serial button board on %s: protocol %d, %d buttons", self.url, info.version, info.buttons)
        self.hello.set()

    def _bad(self, kind: str, raw: bytes) -> None:
        self._count(kind)
        self._log.log(logging.WARNING, kind, "serial button board sent %s line %r; ignored", kind, raw[:MAX_LINE])

    def _deliver(self, answer: int) -> None:
        callback = self._on_answer
        if callback is None:
            return
        try:
            callback(answer)
        except Exception:  # a failing callback must not stop the reader
            log.exception("answer callback failed for serial button %d", answer)

    # -- writing -------------------------------------------------------------------------------

    def _send(self, line: str) -> bool:
        """Write one command line; False (counted) when the port is closed or the write fails."""
        with self._lock:
            port = self._port
            if port is None:
                self._counts["writes_dropped"] += 1
                return False
            try:
                port.write(line.encode("ascii") + b"\n")
            except (serial.SerialException, OSError) as exc:
                self._counts["write_errors"] += 1
                error: Exception | None = exc
            else:
                error = None
        if error is not None:
            # The reader notices a vanished port and reopens it; a write only reports.
            self._log.log(logging.WARNING, "write", "cannot write to serial button board %s: %s", self.url, error)
            return False
        return True

    def _lights_out(self, answer: int, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # a newer thank-you (or stop) took over
        self._send(f"LED {answer} OFF")

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1
