"""The topic layout: building and parsing ``hymy/v1/<device>/<kind>``."""

from __future__ import annotations

import pytest

from protocol import ProtocolError
from protocol.topics import (
    DEVICE_KINDS,
    FLEET_PUBLISHES,
    FLEET_STATE,
    TERMINAL_PUBLISHES,
    check_device_id,
    device_topic,
    parse_topic,
    subscription,
)

VALID_IDS = ["abc", "kiosk-001", "0a0", "a" * 64, "hus-meilahti-er-3", "a--"]
INVALID_IDS = [
    "",
    "ab",  # too short
    "a" * 65,  # too long
    "-abc",  # must start with a letter or digit
    "_fleet",  # reserved for the fleet
    "Kiosk-1",  # upper case
    "kiosk_1",
    "kiosk.1",
    "kiosk 1",
    "kiosk/1",
    "kiosk+",
    "kiosk#",
    "kiosk-1\n",  # a trailing newline slips past a ``$`` anchor
    "kiöski",
]


@pytest.mark.parametrize("device", VALID_IDS)
def test_valid_device_ids_are_accepted(device: str) -> None:
    assert check_device_id(device) == device


@pytest.mark.parametrize("device", INVALID_IDS)
def test_invalid_device_ids_are_refused(device: str) -> None:
    with pytest.raises(ProtocolError) as err:
        check_device_id(device)
    assert err.value.reason == "invalid"


@pytest.mark.parametrize("device", INVALID_IDS)
def test_no_topic_is_built_for_an_invalid_device_id(device: str) -> None:
    with pytest.raises(ValueError):
        device_topic(device, "votes")


@pytest.mark.parametrize(
    ("kind", "topic"),
    [
        ("votes", "hymy/v1/kiosk-001/votes"),
        ("ack", "hymy/v1/kiosk-001/ack"),
        ("state", "hymy/v1/kiosk-001/state"),
        ("heartbeat", "hymy/v1/kiosk-001/heartbeat"),
        ("config", "hymy/v1/kiosk-001/config"),
        ("config/report", "hymy/v1/kiosk-001/config/report"),
    ],
)
def test_device_topics_are_built_and_parsed_back(kind: str, topic: str) -> None:
    assert device_topic("kiosk-001", kind) == topic
    assert parse_topic(topic) == ("kiosk-001", kind)


def test_every_device_kind_is_published_by_exactly_one_side() -> None:
    assert sorted(TERMINAL_PUBLISHES + FLEET_PUBLISHES) == sorted(DEVICE_KINDS)
    assert not set(TERMINAL_PUBLISHES) & set(FLEET_PUBLISHES)


@pytest.mark.parametrize("kind", ["", "vote", "Votes", "config/", "report", "_fleet", "state/x", "#"])
def test_unknown_kinds_are_a_caller_error_when_building(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown topic kind"):
        device_topic("kiosk-001", kind)
    with pytest.raises(ValueError, match="unknown topic kind"):
        subscription(kind)


def test_fleet_subscribes_to_one_wildcard_per_kind() -> None:
    assert subscription("votes") == "hymy/v1/+/votes"
    assert subscription("config/report") == "hymy/v1/+/config/report"


def test_fleet_state_topic_parses_to_the_fleet_segment() -> None:
    assert FLEET_STATE == "hymy/v1/_fleet/state"
    assert parse_topic(FLEET_STATE) == ("_fleet", "state")


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "hymy",
        "hymy/v1",
        "hymy/v1/",
        "hymy/v2/kiosk-001/votes",  # another root version
        "Hymy/v1/kiosk-001/votes",
        "/hymy/v1/kiosk-001/votes",
        "other/v1/kiosk-001/votes",
        "hymy/v1/kiosk-001",  # no kind
        "hymy/v1/kiosk-001/",
        "hymy/v1/kiosk-001/vote",
        "hymy/v1/kiosk-001/votes/",
        "hymy/v1/kiosk-001/votes/extra",
        "hymy/v1/kiosk-001/config/reports",
        "hymy/v1/kiosk-001/report",
        "hymy/v1/KIOSK-001/votes",  # bad device id
        "hymy/v1/ab/votes",
        "hymy/v1/kiosk-001\n/votes",
        "hymy/v1/+/votes",  # a filter, not a topic
        "hymy/v1/#",
        "hymy/v1/_fleet",
        "hymy/v1/_fleet/",
        "hymy/v1/_fleet/votes",
        "hymy/v1/_fleet/state/x",
        "hymy/v1/_other/state",
    ],
)
def test_topics_outside_the_layout_are_unknown(topic: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_topic(topic)
    assert err.value.reason == "unknown_topic"
