"""Local kiosk settings from TOML: defaults, every key checked, errors naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.settings import (
    BrokerSettings,
    InputSettings,
    KioskSettings,
    ScreenSettings,
    SettingsError,
    load_settings,
)

EXAMPLE = Path(__file__).parents[2] / "device" / "kiosk.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_file_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    example = load_settings(EXAMPLE)
    minimal = load_settings(write(tmp_path, 'device_id = "kiosk-001"\n'))
    assert example.source == EXAMPLE
    assert (example.broker, example.input, example.screen) == (minimal.broker, minimal.input, minimal.screen)
    assert example.database == minimal.database == Path("/var/lib/hymy/votes.db")


def test_defaults_for_a_minimal_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'device_id = "kiosk-001"\n'))
    assert settings == KioskSettings(
        "kiosk-001",
        Path("/var/lib/hymy/votes.db"),
        BrokerSettings(),
        InputSettings(),
        ScreenSettings(),
        source=tmp_path / "kiosk.toml",
    )
    assert settings.username == "kiosk-001"


def test_a_full_file_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    path = write(
        tmp_path,
        """
device_id = "ward-7-door"
database = "data/votes.db"
[broker]
host = "mqtt.hus.example"
port = 8883
username = "ward7"
password_file = "secret"
[input]
kind = "serial"
serial_url = "/dev/serial/by-id/usb-hymy-if00"
serial_baud = 9600
button_pins = [5, 6, 13, 19, 26]
led_pins = []
bounce_s = 0
[screen]
size = [800, 480]
orientation = "portrait"
dpi = 160
fullscreen = false
""",
    )
    s = load_settings(path)
    assert s.database == tmp_path / "data" / "votes.db"
    assert s.broker == BrokerSettings("mqtt.hus.example", 8883, "ward7", "s3cret")
    assert s.username == "ward7"
    assert s.input == InputSettings("serial", (5, 6, 13, 19, 26), (), 0.0, "/dev/serial/by-id/usb-hymy-if00", 9600)
    assert s.screen == ScreenSettings((800, 480), "portrait", 160, False)


def test_the_password_never_shows_in_repr(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret")
    s = load_settings(write(tmp_path, 'device_id = "kiosk-001"\n[broker]\npassword_file = "secret"\n'))
    assert s.broker.password == "s3cret"
    assert "s3cret" not in repr(s)


def test_screen_false_is_a_led_only_button_terminal(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, 'device_id = "kiosk-001"\nscreen = false\n'))
    assert s.screen is None
    assert s.input.kind == "buttons" and s.input.led_pins


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("", "device_id", "required"),
        ('device_id = "Kiosk_1"', "device_id", "a-z"),
        ("device_id = 7", "device_id", "must be"),
        ('device_id = "k-1"\ncolour = "red"', "colour", "unknown key"),
        ('device_id = "k-1"\n[broker]\nport = 70000', "broker.port", "1..65535"),
        ('device_id = "k-1"\n[broker]\nport = true', "broker.port", "port number"),
        ('device_id = "k-1"\n[broker]\nhots = "x"', "broker.hots", "unknown key"),
        ('device_id = "k-1"\n[broker]\npassword_file = "nope"', "broker.password_file", "cannot read"),
        ('device_id = "k-1"\n[input]\nkind = "joystick"', "input.kind", "buttons, serial, touch, keyboard"),
        ('device_id = "k-1"\n[input]\nkind = "serial"', "input.serial_url", "required"),
        ('device_id = "k-1"\n[input]\nbutton_pins = [17, 17, 22, 23]', "input.button_pins", "twice"),
        ('device_id = "k-1"\n[input]\nbutton_pins = [17, 40]', "input.button_pins", "0..27"),
        ('device_id = "k-1"\n[input]\nbutton_pins = [17]', "input.button_pins", "2..11"),
        ('device_id = "k-1"\n[input]\nled_pins = [5, 6]', "input.led_pins", "one pin per button"),
        ('device_id = "k-1"\n[input]\nled_pins = [17, 6, 13, 26]', "input.led_pins", "shares pins [17]"),
        ('device_id = "k-1"\n[input]\nbounce_s = 5', "input.bounce_s", "0..1"),
        ('device_id = "k-1"\n[screen]\nsize = [800]', "screen.size", "[width, height]"),
        ('device_id = "k-1"\n[screen]\norientation = "upside"', "screen.orientation", "portrait"),
        ('device_id = "k-1"\n[screen]\ndpi = "big"', "screen.dpi", "auto"),
        ('device_id = "k-1"\n[screen]\nfullscreen = "yes"', "screen.fullscreen", "true or false"),
        ('device_id = "k-1"\nscreen = "none"', "screen", "[screen] table"),
        ('device_id = "k-1"\nscreen = false\n[input]\nkind = "touch"', "screen", "needs a screen"),
        ('device_id = "k-1"\nscreen = false\n[input]\nled_pins = []', "screen", "nothing could thank"),
    ],
)
def test_a_bad_value_names_the_file_and_the_key(tmp_path: Path, text: str, key: str, hint: str) -> None:
    path = write(tmp_path, text + "\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert hint in message


def test_a_missing_file_or_bad_toml_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "device_id = \n"))
