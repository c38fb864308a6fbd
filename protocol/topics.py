"""The topic layout: ``hymy/v1/<device>/<kind>``.

The terminal's id comes right after the versioned root so that one broker ACL pattern
(``pattern readwrite hymy/v1/%u/#``) confines each terminal to its own subtree. The fleet's
own topics live under ``hymy/v1/_fleet/``; ``_`` can never start a device id.
"""

from __future__ import annotations

import re

from .errors import ProtocolError

ROOT = "hymy/v1"
FLEET_SEGMENT = "_fleet"

# ``\Z`` rather than ``$``: ``$`` also matches before a trailing newline, which would let
# ``"abc\n"`` through.
DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}\Z")

# Kinds under a terminal's subtree, with who publishes them.
VOTES = "votes"  # terminal -> fleet
ACK = "ack"  # fleet -> terminal
STATE = "state"  # terminal -> fleet, retained, also the last will
HEARTBEAT = "heartbeat"  # terminal -> fleet
CONFIG = "config"  # fleet -> terminal, retained
CONFIG_REPORT = "config/report"  # terminal -> fleet, retained

DEVICE_KINDS = (VOTES, ACK, STATE, HEARTBEAT, CONFIG, CONFIG_REPORT)
#: What the terminal publishes; the fleet subscribes to these for every terminal.
TERMINAL_PUBLISHES = (VOTES, STATE, HEARTBEAT, CONFIG_REPORT)
#: What the fleet publishes to one terminal; the terminal subscribes to these.
FLEET_PUBLISHES = (ACK, CONFIG)

FLEET_STATE = f"{ROOT}/{FLEET_SEGMENT}/state"


def check_device_id(device: str) -> str:
    """Return ``device`` if it is a valid terminal id, else raise ProtocolError."""
    if not isinstance(device, str) or not DEVICE_ID_RE.match(device):
        raise ProtocolError("invalid", f"bad device id {device!r}")
    return device


def device_topic(device: str, kind: str) -> str:
    """The topic of ``kind`` for terminal ``device``."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{ROOT}/{check_device_id(device)}/{kind}"


def subscription(kind: str) -> str:
    """The wildcard filter that matches ``kind`` for every terminal (for the fleet)."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{ROOT}/+/{kind}"


def parse_topic(topic: str) -> tuple[str, str]:
    """Split a topic into ``(device, kind)``; the fleet's own topics give ``("_fleet", kind)``."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        raise ProtocolError("unknown_topic", f"topic {topic!r} is outside {ROOT}/")
    device, _, kind = topic[len(prefix) :].partition("/")
    if device == FLEET_SEGMENT:
        if kind != "state":
            raise ProtocolError("unknown_topic", f"unknown fleet topic {topic!r}")
        return device, kind
    if not DEVICE_ID_RE.match(device):
        raise ProtocolError("unknown_topic", f"bad device id in topic {topic!r}")
    if kind not in DEVICE_KINDS:
        raise ProtocolError("unknown_topic", f"unknown kind in topic {topic!r}")
    return device, kind
