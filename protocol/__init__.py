"""Hymy's MQTT contract: topics, messages, limits and the one codec. Pure data, no I/O.

See SPEC.md beside this file for the wire format a compatible terminal must follow.
"""

from .codec import check_lang, check_vote, decode, decode_payload, encode, to_dict
from .configdoc import setting, validate_config_doc
from .errors import REASONS, PartialBatch, ProtocolError
from .limits import CURRENT_VERSION, MAX_BATCH_VOTES, MAX_PAYLOAD_BYTES, SUPPORTED_VERSIONS
from .messages import (
    REFUSAL_REASONS,
    VOTE_FLAGS,
    Ack,
    Config,
    ConfigReport,
    FleetState,
    Heartbeat,
    Message,
    TerminalState,
    Vote,
    VoteBatch,
    seq_ranges,
)
from .scales import SCALES, Scale, scale

__all__ = [
    "CURRENT_VERSION",
    "MAX_BATCH_VOTES",
    "MAX_PAYLOAD_BYTES",
    "REASONS",
    "REFUSAL_REASONS",
    "SCALES",
    "SUPPORTED_VERSIONS",
    "VOTE_FLAGS",
    "Ack",
    "Config",
    "ConfigReport",
    "FleetState",
    "Heartbeat",
    "Message",
    "PartialBatch",
    "ProtocolError",
    "Scale",
    "TerminalState",
    "Vote",
    "VoteBatch",
    "check_lang",
    "check_vote",
    "decode",
    "decode_payload",
    "encode",
    "scale",
    "seq_ranges",
    "setting",
    "to_dict",
    "validate_config_doc",
]
