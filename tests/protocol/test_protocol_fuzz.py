"""Whatever arrives, decode returns a message or raises ProtocolError, never anything else;
and every valid message, generated, decodes to itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protocol import (
    SCALES,
    VOTE_FLAGS,
    Ack,
    Config,
    ConfigReport,
    FleetState,
    Heartbeat,
    Message,
    ProtocolError,
    TerminalState,
    Vote,
    VoteBatch,
    decode,
    decode_payload,
    encode,
    to_dict,
)
from protocol.codec import TYPE_OF_KIND
from protocol.configdoc import SHIPPED_LANGUAGES
from protocol.limits import MAX_FW, MAX_ID, MAX_INT, MAX_REPORT_REASON
from protocol.messages import CONFIG_STATUSES, REFUSAL_REASONS, ROLES
from protocol.topics import FLEET_STATE, device_topic

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


# --- valid messages round-trip ------------------------------------------------------------------
# The tests above accept a ProtocolError as an answer, so they would also pass if the codec
# rejected every message. These generate valid messages of all seven types as the objects a
# writer holds and require each to come back unchanged, on its topic and without it.

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)
device_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{2,63}", fullmatch=True)
langs = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?", fullmatch=True)
uint53 = st.integers(0, MAX_INT) | st.sampled_from([0, 1, MAX_INT])
texts = st.text(min_size=1, max_size=60).filter(str.strip)


@st.composite
def any_vote(draw: st.DrawFn, seq: int) -> Vote:
    """A valid vote with ``seq``, any scale and any subset of the optional fields."""
    scale = draw(st.sampled_from(sorted(SCALES)))
    return Vote(
        seq=seq,
        question=draw(ids),
        scale=scale,
        answer=draw(st.integers(0, SCALES[scale].size - 1)),
        lang=draw(langs),
        wall=draw(uint53),
        mono=draw(uint53),
        boot=draw(ids),
        synced=draw(st.booleans()),
        unit=draw(st.none() | ids),
        cfg=draw(uint53),
        flags=draw(st.frozensets(st.sampled_from(sorted(VOTE_FLAGS)))),
        role=draw(st.none() | st.sampled_from(sorted(ROLES))),
        reason=draw(st.none() | ids),
    )


@st.composite
def vote_batches(draw: st.DrawFn) -> VoteBatch:
    seqs = draw(st.lists(st.integers(1, MAX_INT) | st.integers(1, 50), min_size=1, max_size=6, unique=True))
    return VoteBatch(
        device=draw(device_ids),
        batch=draw(uint53),
        votes=tuple(draw(any_vote(seq)) for seq in seqs),
        store=draw(st.none() | ids),
    )


@st.composite
def acks(draw: st.DrawFn) -> Ack:
    """Disjoint ascending ranges, each given to ``ranges`` or to one refusal reason."""
    points = sorted(draw(st.lists(st.integers(1, MAX_INT) | st.integers(1, 50), min_size=1, max_size=16, unique=True)))
    cuts = sorted(draw(st.sets(st.integers(0, len(points)), max_size=len(points))) | {0, len(points)})
    runs = [(points[a], points[b - 1]) for a, b in zip(cuts, cuts[1:], strict=False)]
    owners = [draw(st.sampled_from([None, *REFUSAL_REASONS])) for _ in runs]
    refused = tuple(
        (reason, tuple(r for r, o in zip(runs, owners, strict=True) if o == reason))
        for reason in draw(st.permutations(REFUSAL_REASONS))
        if reason in owners
    )
    return Ack(
        device=draw(device_ids),
        batch=draw(uint53),
        ranges=tuple(r for r, o in zip(runs, owners, strict=True) if o is None),
        store=draw(st.none() | ids),
        refused=refused,
    )


@st.composite
def terminal_states(draw: st.DrawFn) -> TerminalState:
    fw = draw(st.none() | st.text(max_size=MAX_FW))
    return TerminalState(draw(device_ids), draw(st.booleans()), draw(uint53), draw(uint53), fw)


@st.composite
def heartbeats(draw: st.DrawFn) -> Heartbeat:
    queue = draw(uint53)
    return Heartbeat(
        device=draw(device_ids),
        wall=draw(uint53),
        mono=draw(uint53),
        boot=draw(ids),
        synced=draw(st.booleans()),
        uptime=draw(uint53),
        queue=queue,
        oldest=None if queue == 0 else draw(uint53),
        cfg=draw(uint53),
        fw=draw(st.text(max_size=MAX_FW)),
        temp=draw(st.none() | st.floats(-100, 200) | st.integers(-100, 200)),
        disk=draw(st.none() | uint53),
        refused=draw(st.none() | uint53),
    )


@st.composite
def config_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document in shipped languages with any of the simple optional keys."""
    offered = draw(st.lists(st.sampled_from(SHIPPED_LANGUAGES), min_size=1, unique=True))
    question: dict[str, Any] = {
        "id": draw(ids),
        "scale": draw(st.sampled_from(sorted(SCALES))),
        "text": {lang: draw(texts) for lang in offered},
    }
    question.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "sources": st.dictionaries(st.sampled_from(offered), texts, min_size=1),
                    "review": st.lists(st.sampled_from(offered), unique=True),
                },
            )
        )
    )
    doc = {
        "unit": draw(st.none() | ids),
        "languages": offered,
        "default_language": draw(st.sampled_from(offered)),
        "question": question,
    }
    optional = {
        "misuse_interval_s": st.floats(0, 3600) | st.integers(0, 3600),
        "thanks_s": st.floats(1, 120) | st.integers(1, 120),
        "role_question": st.booleans(),
        "feedback_url": st.none() | st.just("https://example.fi/palaute?q=1"),
        "display": st.fixed_dictionaries(
            {}, optional={"brightness": st.integers(0, 100), "sleep_after_s": st.integers(0, 86400)}
        ),
    }
    return {**doc, **draw(st.fixed_dictionaries({}, optional=optional))}


@st.composite
def config_reports(draw: st.DrawFn) -> ConfigReport:
    status = draw(st.sampled_from(sorted(CONFIG_STATUSES)))
    reason = draw(
        st.text(min_size=1, max_size=MAX_REPORT_REASON) | (st.none() if status == "applied" else st.nothing())
    )
    return ConfigReport(draw(device_ids), draw(st.integers(1, MAX_INT)), status, reason)


valid_messages: st.SearchStrategy[Message] = st.one_of(
    vote_batches(),
    acks(),
    terminal_states(),
    heartbeats(),
    st.builds(Config, device_ids, st.integers(1, MAX_INT), config_docs()),
    config_reports(),
    st.builds(FleetState, st.booleans(), uint53, st.text(max_size=MAX_ID)),
)


def topic_of(msg: Message) -> str:
    """The topic ``msg`` travels on."""
    if isinstance(msg, FleetState):
        return FLEET_STATE
    kind = {name: kind for kind, name in TYPE_OF_KIND.items()}[to_dict(msg)["type"]]
    return device_topic(msg.device, kind)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages)
def test_every_valid_message_decodes_to_itself_on_its_topic(msg: Message) -> None:
    event(type(msg).__name__)  # --hypothesis-show-statistics: every type is drawn
    assert decode(topic_of(msg), encode(msg)) == msg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages)
def test_every_valid_message_decodes_to_itself_without_its_topic(msg: Message) -> None:
    assert decode_payload(encode(msg)) == msg
