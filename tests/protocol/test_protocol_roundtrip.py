"""Every message survives encode and decode unchanged, on the topic it belongs to."""

from __future__ import annotations

import json

from protocol import FleetState, Message, decode, decode_payload, encode, to_dict
from protocol.codec import TYPE_OF_KIND
from protocol.topics import FLEET_STATE, device_topic

KIND_OF_TYPE = {name: kind for kind, name in TYPE_OF_KIND.items()}


def topic_of(msg: Message) -> str:
    """The topic ``msg`` travels on."""
    if isinstance(msg, FleetState):
        return FLEET_STATE
    return device_topic(msg.device, KIND_OF_TYPE[to_dict(msg)["type"]])


def test_every_message_round_trips_through_encode_and_decode(sample: Message) -> None:
    assert decode(topic_of(sample), encode(sample)) == sample


def test_every_message_round_trips_without_its_topic(sample: Message) -> None:
    assert decode_payload(encode(sample)) == sample


def test_reencoding_a_decoded_message_is_byte_identical(sample: Message) -> None:
    data = encode(sample)
    assert encode(decode(topic_of(sample), data)) == data


def test_encoding_is_compact_utf8_json_with_version_first(sample: Message) -> None:
    data = encode(sample)
    text = data.decode("utf-8")
    assert json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False) == text
    assert text.startswith('{"v":1,"type":"')


def test_non_ascii_text_travels_as_utf8_not_escapes() -> None:
    from protocol import ConfigReport

    data = encode(ConfigReport("kiosk-001", 2, "rejected", "kysymys ä ö å – 😀"))
    assert "ä ö å – 😀".encode() in data
    assert b"\\u" not in data


def test_empty_optional_vote_fields_are_left_out() -> None:
    from protocol import Vote, VoteBatch

    v = Vote(1, "q", "nps11", 10, "fi", 5, 6, "b", True)
    wire = to_dict(VoteBatch("kiosk-001", 1, (v,)))["votes"][0]
    assert set(wire) == {"seq", "question", "scale", "answer", "lang", "wall", "mono", "boot", "synced"}


def test_explicit_nulls_and_zero_cfg_decode_like_absent_fields() -> None:
    wire = {
        "v": 1,
        "type": "votes",
        "device": "kiosk-001",
        "batch": 1,
        "votes": [
            {
                **{"seq": 1, "question": "q", "scale": "nps11", "answer": 10, "lang": "fi"},
                **{"wall": 5, "mono": 6, "boot": "b", "synced": True},
                **{"unit": None, "cfg": 0, "flags": None, "role": None, "reason": None},
            }
        ],
    }
    msg = decode("hymy/v1/kiosk-001/votes", json.dumps(wire).encode())
    assert msg == decode_payload(encode(msg))
    assert encode(msg) == encode(decode_payload(encode(msg)))
