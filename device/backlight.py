"""The screen's backlight: brightness from the configuration, dark while the display sleeps.

On Raspberry Pi OS the panel's backlight is a sysfs device (/sys/class/backlight/<name>/
with ``brightness`` and ``max_brightness``), as it is for the official touch displays and
most DSI panels. Where there is none (HDMI monitors, desktops, tests) NullBacklight keeps
the same interface and does nothing, so the kiosk never needs to ask.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

SYSFS_ROOT = Path("/sys/class/backlight")


class Backlight(Protocol):
    """Anything that can set the screen's brightness in percent (0 is dark)."""

    def set_percent(self, percent: float) -> None:
        """Set the brightness; out-of-range values are clamped, failures logged, never raised."""
        ...


class NullBacklight:
    """No controllable backlight: remembers the last setting so tests and logs can see it."""

    def __init__(self) -> None:
        self.percent: float | None = None

    def set_percent(self, percent: float) -> None:
        """Record the setting only."""
        self.percent = max(0.0, min(100.0, percent))


class SysfsBacklight:
    """A backlight under /sys/class/backlight, written only when the level changes."""

    def __init__(self, device_dir: Path) -> None:
        self.device_dir = device_dir
        self.maximum = int((device_dir / "max_brightness").read_text().strip())
        self._last: int | None = None

    def set_percent(self, percent: float) -> None:
        """Write the level; a panel that vanished or refuses is logged, the kiosk goes on."""
        level = round(max(0.0, min(100.0, percent)) / 100 * self.maximum)
        if level == self._last:
            return
        try:
            (self.device_dir / "brightness").write_text(f"{level}\n")
        except OSError as exc:
            log.warning("backlight %s: could not set %d/%d: %s", self.device_dir.name, level, self.maximum, exc)
            return
        self._last = level


def find_backlight(root: Path = SYSFS_ROOT) -> Backlight:
    """The first backlight under ``root`` that can be read, else a NullBacklight."""
    try:
        candidates = sorted(p for p in root.iterdir() if (p / "max_brightness").exists())
    except OSError:
        candidates = []
    for device_dir in candidates:
        try:
            return SysfsBacklight(device_dir)
        except (OSError, ValueError) as exc:
            log.warning("backlight %s unreadable: %s", device_dir, exc)
    return NullBacklight()


def level_for(display: dict[str, float], asleep: bool) -> float:
    """The brightness the configuration's ``display`` asks for now: its ``brightness``, or 0 asleep."""
    return 0.0 if asleep else float(display.get("brightness", 100))
