"""The enrolment exchange (SPEC §13) and the access rules (SPEC §2.3) as pure data."""

from __future__ import annotations

import json

import pytest

from protocol import enrolment as e
from protocol import topics
from protocol.access import PUBLISH, SUBSCRIBE, acl_file_text, fleet_rules, terminal_rules

SECRET = "Secret_value-1234567890"
PASSWORD = "p" * 40


def body(**fields: object) -> bytes:
    return json.dumps({"v": 1, **fields}).encode()


def test_a_request_round_trips_and_its_repr_hides_the_secret_and_password() -> None:
    req = e.EnrolRequest(SECRET, "10000000abcdef01", PASSWORD, "hymy-0.2")
    assert e.decode_enrol(e.encode_request(req)) == req
    assert SECRET not in repr(req) and PASSWORD not in repr(req)
    status = e.StatusRequest("r" * 20, PASSWORD)
    assert e.decode_status(e.encode_request(status)) == status
    assert PASSWORD not in repr(status)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"secret": "short", "hardware": "x", "password": PASSWORD}, "secret"),
        ({"secret": SECRET, "hardware": "has space", "password": PASSWORD}, "hardware"),
        ({"secret": SECRET, "hardware": "x", "password": "too-short"}, "password"),
        ({"secret": SECRET, "hardware": "x", "password": PASSWORD, "extra": 1}, "extra"),
        ({"secret": SECRET + "<", "hardware": "x", "password": PASSWORD}, "secret"),
    ],
)
def test_a_bad_request_is_invalid_naming_the_field_but_never_its_value(fields: dict[str, object], named: str) -> None:
    with pytest.raises(e.EnrolmentError) as caught:
        e.decode_enrol(body(**fields))
    assert caught.value.error == "invalid" and caught.value.http_status == 400
    assert named in caught.value.detail
    assert SECRET not in str(caught.value) and PASSWORD not in str(caught.value)


@pytest.mark.parametrize("raw", [b"", b"[]", b"\xff", b'{"v": 2}', b"x" * 5000])
def test_bodies_that_are_not_version_1_objects_are_invalid(raw: bytes) -> None:
    with pytest.raises(e.EnrolmentError, match="invalid"):
        e.decode_enrol(raw)


def test_an_answer_round_trips_and_its_username_is_the_device_id() -> None:
    answer = e.EnrolAnswer(e.PENDING, "hymy-abcdef01", "q" * 24, e.Broker("mqtt.example.fi", 8883, True), 15)
    decoded = e.decode_answer(e.encode_answer(answer))
    assert decoded == answer and decoded.username == "hymy-abcdef01"
    tampered = json.loads(e.encode_answer(answer))
    tampered["username"] = "someone-else"
    with pytest.raises(e.EnrolmentError, match="username"):
        e.decode_answer(json.dumps(tampered).encode())


def test_refusals_travel_with_their_http_status_and_retry_after() -> None:
    refusal = e.EnrolmentError("rate_limited", "too many attempts", retry_after=60)
    back = e.decode_error(e.encode_error(refusal))
    assert (back.error, back.retry_after, refusal.http_status) == ("rate_limited", 60, 429)
    assert {e.ERRORS[k] for k in ("secret_unknown", "secret_expired", "secret_used_up")} == {403}
    assert e.decode_error(b"<html>").error == "invalid"


def test_a_terminal_may_publish_only_its_own_kinds_and_read_only_its_own_and_the_fleet_state() -> None:
    rules = terminal_rules("kiosk-001")
    published = {r.topic for r in rules if r.action == PUBLISH}
    read = {r.topic for r in rules if r.action == SUBSCRIBE}
    assert published == {topics.device_topic("kiosk-001", k) for k in topics.TERMINAL_PUBLISHES}
    assert read == {topics.device_topic("kiosk-001", k) for k in topics.FLEET_PUBLISHES} | {topics.FLEET_STATE}
    assert not any("+" in t or "#" in t for t in published | read)
    fleet = fleet_rules()
    assert {r.topic for r in fleet if r.action == PUBLISH} == {
        topics.subscription(topics.ACK),
        topics.subscription(topics.CONFIG),
        topics.FLEET_STATE,
    }
    with pytest.raises(Exception, match="device id"):
        terminal_rules("+")


def test_the_acl_file_patterns_are_the_ones_the_spec_prints() -> None:
    from pathlib import Path

    import protocol

    spec = (Path(protocol.__file__).parent / "SPEC.md").read_text(encoding="utf-8")
    patterns = [line for line in acl_file_text("hymy-fleet").splitlines() if line.startswith("pattern ")]
    assert len(patterns) == 7
    assert "\n".join(patterns) in spec
