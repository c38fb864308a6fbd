"""Opening hours for the terminal: the protocol's rules (protocol/hours.py), shared with the fleet."""

from __future__ import annotations

from protocol.hours import HoursError, check_hours, is_open, next_opening, zone

__all__ = ["HoursError", "check_hours", "is_open", "next_opening", "zone"]
