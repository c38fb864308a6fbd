"""The one root exception of the terminal, so callers catch device faults without knowing SQLite or paho."""

from __future__ import annotations


class DeviceError(Exception):
    """Anything the terminal cannot do; foreign errors are translated into this at the boundary."""


class StoreError(DeviceError):
    """The vote database cannot be opened, read or written (corrupt file, full disk, bad pragmas)."""


class NotConfiguredError(DeviceError):
    """The terminal has no configuration yet, so it has no question to record answers to."""


class MqttError(DeviceError):
    """The MQTT client refused a call (a caller mistake; network loss is a state, not this)."""
