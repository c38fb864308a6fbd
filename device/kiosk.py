"""The kiosk: ``hymy kiosk --settings FILE``; one loop owns the Terminal, the screen and the input sources.

An input source calls back on its own thread, and that thread commits the press at once (through
the Flow, whose lock orders it with everything the loop does), lights the LEDs, and only then
wakes the loop, which draws the thank-you on its next frame. So a press never waits for a frame
being drawn, and nothing thanks anyone before the vote is in the database (DESIGN guarantee 1).
Touches and keys arrive as pygame events on the loop, which waits on them (never a fixed frame
sleep) and commits a touched answer before it draws anything. A new configuration is rendered
off screen and switched in at the flip, so a press is recorded against the question on the glass.
The loop tells systemd it is ready once everything is up and pings the watchdog every turn: a
hung loop stops pinging, and systemd restarts it (a committed vote survives that).

``--screenshot DIR`` draws every screen in every shipped language at the common sizes to PNGs and
exits. With ``screen = false`` in the settings (a four-button terminal with LEDs only) the same loop
runs without a window. A terminal whose settings name an identity that enrolment has not written
yet enrols first, showing a notice meanwhile (device/enrolling.py), then runs as usual.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import protocol
from protocol import Vote

from .backlight import Backlight, NullBacklight, find_backlight, level_for
from .clock import SystemClock
from .errors import DeviceError
from .inputs import AnswerSource
from .settings import KioskSettings, NotEnrolled, load_settings
from .store import VoteStore
from .sync import SyncAgent
from .terminal import Terminal
from .ui.flow import Flow
from .watchdog import Notifier

if TYPE_CHECKING:
    from .ui.display import Display

log = logging.getLogger(__name__)

#: How long the loop sleeps when nothing happens; also the longest gap between watchdog checks.
IDLE_WAIT_S = 0.1


class Kiosk:
    """One loop: answers and touches in, Flow decides, the Display draws, LEDs thank, systemd hears."""

    def __init__(
        self,
        flow: Flow,
        display: Display | None = None,
        sources: Sequence[AnswerSource] = (),
        notifier: Notifier | None = None,
        backlight: Backlight | None = None,
    ) -> None:
        self.flow = flow
        self.display = display
        self.sources = list(sources)
        self.notifier = notifier or Notifier(None)
        self.backlight: Backlight = backlight or NullBacklight()
        self.running = False
        self._wake = threading.Event()
        self._wake_type: int | None = None
        if display is not None:
            import pygame

            self._wake_type = pygame.event.custom_type()

    def post_answer(self, answer: int) -> None:
        """On a source's thread: commit the answer, thank on the LEDs, then wake the loop to draw the thanks."""
        self._answered(self.flow.answer(answer))
        self.wake()

    def wake(self) -> None:
        """Thread-safe: make the loop take a turn now rather than at the end of its wait."""
        self._wake.set()
        if self._wake_type is not None:
            import pygame

            pygame.event.post(pygame.event.Event(self._wake_type))

    def start(self) -> None:
        """Start the sources, draw the first screen and tell systemd we are ready."""
        for source in self.sources:
            source.start(self.post_answer)
        self.running = True
        self.flow.tick()
        if self.display is not None:
            self.display.show(self.flow.view())
        self.notifier.ready()

    def stop(self) -> None:
        """Stop the sources (the caller closes the rest)."""
        self.running = False
        self.notifier.stopping()
        for source in self.sources:
            source.stop()

    def _answered(self, vote: Vote | None) -> None:
        """Thank on the LEDs, only after the vote is committed."""
        if vote is None:
            return
        config = self.flow.terminal.config
        seconds = float(protocol.setting(config[1], "thanks_s")) if config else 2.0
        for source in self.sources:
            source.feedback(vote.answer, seconds)

    def step(self, wait_s: float = IDLE_WAIT_S) -> None:
        """One turn: handle what arrived (waiting at most ``wait_s`` for it), move time on, draw, ping."""
        if self.display is not None:
            self._pygame_events(wait_s)
        elif wait_s:
            self._wake.wait(wait_s)
        self._wake.clear()
        with self.flow.lock:
            self.flow.tick()
            view = self.flow.view()
            doc, asleep = self.flow.doc, self.flow.screen == "asleep"
        self.backlight.set_percent(level_for(protocol.setting(doc, "display") if doc else {}, asleep))
        if self.display is not None:
            self.display.show(view)  # a press meanwhile has woken us: its thanks comes next turn
        self._apply_staged()
        self.notifier.watchdog_ping()

    def _apply_staged(self) -> None:
        """Switch to a new configuration between interactions, at the flip of the frame that shows it."""
        staged = self.flow.staged()
        if staged is None:
            return
        version, view = staged
        frame = None if self.display is None else self.display.prepare(view)  # slow: presses go on meanwhile
        with self.flow.lock:  # a press waits for the flip only, so it is recorded under the question shown
            if self.flow.apply_staged(version) and self.display is not None and frame is not None:
                self.display.present(view, frame)

    def _pygame_events(self, wait_s: float) -> None:
        import pygame

        from .ui.keys import key_answer

        assert self.display is not None
        first = pygame.event.wait(int(wait_s * 1000)) if wait_s else pygame.event.poll()
        events = [first, *pygame.event.get()] if first.type != pygame.NOEVENT else pygame.event.get()
        for event in events:
            if event.type == pygame.QUIT:
                self.running = False
            elif event.type == pygame.KEYDOWN:
                if event.key == pygame.K_ESCAPE and not pygame.display.is_fullscreen():
                    self.running = False
                answer = key_answer(event, self.flow.doc)
                if answer is not None:
                    self._answered(self.flow.answer(answer))
            elif event.type == pygame.FINGERDOWN:
                self._touch(self.display.finger_pos(event))
            elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
                self._touch(event.pos)  # a real mouse; SDL's mouse events made from touches are skipped

    def _touch(self, window_pos: tuple[int, int]) -> None:
        assert self.display is not None
        action = self.display.hit(window_pos)
        if action is not None:
            self._answered(self.flow.tap(action))
            self.display.show(self.flow.view())

    def run(self) -> None:
        """Loop until stopped (SIGTERM, window closed)."""
        self.start()
        try:
            while self.running:
                self.step()
        finally:
            self.stop()


def build_parser() -> argparse.ArgumentParser:
    """The kiosk's command line."""
    p = argparse.ArgumentParser(
        prog="hymy kiosk",
        description=(__doc__ or "").splitlines()[0],
        epilog="Without --settings: `hymy kiosk --headless --db PATH --device ID [--broker HOST:PORT]` runs a "
        "terminal with no screen whose answers come from standard input, one number a line.",
    )
    p.add_argument("--settings", type=Path, help="the terminal's settings file (see device/kiosk.example.toml)")
    p.add_argument("--screenshot", type=Path, metavar="DIR", help="write every screen as PNGs to DIR and exit")
    p.add_argument("--windowed", action="store_true", help="a window instead of full screen (for a desktop)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the kiosk and the sync agent do")
    return p


def _answers(settings: KioskSettings, terminal: Terminal) -> int:
    """How many answers the hardware must give: the question's scale, else one per configured button."""
    config = terminal.config
    if config is not None:
        return protocol.SCALES[config[1]["question"]["scale"]].size
    return len(settings.input.button_pins) if settings.input.kind == "buttons" else 4


def _sources(settings: KioskSettings, terminal: Terminal, pin_factory: Any = None) -> list[AnswerSource]:
    from .inputs.factory import hardware_source

    source = hardware_source(settings.input, _answers(settings, terminal), pin_factory)
    return [] if source is None else [source]


def run_kiosk(settings: KioskSettings, windowed: bool = False) -> int:
    """Set everything up from ``settings``, run the loop, and close everything; returns the exit status."""
    clock = SystemClock()
    store = VoteStore(settings.database, settings.device_id, clock)
    holder: dict[str, Terminal] = {}
    agent = SyncAgent(
        store,
        settings.device_id,
        settings.broker.host,
        settings.broker.port,
        clock,
        check_config=lambda v, d: holder["terminal"].check_config(v, d),
        on_config=lambda v, d: holder["terminal"].offer_config(v, d),
        username=settings.username,
        password=settings.broker.password,
        ca_file=settings.broker.ca_file,
        tls=settings.broker.tls,
    )
    terminal = holder["terminal"] = Terminal(store, agent, clock)
    display = None
    screen = settings.screen
    touch = screen is not None and settings.input.kind in ("touch", "keyboard")
    try:
        sources = _sources(settings, terminal)
        if screen is not None:
            from .ui.display import Display

            display = Display(
                screen.size, screen.orientation == "portrait", screen.dpi, screen.fullscreen and not windowed
            )
        backlight = find_backlight() if screen is not None else None
        flow = Flow(terminal, settings.device_id, touch=touch, claim_base=settings.claim_base)
        kiosk = Kiosk(flow, display, sources, Notifier.from_env(), backlight)

        def _stop(signum: int, frame: FrameType | None) -> None:
            kiosk.running = False

        signal.signal(signal.SIGTERM, _stop)
        agent.start()
        kiosk.run()
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
        if display is not None:
            display.close()
        store.close()
    return 0


def wait_for_enrolment(pending: NotEnrolled, windowed: bool = False, **options: Any) -> bool:
    """Enrol with the notice on screen until the identity exists; False when stopped first (SIGTERM, window closed)."""
    from .enrolling import EnrolmentWait

    assert pending.enrol_file is not None
    display = None
    screen = pending.screen
    if screen is not None:
        from .ui.display import Display

        display = Display(screen.size, screen.orientation == "portrait", screen.dpi, screen.fullscreen and not windowed)
    wait = EnrolmentWait(pending.enrol_file, pending.identity_file, display, Notifier.from_env(), **options)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: wait.stop())
    try:
        return wait.run() is not None
    except KeyboardInterrupt:
        return False
    finally:
        signal.signal(signal.SIGTERM, previous)
        if display is not None:
            display.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``hymy kiosk --settings FILE`` or ``hymy kiosk --screenshot DIR``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if args.screenshot is not None:
        from .ui.gallery import write_screenshots

        written = write_screenshots(args.screenshot)
        print(f"wrote {len(written)} screenshots to {args.screenshot}")
        return 0
    if args.settings is None:
        print("error: give --settings FILE (or --screenshot DIR)", file=sys.stderr)
        return 2
    try:
        try:
            settings = load_settings(args.settings)
        except NotEnrolled as pending:
            if pending.enrol_file is None:
                raise
            if not wait_for_enrolment(pending, args.windowed):
                return 0  # stopped while enrolling: the pending request is kept for the next start
            settings = load_settings(args.settings)
        return run_kiosk(settings, args.windowed)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
