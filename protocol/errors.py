"""The one error the protocol raises, with a machine-readable reason for counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .messages import VoteBatch

#: Reasons a message can be rejected; receivers count rejections per reason.
REASONS = (
    "malformed",  # not UTF-8 JSON, or not an object
    "oversized",  # payload larger than MAX_PAYLOAD_BYTES
    "unknown_version",  # schema version this side does not speak
    "unknown_topic",  # topic outside the layout
    "device_mismatch",  # payload names another terminal than its topic
    "invalid",  # a field is missing, of the wrong type, out of range or unknown
)


class ProtocolError(ValueError):
    """A message or topic that does not follow the contract.

    Subclasses ValueError because a bad message is bad input, like paho's own
    caller errors; ``reason`` is one of REASONS so that receivers can count
    rejections without parsing text.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PartialBatch(ProtocolError):
    """A ``votes`` batch whose envelope is valid but some of whose votes are not.

    The receiver can store ``batch`` (the valid votes, possibly none) and refuse the seqs in
    ``refused`` with reason ``invalid``, so one vote the fleet cannot read (say, from newer
    firmware) never blocks the rest of the terminal's backlog.
    """

    def __init__(self, detail: str, batch: VoteBatch, refused: tuple[tuple[int, str], ...]) -> None:
        super().__init__("invalid", detail)
        self.batch = batch
        self.refused = refused  # (seq, what was wrong with it)
