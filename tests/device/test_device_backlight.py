"""The backlight follows the configuration's brightness and goes dark while the display sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.backlight import NullBacklight, SysfsBacklight, find_backlight, level_for


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    """A fake /sys/class/backlight with one panel whose maximum is 255, now dimmed to 31.

    The level differs from the maximum, so reading the maximum from the wrong file shows.
    """
    panel = tmp_path / "10-0045"
    panel.mkdir()
    (panel / "max_brightness").write_text("255\n")
    (panel / "brightness").write_text("31\n")
    return tmp_path


def test_the_first_readable_panel_is_found(sysfs: Path) -> None:
    light = find_backlight(sysfs)
    assert isinstance(light, SysfsBacklight)
    assert light.maximum == 255


def test_no_panel_gives_a_backlight_that_does_nothing(tmp_path: Path) -> None:
    assert isinstance(find_backlight(tmp_path / "missing"), NullBacklight)
    assert isinstance(find_backlight(tmp_path), NullBacklight)


def test_percent_is_scaled_to_the_panels_range_and_clamped(sysfs: Path) -> None:
    light = find_backlight(sysfs)
    brightness = sysfs / "10-0045" / "brightness"
    light.set_percent(80)
    assert brightness.read_text() == "204\n"
    light.set_percent(150)
    assert brightness.read_text() == "255\n"
    light.set_percent(-5)
    assert brightness.read_text() == "0\n"


def test_a_panel_that_refuses_is_logged_not_raised(sysfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    light = find_backlight(sysfs)
    (sysfs / "10-0045" / "brightness").unlink()
    (sysfs / "10-0045" / "brightness").mkdir()  # writing now fails with IsADirectoryError
    light.set_percent(50)
    assert "could not set" in caplog.text


def test_level_is_the_configured_brightness_or_dark_asleep() -> None:
    assert level_for({"brightness": 70, "sleep_after_s": 600}, asleep=False) == 70
    assert level_for({"brightness": 70}, asleep=True) == 0
    assert level_for({}, asleep=False) == 100
