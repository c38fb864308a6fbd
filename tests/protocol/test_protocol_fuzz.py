"""Whatever arrives, decode returns a message or raises ProtocolError, never anything else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import Message, ProtocolError, decode, decode_payload, encode

DEVICE = "kiosk-001"
TOPICS = [
    f"hymy/v1/{DEVICE}/votes",
    f"hymy/v1/{DEVICE}/ack",
    f"hymy/v1/{DEVICE}/state",
    f"hymy/v1/{DEVICE}/heartbeat",
    f"hymy/v1/{DEVICE}/config",
    f"hymy/v1/{DEVICE}/config/report",
    "hymy/v1/_fleet/state",
]

FIELD_NAMES = [
    "v", "type", "device", "batch", "votes", "ranges", "online", "conn", "wall", "fw", "mono", "boot",
    "synced", "uptime", "queue", "oldest", "cfg", "temp", "disk", "version", "doc", "status", "reason",
    "instance", "seq", "question", "scale", "answer", "lang", "unit", "flags", "role",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, 2, 10, 11, -1, 2**53 - 1, 2**53, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["fi", "FI", "nps11", "faces4", "misuse", "client", "applied", "rejected", DEVICE, "votes", ""]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=30,
)


def valid_vote(seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "question": "thl-nps",
        "scale": "nps11",
        "answer": 7,
        "lang": "fi",
        "wall": 1_700_000_000_000,
        "mono": 1000,
        "boot": "boot-1",
        "synced": True,
        "unit": "ward-3",
        "cfg": 2,
        "flags": ["misuse"],
        "role": "client",
        "reason": "wait",
    }


@st.composite
def near_valid_batches(draw: st.DrawFn) -> dict[str, Any]:
    """A valid vote batch with a few fields replaced, removed or added."""
    n = draw(st.integers(min_value=1, max_value=4))
    batch: dict[str, Any] = {"v": 1, "type": "votes", "device": DEVICE, "batch": 1}
    votes = [valid_vote(s) for s in range(1, n + 1)]
    batch["votes"] = votes
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target = draw(st.sampled_from([batch, *votes]))
        key = draw(keys)
        action = draw(st.sampled_from(["set", "drop"]))
        if action == "drop":
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return batch


def check(topic: str | None, payload: bytes) -> Message | None:
    """Decode, allowing only a message or a ProtocolError; a message must re-encode to itself."""
    try:
        msg = decode_payload(payload) if topic is None else decode(topic, payload)
    except ProtocolError:
        return None
    assert decode_payload(encode(msg)) == msg
    return msg


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([None, *TOPICS]))
def test_arbitrary_bytes_decode_to_a_message_or_a_protocol_error(payload: bytes, topic: str | None) -> None:
    check(topic, payload)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from([None, *TOPICS]))
def test_arbitrary_json_decodes_to_a_message_or_a_protocol_error(value: Any, topic: str | None) -> None:
    check(topic, json.dumps(value).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_values, max_size=10), st.sampled_from(["votes", "ack", "state", "heartbeat",
       "config", "config_report", "fleet_state"]), st.sampled_from([None, *TOPICS]))  # fmt: skip
def test_objects_with_a_known_type_decode_to_a_message_or_a_protocol_error(
    fields: dict[str, Any], kind: str, topic: str | None
) -> None:
    check(topic, json.dumps({**fields, "v": 1, "type": kind}).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_batches(), st.sampled_from([None, f"hymy/v1/{DEVICE}/votes"]))
def test_near_valid_vote_batches_decode_to_a_message_or_a_protocol_error(
    batch: dict[str, Any], topic: str | None
) -> None:
    check(topic, json.dumps(batch, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@settings(max_examples=150, deadline=None)
@given(near_valid_batches(), st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=3))
def test_corrupted_bytes_of_a_batch_decode_to_a_message_or_a_protocol_error(
    batch: dict[str, Any], at: int, junk: bytes
) -> None:
    data = json.dumps(batch).encode()
    at %= len(data)
    check(None, data[:at] + junk + data[at + len(junk) :])


def test_an_unmutated_near_valid_batch_is_valid() -> None:
    batch = {"v": 1, "type": "votes", "device": DEVICE, "batch": 1, "votes": [valid_vote(1), valid_vote(2)]}
    assert check(f"hymy/v1/{DEVICE}/votes", json.dumps(batch).encode()) is not None
