"""The one root exception of the fleet, so callers catch fleet faults without knowing SQLite or paho."""

from __future__ import annotations


class FleetError(Exception):
    """Anything the fleet cannot do; foreign errors are translated into this at the boundary."""


class StoreError(FleetError):
    """The fleet database cannot be opened, read or written (corrupt file, full disk, locked)."""


class ConfigError(FleetError, ValueError):
    """A configuration cannot be stored: invalid document or a version older than the desired one."""
