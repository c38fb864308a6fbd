"""The terminal's own hardware settings from a TOML file (not the fleet's configuration): who it is, what it has.

Identity, database, broker, which input source and which pins, and the screen. The fleet never
changes these; an installer writes them once (``device/kiosk.example.toml`` shows every key
with its default). Every key is checked here, so a typo fails at start-up with the file and the
key named rather than as a strange pin or a silent default. Relative paths are relative to the
settings file. The broker password is read from ``broker.password_file`` (kept out of the
settings file, so that file can be world-readable); ``broker.ca_file`` makes the link TLS.

An enrolled terminal leaves ``device_id`` out and names its ``identity_file`` instead (written by
``hymy enrol``, device/identity.py): its device id, broker and login come from there, so an
image's settings are written once and the identity later. Until that file exists, loading the
settings raises ``NotEnrolled``, which says where the enrolment file (``enrol_file``) is, so the
kiosk can enrol first (device/kiosk.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from protocol.topics import DEVICE_ID_RE

from .errors import DeviceError
from .identity import IdentityError, load_identity
from .inputs.buttons import DEFAULT_BOUNCE_S, DEFAULT_BUTTON_PINS, DEFAULT_LED_PINS
from .inputs.serialboard import DEFAULT_BAUDRATE

INPUT_KINDS = ("buttons", "serial", "touch", "keyboard")
ORIENTATIONS = ("landscape", "portrait")
#: BCM numbers of the Raspberry Pi's header GPIOs.
BCM_PINS = range(0, 28)


class SettingsError(DeviceError):
    """The settings file is missing, not TOML, or has a key with a wrong value (the message names both)."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where the terminal's MQTT broker is and how it logs in."""

    host: str = "localhost"
    port: int = 1883
    #: None: log in as the device id.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: The CA that signed the broker's certificate (TLS, certificate and host name verified).
    ca_file: Path | None = None
    #: TLS to the broker; without ``ca_file`` it trusts the system's CA store.
    tls: bool = False


@dataclass(frozen=True, slots=True)
class InputSettings:
    """Which answer source the terminal uses and its wiring."""

    kind: str = "buttons"
    button_pins: tuple[int, ...] = DEFAULT_BUTTON_PINS
    #: Empty: no LEDs.
    led_pins: tuple[int, ...] = DEFAULT_LED_PINS
    bounce_s: float = DEFAULT_BOUNCE_S
    serial_url: str | None = None
    serial_baud: int = DEFAULT_BAUDRATE


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """The display: size (None: ask the display), orientation, dpi (None: ask the display), fullscreen."""

    size: tuple[int, int] | None = None
    orientation: str = "landscape"
    dpi: int | None = None
    fullscreen: bool = True


@dataclass(frozen=True, slots=True)
class KioskSettings:
    """Everything local to one terminal; ``screen`` None is a four-button terminal with LEDs only."""

    device_id: str
    database: Path
    broker: BrokerSettings = BrokerSettings()
    input: InputSettings = InputSettings()
    screen: ScreenSettings | None = ScreenSettings()
    #: The file these came from, for messages.
    source: Path | None = None
    #: The claim QR code's base address (``<fleet>/claim/``), from the identity; None: ``hymy:claim:<id>``.
    claim_base: str | None = None
    #: The enrolment identity the device id and broker came from, if any.
    identity_file: Path | None = None

    @property
    def username(self) -> str:
        """The broker login: the configured name, else the device id."""
        return self.broker.username or self.device_id


class NotEnrolled(SettingsError):
    """The settings name an ``identity_file`` that does not exist yet: the terminal must enrol first."""

    def __init__(
        self, message: str, identity_file: Path, enrol_file: Path | None, screen: ScreenSettings | None
    ) -> None:
        super().__init__(message)
        self.identity_file = identity_file
        #: Where IT drops the enrolment file (``enrol_file`` in the settings); None: not set.
        self.enrol_file = enrol_file
        #: The screen to show the waiting notice on.
        self.screen = screen


class _Reader:
    """Takes keys out of one TOML table, checking each and naming the file and key when one is wrong."""

    def __init__(self, table: Mapping[str, Any], prefix: str, source: str) -> None:
        self._table = dict(table)
        self._prefix = prefix
        self._source = source

    def error(self, key: str, message: str) -> SettingsError:
        return SettingsError(f"{self._source}: {self._prefix}{key}: {message}")

    def has(self, key: str) -> bool:
        return key in self._table

    def take(self, key: str, kinds: type | tuple[type, ...], default: Any, what: str) -> Any:
        if key not in self._table:
            return default
        value = self._table.pop(key)
        # bool is an int in Python, but `port = true` is a mistake, not port 1.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
            raise self.error(key, f"must be {what}, got {value!r}")
        return value

    def table(self, key: str) -> _Reader:
        value = self.take(key, dict, {}, "a table")
        return _Reader(value, f"{self._prefix}{key}.", self._source)

    def done(self) -> None:
        if self._table:
            key = sorted(self._table)[0]
            raise self.error(key, "unknown key (a typo?); see device/kiosk.example.toml")


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _path(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _pins(r: _Reader, key: str, default: tuple[int, ...], allow_empty: bool) -> tuple[int, ...]:
    pins = r.take(key, list, list(default), "a list of BCM pin numbers")
    if not all(type(p) is int and p in BCM_PINS for p in pins):
        raise r.error(key, f"pins must be BCM numbers 0..27, got {pins!r}")
    if len(set(pins)) != len(pins):
        raise r.error(key, f"a pin is listed twice in {pins!r}")
    if not pins and not allow_empty:
        raise r.error(key, "needs at least two pins")
    return tuple(pins)


def parse_settings(data: Mapping[str, Any], source: str = "<settings>", base: Path | None = None) -> KioskSettings:
    """Check parsed TOML and build the settings; SettingsError names ``source`` and the key at fault."""
    top = _Reader(data, "", source)
    device_id = top.take("device_id", str, None, "a device id such as kiosk-001")
    raw_identity = top.take("identity_file", str, None, "a file path")
    identity_file = None if raw_identity is None else _path(raw_identity, base)
    raw_enrol = top.take("enrol_file", str, None, "a file path")
    enrol_file = None if raw_enrol is None else _path(raw_enrol, base)
    if device_id is None and identity_file is None:
        raise top.error("device_id", "is required (or identity_file, naming the identity `hymy enrol` writes)")
    if device_id is not None and not DEVICE_ID_RE.match(device_id):
        raise top.error("device_id", f"must be 3..64 of a-z, 0-9 and '-', not starting with '-'; got {device_id!r}")
    if device_id is None and top.has("broker"):
        raise top.error("broker", "comes from identity_file when device_id is not given; remove this table")
    database = _path(top.take("database", str, "/var/lib/hymy/votes.db", "a file path"), base)

    b = top.table("broker")
    host = b.take("host", str, "localhost", "a host name")
    if not host:
        raise b.error("host", "must not be empty")
    port = b.take("port", int, 1883, "a port number")
    if not 1 <= port <= 65535:
        raise b.error("port", f"must be 1..65535, got {port}")
    username = b.take("username", str, None, "a user name")
    password = None
    password_file = b.take("password_file", str, None, "a file path")
    if password_file is not None:
        path = _path(password_file, base)
        try:
            password = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise b.error("password_file", f"cannot read {path}: {exc}") from exc
        if not password:
            raise b.error("password_file", f"{path} is empty")
    raw_ca = b.take("ca_file", str, None, "a file path (the CA that signed the broker's certificate)")
    ca_file = None if raw_ca is None else _path(raw_ca, base)
    if ca_file is not None and not ca_file.is_file():
        raise b.error("ca_file", f"{ca_file} does not exist")
    tls = b.take("tls", bool, ca_file is not None, "true or false")
    if ca_file is not None and not tls:
        raise b.error("tls", "is false, but ca_file is set")
    b.done()
    broker = BrokerSettings(host, port, username or None, password, ca_file, tls)

    i = top.table("input")
    kind = i.take("kind", str, "buttons", f"one of {', '.join(INPUT_KINDS)}")
    if kind not in INPUT_KINDS:
        raise i.error("kind", f"must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    button_pins = _pins(i, "button_pins", DEFAULT_BUTTON_PINS, allow_empty=False)
    if not 2 <= len(button_pins) <= 11:
        raise i.error("button_pins", f"must list 2..11 pins, got {len(button_pins)}")
    led_pins = _pins(i, "led_pins", DEFAULT_LED_PINS, allow_empty=True)
    if led_pins and len(led_pins) != len(button_pins):
        raise i.error("led_pins", f"must list one pin per button ({len(button_pins)}) or none, got {len(led_pins)}")
    if set(led_pins) & set(button_pins):
        raise i.error("led_pins", f"shares pins {sorted(set(led_pins) & set(button_pins))} with button_pins")
    bounce_s = i.take("bounce_s", (int, float), DEFAULT_BOUNCE_S, "seconds")
    if not 0 <= bounce_s <= 1:
        raise i.error("bounce_s", f"must be 0..1 seconds, got {bounce_s}")
    serial_url = i.take("serial_url", str, None, "a device path or pyserial URL")
    if kind == "serial" and not serial_url:
        raise i.error("serial_url", "is required when input.kind is 'serial' (e.g. /dev/serial/by-id/…)")
    serial_baud = i.take("serial_baud", int, DEFAULT_BAUDRATE, "a baud rate")
    if not 300 <= serial_baud <= 4_000_000:
        raise i.error("serial_baud", f"must be 300..4000000, got {serial_baud}")
    i.done()
    inputs = InputSettings(kind, button_pins, led_pins, float(bounce_s), serial_url, serial_baud)

    screen = _screen(top, source)
    if screen is None:
        if kind in ("touch", "keyboard"):
            raise top.error("screen", f"is false, but input.kind {kind!r} needs a screen")
        if kind == "buttons" and not led_pins:
            raise top.error("screen", "is false and input.led_pins is empty: nothing could thank a person")
    top.done()
    claim_base = None
    if device_id is None:
        assert identity_file is not None
        if not identity_file.exists():
            where = f" ({enrol_file})" if enrol_file is not None else " (no enrol_file is set)"
            raise NotEnrolled(
                f"{source}: identity_file: {identity_file} does not exist yet: enrol first with `hymy enrol`{where}",
                identity_file,
                enrol_file,
                screen,
            )
        try:
            identity = load_identity(identity_file)
        except IdentityError as exc:
            raise top.error("identity_file", str(exc)) from exc
        device_id, claim_base = identity.device_id, identity.claim_base
        broker = BrokerSettings(
            identity.host, identity.port, identity.username, identity.password, identity.ca_file, identity.tls
        )
    return KioskSettings(device_id, database, broker, inputs, screen, None, claim_base, identity_file)


def _screen(top: _Reader, source: str) -> ScreenSettings | None:
    """``screen = false`` (LEDs only), ``screen = true`` (defaults) or a ``[screen]`` table."""
    value = top.take("screen", (bool, dict), True, "true, false or a [screen] table")
    if value is False:
        return None
    if value is True:
        return ScreenSettings()
    s = _Reader(value, "screen.", source)
    raw_size = s.take("size", (str, list), "auto", '"auto" or [width, height]')
    size: tuple[int, int] | None
    if raw_size == "auto":
        size = None
    elif (
        isinstance(raw_size, list) and len(raw_size) == 2 and all(type(n) is int and 64 <= n <= 8192 for n in raw_size)
    ):
        size = (raw_size[0], raw_size[1])
    else:
        raise s.error("size", f'must be "auto" or [width, height] in pixels, got {raw_size!r}')
    orientation = s.take("orientation", str, "landscape", "landscape or portrait")
    if orientation not in ORIENTATIONS:
        raise s.error("orientation", f"must be landscape or portrait, got {orientation!r}")
    raw_dpi = s.take("dpi", (str, int), "auto", '"auto" or dots per inch')
    if raw_dpi == "auto":
        dpi = None
    elif type(raw_dpi) is int and 50 <= raw_dpi <= 1000:
        dpi = raw_dpi
    else:
        raise s.error("dpi", f'must be "auto" or 50..1000, got {raw_dpi!r}')
    fullscreen = s.take("fullscreen", bool, True, "true or false")
    s.done()
    return ScreenSettings(size, orientation, dpi, fullscreen)


def load_settings(path: Path | str) -> KioskSettings:
    """Read and check a settings file; SettingsError names the file and the key at fault."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    return replace(parse_settings(data, str(path), path.parent), source=path)
