"""The kiosk before it has an identity: enrolment on a background thread, a calm notice on the screen.

When the settings name an ``identity_file`` that does not exist yet and an ``enrol_file``
(device/settings.py ``NotEnrolled``), ``hymy kiosk`` runs this before the normal kiosk: it shows
the enrolling notice (with the fleet's approval page as a QR code once the request has an id),
keeps systemd's watchdog fed, and returns once the identity is written. A refusal or an untrusted
fleet is logged and tried again after ``retry_s`` with the enrolment file read afresh, so IT can
fix the file on the boot partition without anyone touching the terminal.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .enrol import (
    EnrolCancelled,
    EnrolError,
    EnrolFileError,
    Enroller,
    Progress,
    hardware_id,
    load_enrol_file,
    remove_secret,
)
from .errors import DeviceError
from .identity import Identity
from .ui import compose
from .ui.views import NoticeView
from .watchdog import Notifier

if TYPE_CHECKING:
    from .ui.display import Display

log = logging.getLogger(__name__)

#: After a refusal or a bad enrolment file, read the file again and retry after this long.
RETRY_S = 60.0
#: The longest the screen loop waits for an event before it pings the watchdog again.
IDLE_WAIT_S = 0.1


class EnrolmentWait:
    """Enrols on a thread while the caller's loop shows ``view()``; ``run`` does both until enrolled or stopped."""

    def __init__(
        self,
        enrol_file: Path,
        identity_file: Path,
        display: Display | None = None,
        notifier: Notifier | None = None,
        *,
        retry_s: float = RETRY_S,
        hardware: str | None = None,
        **enroller_options: Any,
    ) -> None:
        """``enroller_options`` go to each ``Enroller`` (tests pass ``sleep`` and ``timeout_s``)."""
        self.enrol_file = enrol_file
        self.identity_file = identity_file
        self.display = display
        self.notifier = notifier or Notifier(None)
        self.retry_s = retry_s
        self.hardware = hardware or hardware_id()
        self.identity: Identity | None = None
        #: The last problem, for tests and logs (never the secret).
        self.problem: str | None = None
        self._options = enroller_options
        self._progress = Progress("sending", self.hardware)
        self._fleet_url: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._enroller: Enroller | None = None
        self._thread = threading.Thread(target=self._work, name="hymy-enrol", daemon=True)

    def view(self) -> NoticeView:
        """The enrolling notice as things stand: the device id once the fleet named it, else the hardware id."""
        with self._lock:
            p, fleet_url = self._progress, self._fleet_url
        return compose.enrolling_view(p.device or p.hardware, fleet_url, p.request)

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    boot = load_enrol_file(self.enrol_file)
                    with self._lock:
                        self._fleet_url = boot.fleet_url
                        self._enroller = Enroller(
                            boot,
                            self.identity_file.parent,
                            identity_name=self.identity_file.name,
                            hardware=self.hardware,
                            on_progress=self._on_progress,
                            **self._options,
                        )
                        if self._stop.is_set():
                            return
                    self.identity = self._enroller.run()
                    self.problem = None
                    try:
                        remove_secret(boot.path)
                    except OSError as exc:
                        log.warning("enrolled, but the secret stays in %s: %s", boot.path, exc)
                    return
                except EnrolCancelled:
                    return
                except (EnrolFileError, EnrolError, DeviceError, OSError, ValueError) as exc:
                    self.problem = str(exc)
                    log.error("enrolment: %s; trying again in %.0f s", exc, self.retry_s)
                    self._stop.wait(self.retry_s)
        finally:
            self._done.set()

    def start(self) -> None:
        """Start enrolling on the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop waiting (SIGTERM, window closed); the pending request is kept for the next start."""
        self._stop.set()
        with self._lock:
            if self._enroller is not None:
                self._enroller.cancel()

    @property
    def done(self) -> bool:
        """Whether the background thread has finished (enrolled, or stopped)."""
        return self._done.is_set()

    def step(self, wait_s: float = IDLE_WAIT_S) -> None:
        """One turn of the screen loop: events, the notice, the watchdog."""
        if self.display is not None:
            import pygame

            first = pygame.event.wait(int(wait_s * 1000)) if wait_s else pygame.event.poll()
            events = [first, *pygame.event.get()]
            if any(e.type == pygame.QUIT for e in events):
                self.stop()
            self.display.show(self.view())
        else:
            self._done.wait(wait_s)
        self.notifier.watchdog_ping()

    def run(self) -> Identity | None:
        """Show the notice and enrol until enrolled (the identity) or stopped (None)."""
        self.start()
        self.notifier.ready()  # enrolment may wait hours for approval: systemd must not time out the start
        self.notifier.status("enrolling")
        try:
            while not self.done:
                self.step()
        finally:
            self.stop()
            self._thread.join(timeout=5)
        return self.identity
