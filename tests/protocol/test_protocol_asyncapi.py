"""asyncapi.yaml and schemas/ say what SPEC.md says and accept exactly what the codec accepts.

The codec is the ground truth. Each schema must accept and reject what ``decode_payload`` accepts
and rejects, except where a message breaks one of the rules in ``EXCEPTIONS``: rules JSON Schema
cannot express, named in the schemas' ``$comment`` too. A schema is never stricter than the codec.

Patterns are matched as ECMA-262 (JSON Schema's dialect) through ``regress``, not Python's ``re``,
whose ``$`` also matches before a trailing newline; so the tests see what a third party's
validator sees.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import regress
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError, validators

import protocol
from protocol import Message, ProtocolError, decode, decode_payload, to_dict
from protocol.codec import _PARSERS, ID_RE, LANG_RE
from protocol.configdoc import known_time_zone, missing_strings
from protocol.limits import (
    MAX_ACK_RANGES,
    MAX_BATCH_VOTES,
    MAX_CONFIG_DOC_BYTES,
    MAX_FW,
    MAX_ID,
    MAX_INT,
    MAX_PAYLOAD_BYTES,
    MAX_REFUSALS,
    MAX_REPORT_REASON,
)
from protocol.topics import DEVICE_ID_RE, DEVICE_KINDS, FLEET_STATE

HERE = Path(protocol.__file__).parent
SPEC = (HERE / "SPEC.md").read_text(encoding="utf-8")
ASYNCAPI: dict[str, Any] = yaml.safe_load((HERE / "asyncapi.yaml").read_text(encoding="utf-8"))
SCHEMAS: dict[str, dict[str, Any]] = {
    kind: json.loads((HERE / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8")) for kind in _PARSERS
}
OFFICIAL = json.loads((Path(__file__).parent / "vendor" / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
DEVICE = "kiosk-001"

# --- an ECMA-262 validator --------------------------------------------------------------------


@functools.cache
def _ecma(pattern: str) -> regress.Regex:
    return regress.Regex(pattern, "u")


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``pattern`` keyword as JSON Schema defines it: an unanchored ECMA-262 search."""
    if not validator.is_type(instance, "string"):
        return
    # Rust strings cannot hold an unpaired surrogate; for our patterns U+FFFD matches alike
    # (not ASCII, not whitespace), and the codec rejects such text anyway (lone_surrogate).
    text = re.sub("[\ud800-\udfff]", "\ufffd", instance)
    if _ecma(pattern).find(text) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATORS = {kind: EcmaValidator(schema) for kind, schema in SCHEMAS.items()}

# --- the rules the schemas cannot express -------------------------------------------------------

#: Keys whose values are JSON numbers (integer or fraction); every other number must be an integer.
NUMBER_KEYS = frozenset({"temp", "misuse_interval_s", "thanks_s"})


def _values(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every value in a JSON tree with the key it sits under (None in lists); keys count as values."""
    yield key, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield None, k
            yield from _values(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _values(v, key if key in NUMBER_KEYS else None)


def _integer_spelling(m: Any, payload: bytes) -> bool:
    return any(type(v) is float and v.is_integer() and k not in NUMBER_KEYS for k, v in _values(m))


def _lone_surrogate(m: Any, payload: bytes) -> bool:
    return any(isinstance(v, str) and re.search("[\ud800-\udfff]", v) for _, v in _values(m))


def _payload_bytes(m: Any, payload: bytes) -> bool:
    return len(payload) > MAX_PAYLOAD_BYTES


def _of(m: Any, kind: str) -> bool:
    return isinstance(m, dict) and m.get("type") == kind


def _batch_distinct_seqs(m: Any, payload: bytes) -> bool:
    votes = m.get("votes") if _of(m, "votes") else None
    if not isinstance(votes, list):
        return False
    seqs = [v["seq"] for v in votes if isinstance(v, dict) and type(v.get("seq")) is int]
    return len(set(seqs)) != len(seqs)


def _pairs(raw: Any) -> list[tuple[int, int]]:
    if not isinstance(raw, list):
        return []
    return [(r[0], r[1]) for r in raw if isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r)]


def _seq_ranges_ordered(m: Any, payload: bytes) -> bool:
    if not _of(m, "ack"):
        return False
    lists = [_pairs(m.get("ranges"))]
    if isinstance(m.get("refused"), list):
        lists += [_pairs(r.get("ranges")) for r in m["refused"] if isinstance(r, dict)]
    every: list[tuple[int, int]] = []
    for pairs in lists:
        if any(lo > hi for lo, hi in pairs) or any(b[0] <= a[1] for a, b in zip(pairs, pairs[1:], strict=False)):
            return True
        every += pairs
    every.sort()
    return any(b[0] <= a[1] for a, b in zip(every, every[1:], strict=False))


def _doc(m: Any) -> dict[str, Any]:
    doc = m.get("doc") if _of(m, "config") else None
    return doc if isinstance(doc, dict) else {}


def _config_doc_bytes(m: Any, payload: bytes) -> bool:
    if not _of(m, "config") or "doc" not in m:
        return False
    encoded = json.dumps(m["doc"], separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return len(encoded) > MAX_CONFIG_DOC_BYTES


def _branches(doc: dict[str, Any]) -> list[dict[str, Any]]:
    followup = doc.get("followup")
    branches = followup.get("branches") if isinstance(followup, dict) else None
    return [b for b in branches if isinstance(b, dict)] if isinstance(branches, list) else []


def _config_language_references(m: Any, payload: bytes) -> bool:
    doc = _doc(m)
    langs = doc.get("languages")
    if not isinstance(langs, list):
        return False
    if "default_language" in doc and doc["default_language"] not in langs:
        return True
    question: dict[str, Any] = doc["question"] if isinstance(doc.get("question"), dict) else {}
    maps = [question.get("text")]
    for branch in _branches(doc):
        maps.append(branch.get("question"))
        if isinstance(branch.get("choices"), list):
            maps += [c.get("text") for c in branch["choices"] if isinstance(c, dict)]
    if any(isinstance(texts, dict) and not all(lang in texts for lang in langs) for texts in maps):
        return True
    text, review = question.get("text"), question.get("review")
    return isinstance(text, dict) and isinstance(review, list) and not all(lang in text for lang in review)


def _config_hours_ordered(m: Any, payload: bytes) -> bool:
    hours = _doc(m).get("hours")
    weekly = hours.get("weekly") if isinstance(hours, dict) else None
    if not isinstance(weekly, dict):
        return False
    hhmm = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
    for intervals in weekly.values():
        last_close = -1
        for pair in intervals if isinstance(intervals, list) else []:
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(t, str) and hhmm.fullmatch(t) for t in pair)
            ):
                continue
            start, end = (int(t[:2]) * 60 + int(t[3:]) for t in pair)
            if not last_close <= start < end:
                return True
            last_close = end
    return False


def _config_followup_distinct(m: Any, payload: bytes) -> bool:
    seen: set[int] = set()
    for branch in _branches(_doc(m)):
        answers = (
            {a for a in branch.get("answers", []) if type(a) is int}
            if isinstance(branch.get("answers"), list)
            else set()
        )
        if seen & answers:
            return True
        seen |= answers
        choices: list[Any] = branch["choices"] if isinstance(branch.get("choices"), list) else []
        ids = [c["id"] for c in choices if isinstance(c, dict) and isinstance(c.get("id"), str)]
        if len(set(ids)) != len(ids):
            return True
    return False


def _config_tz_known(m: Any, payload: bytes) -> bool:
    hours = _doc(m).get("hours")
    tz = hours.get("tz") if isinstance(hours, dict) else None
    return isinstance(tz, str) and not known_time_zone(tz)


def _config_dates_real(m: Any, payload: bytes) -> bool:
    hours = _doc(m).get("hours")
    dates = hours.get("closed_dates") if isinstance(hours, dict) else None
    for day in dates if isinstance(dates, list) else []:
        if isinstance(day, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
            try:
                date.fromisoformat(day)
            except ValueError:
                return True
    return False


def _config_language_strings(m: Any, payload: bytes) -> bool:
    doc = _doc(m)
    if not isinstance(doc.get("languages"), list) or not all(isinstance(x, str) for x in doc["languages"]):
        return False
    strings = doc.get("strings")
    if strings is not None and not isinstance(strings, dict):
        return False
    try:
        return bool(missing_strings(doc))
    except (AttributeError, TypeError):
        return False


#: Rules of the codec that JSON Schema cannot express, each a test of whether a message breaks it.
#: A message that breaks one may pass its schema although the codec rejects it; nothing else may
#: make the two disagree. Keep this list short: a rule the schemas can express belongs in them.
EXCEPTIONS: dict[str, Callable[[Any, bytes], bool]] = {
    "integer_spelling": _integer_spelling,
    "payload_bytes": _payload_bytes,
    "lone_surrogate": _lone_surrogate,
    "batch_distinct_seqs": _batch_distinct_seqs,
    "seq_ranges_ordered": _seq_ranges_ordered,
    "config_doc_bytes": _config_doc_bytes,
    "config_language_references": _config_language_references,
    "config_hours_ordered": _config_hours_ordered,
    "config_followup_distinct": _config_followup_distinct,
    "config_tz_known": _config_tz_known,  # the tz database of the checking side
    "config_dates_real": _config_dates_real,  # 2024-02-30 matches the pattern
    "config_language_strings": _config_language_strings,  # a non-shipped language brings every UI text
}

# --- verdicts ---------------------------------------------------------------------------------


def wire(m: Any) -> bytes:
    """``m`` as compact UTF-8 JSON, lone surrogates and all (the codec must reject those bytes)."""
    return json.dumps(m, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")


def codec_accepts(payload: bytes) -> bool:
    try:
        decode_payload(payload)
    except ProtocolError:
        return False
    return True


def schema_accepts(m: Any) -> bool:
    kind = m.get("type") if isinstance(m, dict) else None
    validator = VALIDATORS.get(kind) if isinstance(kind, str) else None
    return validator is not None and validator.is_valid(m)


def assert_agree(m: Any) -> bool:
    """The codec and the schemas give ``m`` the same verdict, or ``m`` breaks a named exception."""
    payload = wire(m)
    by_codec, by_schema = codec_accepts(payload), schema_accepts(m)
    if by_codec != by_schema:
        excused = [name for name, breaks in EXCEPTIONS.items() if breaks(m, payload)]
        assert by_schema and excused, (
            f"codec {'accepts' if by_codec else 'rejects'}, schema {'accepts' if by_schema else 'rejects'}: "
            f"{json.dumps(m, ensure_ascii=True)[:2000]}"
        )
    return by_codec


# --- the AsyncAPI document and the schemas themselves -------------------------------------------


def test_the_asyncapi_document_is_valid_asyncapi_3_0_0() -> None:
    Draft7Validator.check_schema(OFFICIAL)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in Draft7Validator(OFFICIAL).iter_errors(ASYNCAPI)]
    assert errors == []


def test_the_official_schema_catches_a_broken_document() -> None:
    broken = copy.deepcopy(ASYNCAPI)
    broken["operations"]["sendVotes"]["action"] = "publish"  # AsyncAPI 2's verb, not 3's
    assert not Draft7Validator(OFFICIAL).is_valid(broken)


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    assert SCHEMAS[kind]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMAS[kind])


def test_every_schema_pattern_is_ecma_262() -> None:
    patterns = [v["pattern"] for s in SCHEMAS.values() for _, v in _values(s) if isinstance(v, dict) and "pattern" in v]
    assert len(patterns) > 10
    for pattern in patterns:
        _ecma(pattern)  # raises on a pattern ECMA-262 cannot read


def test_every_exception_is_named_in_the_schemas_that_need_it() -> None:
    named = {name for schema in SCHEMAS.values() for name in EXCEPTIONS if f"{name}:" in schema["$comment"]}
    assert named == set(EXCEPTIONS)
    for kind, schema in SCHEMAS.items():
        assert "integer_spelling:" in schema["$comment"] and "payload_bytes:" in schema["$comment"], kind


def test_definitions_shared_between_schemas_are_identical() -> None:
    seen: dict[str, Any] = {}
    for kind, schema in SCHEMAS.items():
        for name, definition in schema["$defs"].items():
            assert seen.setdefault(name, definition) == definition, f"{kind}: $defs/{name} differs"


def _ecma_of(python_pattern: str) -> str:
    """A codec pattern as written in the schemas: ``\\Z`` (end of text) is ECMA-262's ``$``."""
    return python_pattern.replace(r"\Z", "$")


def test_the_schemas_use_the_codecs_patterns() -> None:
    for schema in SCHEMAS.values():
        defs = schema["$defs"]
        assert defs.get("deviceId", {"pattern": _ecma_of(DEVICE_ID_RE.pattern)})["pattern"] == _ecma_of(
            DEVICE_ID_RE.pattern
        )
        assert defs.get("identifier", {"pattern": _ecma_of(ID_RE.pattern)})["pattern"] == _ecma_of(ID_RE.pattern)
        assert defs.get("langTag", {"pattern": _ecma_of(LANG_RE.pattern)})["pattern"] == _ecma_of(LANG_RE.pattern)
    parameter = ASYNCAPI["components"]["parameters"]["device"]
    assert parameter["x-pattern"] == _ecma_of(DEVICE_ID_RE.pattern)
    assert f"`{parameter['x-pattern']}`" in parameter["description"]


# --- the AsyncAPI document against SPEC §2.2 ------------------------------------------------------

#: SPEC §2.2's table: topic, publisher → reader, message type, QoS, retained.
TOPIC_TABLE = re.findall(
    r"^\| `(hymy/v1/[^`]+)` \| (\w+) → ([\w ]+?)(?:;[^|]*)? \| `(\w+)` \| (\d) \| (yes|no) \|$", SPEC, re.MULTILINE
)


def _channel_of(topic: str) -> tuple[str, dict[str, Any]]:
    """The channel whose address matches a concrete topic (``{device}`` standing for a device id)."""
    for name, channel in ASYNCAPI["channels"].items():
        address = re.escape(channel["address"]).replace(r"\{device\}", "(?P<device>[^/]+)")
        found = re.fullmatch(address, topic)
        if found and all(DEVICE_ID_RE.match(d) for d in found.groupdict().values()):
            return name, channel
    raise AssertionError(f"no channel for {topic}")


def _message_kind(channel: dict[str, Any]) -> str:
    (message,) = channel["messages"].values()
    name = message["$ref"].rsplit("/", 1)[-1]
    return str(ASYNCAPI["components"]["messages"][name]["name"])


def _schema_file(channel: dict[str, Any]) -> str:
    (message,) = channel["messages"].values()
    payload = ASYNCAPI["components"]["messages"][message["$ref"].rsplit("/", 1)[-1]]["payload"]
    assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
    return str(payload["schema"]["$ref"])


def test_spec_topic_table_is_read() -> None:
    assert len(TOPIC_TABLE) == len(DEVICE_KINDS) + 1


def test_there_is_one_channel_per_topic_kind_of_the_spec() -> None:
    addresses = {c["address"] for c in ASYNCAPI["channels"].values()}
    assert addresses == {f"hymy/v1/{{device}}/{kind}" for kind in DEVICE_KINDS} | {FLEET_STATE}
    assert {t.replace("<device>", "{device}") for t, *_ in TOPIC_TABLE} == addresses


@pytest.mark.parametrize(("topic", "publisher", "reader", "kind", "qos", "retained"), TOPIC_TABLE)
def test_every_channel_carries_the_spec_message_with_its_qos_retain_and_direction(
    topic: str, publisher: str, reader: str, kind: str, qos: str, retained: str
) -> None:
    name, channel = _channel_of(topic.replace("<device>", DEVICE))
    assert _message_kind(channel) == kind
    assert _schema_file(channel) == f"./schemas/{kind}.schema.json"
    assert SCHEMAS[kind]["properties"]["type"]["const"] == kind
    if "{device}" in channel["address"]:
        assert channel["parameters"]["device"]["$ref"] == "#/components/parameters/device"
    (operation,) = [op for op in ASYNCAPI["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"]
    # The document takes the terminal's point of view.
    assert operation["action"] == ("send" if publisher == "terminal" else "receive")
    assert operation["bindings"]["mqtt"] == {"qos": int(qos), "retain": retained == "yes", "bindingVersion": "0.2.0"}


def test_the_document_says_whose_point_of_view_it_takes() -> None:
    assert "Point of view: the terminal" in ASYNCAPI["info"]["description"]


@pytest.mark.parametrize("version", ["3.1.1", "5.0"])
def test_the_servers_offer_both_mqtt_versions_of_the_spec(version: str) -> None:
    transport = SPEC.split("## 1. Transport")[1].split("\n## ")[0]
    assert f"MQTT {version.removesuffix('.0')}" in transport
    assert any(s["protocolVersion"] == version for s in ASYNCAPI["servers"].values())


# --- SPEC's examples -----------------------------------------------------------------------------

#: Every JSON block in SPEC.md, with the topic it is shown on (if any).
SPEC_JSON = re.findall(r"(?:\*\*Topic:\*\* `([^`]+)`\s*\n\s*)?```json\n(.*?)\n```", SPEC, re.DOTALL)


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None  # test_every_json_block_of_the_spec_is_json says so


#: Every JSON block in SPEC.md that is a whole message, with its topic.
SPEC_MESSAGES = [
    (topic or None, _parsed(body))
    for topic, body in SPEC_JSON
    if isinstance(_parsed(body), dict) and "type" in _parsed(body)
]


def test_every_json_block_of_the_spec_is_json() -> None:
    assert SPEC_JSON
    assert [body for _, body in SPEC_JSON if _parsed(body) is None] == []


def test_spec_has_an_example_of_every_message() -> None:
    assert {m["type"] for _, m in SPEC_MESSAGES} == set(SCHEMAS)


@pytest.mark.parametrize(
    ("topic", "message"), SPEC_MESSAGES, ids=[f"{i}-{m['type']}" for i, (_, m) in enumerate(SPEC_MESSAGES)]
)
def test_every_spec_example_validates_against_its_channels_schema(topic: str | None, message: dict[str, Any]) -> None:
    assert topic is not None, "every example names its topic"
    _, channel = _channel_of(topic)
    kind = _message_kind(channel)
    assert message["type"] == kind
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATORS[kind].iter_errors(message)]
    assert errors == []
    decode(topic, wire(message))


# --- agreement with the codec --------------------------------------------------------------------

MAX_ID_TEXT = "a" * MAX_ID


def _vote(seq: Any = 1, **changes: Any) -> dict[str, Any]:
    vote = {
        "seq": seq,
        "question": "thl-nps",
        "scale": "nps11",
        "answer": 9,
        "lang": "fi",
        "wall": 1_700_000_000_000,
        "mono": 60_000,
        "boot": "boot-1",
        "synced": True,
    }
    return {**vote, **changes}


def _batch(*votes: Any, **changes: Any) -> dict[str, Any]:
    return {"v": 1, "type": "votes", "device": DEVICE, "batch": 1, "votes": list(votes) or [_vote()], **changes}


def _ack(**changes: Any) -> dict[str, Any]:
    return {"v": 1, "type": "ack", "device": DEVICE, "batch": 1, "ranges": [[1, 3]], **changes}


def _state(**changes: Any) -> dict[str, Any]:
    return {"v": 1, "type": "state", "device": DEVICE, "online": True, "conn": 12, "wall": 1, "fw": "0.1.0", **changes}


def _heartbeat(**changes: Any) -> dict[str, Any]:
    base = {"v": 1, "type": "heartbeat", "device": DEVICE, "wall": 1, "mono": 2, "boot": "boot-1", "synced": True}
    base.update(uptime=3600, queue=2, oldest=3540, cfg=3, fw="0.1.0", temp=48.5, disk=5120)
    return {**base, **changes}


def config_doc() -> dict[str, Any]:
    return {
        "unit": "hus-meilahti-er",
        "languages": ["fi", "sv", "en"],
        "default_language": "fi",
        "question": {
            "id": "thl-nps",
            "scale": "nps11",
            "text": {"fi": "Suosittelisitko?", "sv": "Skulle du rekommendera?", "en": "Would you recommend?"},
            "sources": {"fi": "THL"},
            "review": ["en"],
        },
        "misuse_interval_s": 2.5,
        "thanks_s": 5,
    }


def _config(**doc_changes: Any) -> dict[str, Any]:
    doc = {**config_doc(), **doc_changes}
    return {"v": 1, "type": "config", "device": DEVICE, "version": 3, "doc": doc}


def _question(**changes: Any) -> dict[str, Any]:
    return {**config_doc()["question"], **changes}


def _report(**changes: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "config_report",
        "device": DEVICE,
        "version": 4,
        "status": "rejected",
        "reason": "x",
        **changes,
    }


def _fleet(**changes: Any) -> dict[str, Any]:
    return {"v": 1, "type": "fleet_state", "online": True, "wall": 0, "instance": "ingest-1", **changes}


def _hours(weekly: Any = None, **changes: Any) -> dict[str, Any]:
    return {
        "tz": "Europe/Helsinki",
        "weekly": {"mon": [["08:00", "12:00"], ["13:00", "24:00"]]} if weekly is None else weekly,
        **changes,
    }


def _followup(scale_answers: list[int], **changes: Any) -> dict[str, Any]:
    texts = {"fi": "Miksi?", "sv": "Varför?", "en": "Why?"}
    branch = {"answers": scale_answers, "question": texts, "choices": [{"id": "wait", "text": texts}]}
    return {"branches": [branch], **changes}


def _huge_batch() -> dict[str, Any]:
    big: dict[str, Any] = dict(
        question=MAX_ID_TEXT, boot=MAX_ID_TEXT, unit=MAX_ID_TEXT, reason=MAX_ID_TEXT, role="relative"
    )
    big.update(
        lang="abc-12345678", wall=MAX_INT, mono=MAX_INT, cfg=MAX_INT, flags=["after_hours", "historical", "misuse"]
    )
    return _batch(*[_vote(MAX_INT - i, **big) for i in range(MAX_BATCH_VOTES)], store=MAX_ID_TEXT, device="a" * 64)


#: Hand-picked edge cases: boundaries, wrong types, bools for ints, floats for ints, extra and
#: missing fields, out-of-range values, bad device ids. Their verdicts are in the ids (+ accepted).
EDGE_CASES: dict[str, Any] = {
    # envelopes
    "+minimal batch": _batch(),
    "not an object": [1, 2],
    "unknown type": {**_batch(), "type": "vote"},
    "v 2": _batch(v=2),
    "v true": _batch(v=True),
    "v '1'": _batch(v="1"),
    "v 1.0 (integer_spelling)": _batch(v=1.0),
    "no v": {k: v for k, v in _batch().items() if k != "v"},
    "extra field": _batch(extra=1),
    "+device 3 chars": _batch(device="abc"),
    "device 2 chars": _batch(device="ab"),
    "+device 64 chars": _batch(device="a" * 64),
    "device 65 chars": _batch(device="a" * 65),
    "device trailing newline": _batch(device="abc\n"),
    "device leading dash": _batch(device="-abc"),
    "device upper case": _batch(device="Abc"),
    "device _fleet": _batch(device="_fleet"),
    "device null": _batch(device=None),
    # votes
    "+store 64": _batch(store=MAX_ID_TEXT),
    "store 65": _batch(store=MAX_ID_TEXT + "a"),
    "+store null": _batch(store=None),
    "store empty": _batch(store=""),
    "store trailing newline": _batch(store="s1\n"),
    "+batch max": _batch(batch=MAX_INT),
    "batch max+1": _batch(batch=MAX_INT + 1),
    "batch -1": _batch(batch=-1),
    "batch true": _batch(batch=True),
    "batch 1.5": _batch(batch=1.5),
    "no votes": _batch(votes=[]),
    "votes not a list": _batch(votes={}),
    "+500 votes": _batch(*[_vote(i) for i in range(1, MAX_BATCH_VOTES + 1)]),
    "501 votes": _batch(*[_vote(i) for i in range(1, MAX_BATCH_VOTES + 2)]),
    "repeated seq (batch_distinct_seqs)": _batch(_vote(1), _vote(1)),
    "largest batch (payload_bytes)": _huge_batch(),
    "seq 0": _batch(_vote(0)),
    "+seq max": _batch(_vote(MAX_INT)),
    "seq max+1": _batch(_vote(MAX_INT + 1)),
    "seq true": _batch(_vote(True)),
    "seq 2.0 (integer_spelling)": _batch(_vote(2.0)),
    "one bad vote of two": _batch(_vote(1), _vote(2, answer=11)),
    "vote not an object": _batch(_vote(1), 2),
    "+nps11 answer 10": _batch(_vote(answer=10)),
    "nps11 answer 11": _batch(_vote(answer=11)),
    "+faces4 answer 3": _batch(_vote(scale="faces4", answer=3)),
    "faces4 answer 4": _batch(_vote(scale="faces4", answer=4)),
    "+faces5 answer 4": _batch(_vote(scale="faces5", answer=4)),
    "faces5 answer 5": _batch(_vote(scale="faces5", answer=5)),
    "agree5 answer 5": _batch(_vote(scale="agree5", answer=5)),
    "answer -1": _batch(_vote(answer=-1)),
    "answer false": _batch(_vote(answer=False)),
    "unknown scale": _batch(_vote(scale="stars7")),
    "+question 64": _batch(_vote(question=MAX_ID_TEXT)),
    "question 65": _batch(_vote(question=MAX_ID_TEXT + "a")),
    "question null": _batch(_vote(question=None)),
    "question starts with dot": _batch(_vote(question=".q")),
    "question with space": _batch(_vote(question="q 1")),
    "question non-ASCII": _batch(_vote(question="kysymys-ä")),
    "+lang en-GB": _batch(_vote(lang="en-GB")),
    "+lang smn": _batch(_vote(lang="smn")),
    "lang FI": _batch(_vote(lang="FI")),
    "lang fi-": _batch(_vote(lang="fi-")),
    "lang en-123456789": _batch(_vote(lang="en-123456789")),
    "lang trailing newline": _batch(_vote(lang="fi\n")),
    "wall -1": _batch(_vote(wall=-1)),
    "wall string": _batch(_vote(wall="1")),
    "mono null": _batch(_vote(mono=None)),
    "synced 1": _batch(_vote(synced=1)),
    "synced 'true'": _batch(_vote(synced="true")),
    "+unit null": _batch(_vote(unit=None)),
    "unit empty": _batch(_vote(unit="")),
    "+cfg null": _batch(_vote(cfg=None)),
    "cfg -1": _batch(_vote(cfg=-1)),
    "+flags all three": _batch(_vote(flags=["after_hours", "historical", "misuse"])),
    "+flags unsorted": _batch(_vote(flags=["misuse", "after_hours"])),
    "+flags empty": _batch(_vote(flags=[])),
    "+flags null": _batch(_vote(flags=None)),
    "flags repeated": _batch(_vote(flags=["misuse", "misuse"])),
    "flags unknown": _batch(_vote(flags=["spam"])),
    "flags a string": _batch(_vote(flags="misuse")),
    "+role null": _batch(_vote(role=None)),
    "role unknown": _batch(_vote(role="staff")),
    "+reason 64": _batch(_vote(reason=MAX_ID_TEXT)),
    "reason 65": _batch(_vote(reason=MAX_ID_TEXT + "a")),
    "vote extra field": _batch(_vote(extra=1)),
    "vote lacks boot": _batch({k: v for k, v in _vote().items() if k != "boot"}),
    # acks
    "+ack": _ack(),
    "+ack single seq ranges": _ack(ranges=[[1, 1], [3, 3]]),
    "+ack max": _ack(ranges=[[MAX_INT, MAX_INT]]),
    "ack seq 0": _ack(ranges=[[0, 1]]),
    "ack seq max+1": _ack(ranges=[[1, MAX_INT + 1]]),
    "ack range of three": _ack(ranges=[[1, 2, 3]]),
    "ack range of one": _ack(ranges=[[1]]),
    "ack range of bools": _ack(ranges=[[True, True]]),
    "ack range lo > hi (seq_ranges_ordered)": _ack(ranges=[[3, 1]]),
    "ack ranges overlap (seq_ranges_ordered)": _ack(ranges=[[1, 3], [3, 4]]),
    "ack ranges descend (seq_ranges_ordered)": _ack(ranges=[[5, 6], [1, 2]]),
    "+ack 500 ranges": _ack(ranges=[[2 * i + 1, 2 * i + 1] for i in range(MAX_ACK_RANGES)]),
    "ack 501 ranges": _ack(ranges=[[2 * i + 1, 2 * i + 1] for i in range(MAX_ACK_RANGES + 1)]),
    "ack no seq": _ack(ranges=[]),
    "+ack only refusals": _ack(ranges=[], refused=[{"reason": "invalid", "ranges": [[1, 2]]}]),
    "+ack both reasons": _ack(
        refused=[{"reason": "conflict", "ranges": [[4, 4]]}, {"reason": "invalid", "ranges": [[5, 9]]}], store="s1"
    ),
    "ack reason twice": _ack(
        refused=[{"reason": "conflict", "ranges": [[4, 4]]}, {"reason": "conflict", "ranges": [[5, 5]]}]
    ),
    "ack refusal overlaps ranges (seq_ranges_ordered)": _ack(refused=[{"reason": "conflict", "ranges": [[2, 2]]}]),
    "ack unknown refusal reason": _ack(refused=[{"reason": "late", "ranges": [[4, 4]]}]),
    "ack refusal without ranges": _ack(refused=[{"reason": "invalid", "ranges": []}]),
    "ack refusal extra field": _ack(refused=[{"reason": "invalid", "ranges": [[4, 4]], "why": "x"}]),
    "ack empty refused": _ack(refused=[]),
    "+ack null refused and store": _ack(refused=None, store=None),
    "ack 9 refusals": _ack(
        refused=[{"reason": "invalid", "ranges": [[10 + i, 10 + i]]} for i in range(MAX_REFUSALS + 1)]
    ),
    # state and heartbeat
    "+state fw 32": {**_state(), "fw": "x" * MAX_FW},
    "state fw 33": {**_state(), "fw": "x" * (MAX_FW + 1)},
    "+state fw null": {**_state(), "fw": None},
    "state fw lone surrogate (lone_surrogate)": {**_state(), "fw": "0.1\ud800"},
    "state online 0": {**_state(), "online": 0},
    "state conn 1e3 (integer_spelling)": {**_state(), "conn": 1e3},
    "+heartbeat temp 200": _heartbeat(temp=200),
    "+heartbeat temp -100.0": _heartbeat(temp=-100.0),
    "heartbeat temp 200.5": _heartbeat(temp=200.5),
    "heartbeat temp true": _heartbeat(temp=True),
    "heartbeat temp '45'": _heartbeat(temp="45"),
    "heartbeat oldest missing": {k: v for k, v in _heartbeat().items() if k != "oldest"},
    "+heartbeat oldest null": _heartbeat(oldest=None),
    "heartbeat fw null": _heartbeat(fw=None),
    "+heartbeat fw empty": _heartbeat(fw=""),
    "+heartbeat refused": _heartbeat(refused=3),
    "heartbeat refused -1": _heartbeat(refused=-1),
    "heartbeat refused 2.5": _heartbeat(refused=2.5),
    "heartbeat boot 65": _heartbeat(boot=MAX_ID_TEXT + "a"),
    # configuration
    "+config": _config(),
    "config version 0": {**_config(), "version": 0},
    "config extra field": {**_config(), "x": 1},
    "config doc not an object": {**_config(), "doc": []},
    "+doc unit null": _config(unit=None),
    "doc lacks unit": {**_config(), "doc": {k: v for k, v in config_doc().items() if k != "unit"}},
    "doc extra key": _config(colour="red"),
    "no languages": _config(languages=[], default_language="fi"),
    "17 languages": _config(languages=["fi", "sv", "en", *[f"x{c}" for c in "abcdefghijklmn"]]),
    "repeated language": _config(languages=["fi", "fi", "sv", "en"]),
    "default language unlisted (config_language_references)": _config(default_language="se"),
    "text lacks a language (config_language_references)": _config(question=_question(text={"fi": "K?", "sv": "H?"})),
    "review names another language (config_language_references)": _config(question=_question(review=["se"])),
    "+question text 300": _config(question=_question(text={"fi": "k" * 300, "sv": "h", "en": "h"})),
    "question text 301": _config(question=_question(text={"fi": "k" * 301, "sv": "h", "en": "h"})),
    "question text blank": _config(question=_question(text={"fi": " \t", "sv": "h", "en": "h"})),
    "question text no-break space only": _config(question=_question(text={"fi": "\u00a0", "sv": "h", "en": "h"})),
    "question text information separator only": _config(question=_question(text={"fi": "\x1c", "sv": "h", "en": "h"})),
    "+question text BOM only": _config(question=_question(text={"fi": "\ufeff", "sv": "h", "en": "h"})),
    "question text lone surrogate (lone_surrogate)": _config(
        question=_question(text={"fi": "\udfff", "sv": "h", "en": "h"})
    ),
    "+question scale faces4": _config(question=_question(scale="faces4")),
    "question scale unknown": _config(question=_question(scale="stars7")),
    "question sources null": _config(question=_question(sources=None)),
    "question sources 501": _config(question=_question(sources={"fi": "s" * 501})),
    "question review null": _config(question=_question(review=None)),
    "+misuse interval 3600": _config(misuse_interval_s=3600),
    "misuse interval 3600.5": _config(misuse_interval_s=3600.5),
    "misuse interval null": _config(misuse_interval_s=None),
    "misuse interval true": _config(misuse_interval_s=True),
    "+thanks 1": _config(thanks_s=1),
    "thanks 0.5": _config(thanks_s=0.5),
    "+hours null": _config(hours=None),
    "+hours": _config(hours=_hours(closed_dates=["2026-12-24"])),
    "+hours 366 closed dates": _config(hours=_hours(closed_dates=["2026-12-24"] * 366)),
    "hours 367 closed dates": _config(hours=_hours(closed_dates=["2026-12-24"] * 367)),
    "hours closed date 24.12.2026": _config(hours=_hours(closed_dates=["24.12.2026"])),
    "hours closed dates null": _config(hours=_hours(closed_dates=None)),
    "hours tz 65": _config(hours=_hours(tz="A" * 65)),
    "hours tz on Mars (config_tz_known)": _config(hours=_hours(tz="Mars/Olympus_Mons")),
    "hours closed 2024-02-30 (config_dates_real)": _config(hours=_hours(closed_dates=["2024-02-30"])),
    "+hours closed 2024-02-29": _config(hours=_hours(closed_dates=["2024-02-29"])),
    "display brightness 50.0 (integer_spelling)": _config(display={"brightness": 50.0}),
    "display brightness 50.5": _config(display={"brightness": 50.5}),
    "language without its texts (config_language_strings)": _config(
        languages=["fi", "se"],
        question=_question(text={"fi": "Suosittelisitko?", "se": "Livččiidat go rávvet?"}, review=[]),
    ),
    "hours tz with space": _config(hours=_hours(tz="Europe/Hel sinki")),
    "hours tz four levels": _config(hours=_hours(tz="a/b/c/d")),
    "hours weekday unknown": _config(hours=_hours({"monday": []})),
    "hours 5 intervals": _config(hours=_hours({"tue": [[f"0{i}:00", f"0{i}:30"] for i in range(5)]})),
    "hours 25:00": _config(hours=_hours({"mon": [["08:00", "25:00"]]})),
    "hours open 24:00 (config_hours_ordered)": _config(hours=_hours({"mon": [["24:00", "24:00"]]})),
    "hours close before open (config_hours_ordered)": _config(hours=_hours({"mon": [["12:00", "08:00"]]})),
    "hours overlapping (config_hours_ordered)": _config(
        hours=_hours({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]})
    ),
    "hours interval of three": _config(hours=_hours({"mon": [["08:00", "12:00", "13:00"]]})),
    "+followup": _config(followup=_followup([0, 1, 2, 3, 4, 5, 6], timeout_s=300)),
    "followup timeout 2": _config(followup=_followup([0], timeout_s=2)),
    "followup nps answer 11": _config(followup=_followup([11])),
    "+followup faces4 answer 3": _config(question=_question(scale="faces4"), followup=_followup([3])),
    "followup faces4 answer 4": _config(question=_question(scale="faces4"), followup=_followup([4])),
    "followup agree5 answer 5": _config(question=_question(scale="agree5"), followup=_followup([5])),
    "followup no answers": _config(followup=_followup([])),
    "followup repeated answer": _config(followup=_followup([1, 1])),
    "followup answer in two branches (config_followup_distinct)": _config(
        followup={"branches": [_followup([1])["branches"][0], _followup([1, 2])["branches"][0]]}
    ),
    "followup repeated choice id (config_followup_distinct)": _config(
        followup={
            "branches": [
                {**_followup([1])["branches"][0], "choices": [_followup([1])["branches"][0]["choices"][0]] * 2}
            ]
        }
    ),
    "followup choice text lacks a language (config_language_references)": _config(
        followup={"branches": [{**_followup([1])["branches"][0], "choices": [{"id": "w", "text": {"fi": "x"}}]}]}
    ),
    "followup 5 branches": _config(followup={"branches": [_followup([i])["branches"][0] for i in range(5)]}),
    "+role question": _config(role_question=True),
    "role question 1": _config(role_question=1),
    "role question null": _config(role_question=None),
    "+strings": _config(strings={"se": {"language_name": "Davvisámegiella", "thanks": "Giitu"}}),
    "strings unknown key": _config(strings={"fi": {"hello": "Hei"}}),
    "strings text 121": _config(strings={"fi": {"thanks": "k" * 121}}),
    "strings bad tag": _config(strings={"FI": {}}),
    "strings 17 languages": _config(strings={f"x{c}": {} for c in "abcdefghijklmnopq"}),
    "strings null": _config(strings=None),
    "+feedback url": _config(feedback_url="https://palaute.example.fi/hus?x=1"),
    "+feedback url 300": _config(feedback_url="https://a.fi/" + "p" * 287),
    "feedback url 301": _config(feedback_url="https://a.fi/" + "p" * 288),
    "feedback url ftp": _config(feedback_url="ftp://a.fi"),
    "feedback url dot host": _config(feedback_url="https://.a.fi"),
    "feedback url space": _config(feedback_url="https://a.fi/x y"),
    "feedback url ideographic space": _config(feedback_url="https://a.fi/x\u3000y"),
    "feedback url information separator": _config(feedback_url="https://a.fi/x\x1f"),
    "+feedback url BOM": _config(feedback_url="https://a.fi/x\ufeff"),
    "feedback url trailing newline": _config(feedback_url="https://a.fi\n"),
    "+display": _config(display={"brightness": 0, "sleep_after_s": 86400}),
    "display brightness 101": _config(display={"brightness": 101}),
    "display null": _config(display=None),
    "display extra": _config(display={"contrast": 1}),
    "config doc over 64 KiB (config_doc_bytes)": _config(
        strings={f"x{chr(97 + i)}": {k: "ä" * 120 for k in ("thanks", "closed", "skip", "nps_low")} for i in range(16)},
        question=_question(sources={f"x{chr(97 + i)}{chr(97 + j)}": "ö" * 500 for i in range(8) for j in range(8)}),
    ),
    # configuration reports and fleet state
    "+report rejected": _report(),
    "+report applied": _report(status="applied", reason=None),
    "+report applied with empty reason": _report(status="applied", reason=""),
    "report rejected without reason": {k: v for k, v in _report().items() if k != "reason"},
    "report rejected with null reason": _report(reason=None),
    "report rejected with empty reason": _report(reason=""),
    "+report reason 500": _report(reason="r" * MAX_REPORT_REASON),
    "report reason 501": _report(reason="r" * (MAX_REPORT_REASON + 1)),
    "report status unknown": _report(status="ignored"),
    "report version 0": _report(version=0),
    "+fleet state": _fleet(),
    "+fleet instance empty": _fleet(instance=""),
    "+fleet instance 64": _fleet(instance="i" * MAX_ID),
    "fleet instance 65": _fleet(instance="i" * (MAX_ID + 1)),
    "fleet state with device": _fleet(device=DEVICE),
    "fleet instance null": _fleet(instance=None),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_codec_and_schema_agree_on_hand_picked_edge_cases(name: str) -> None:
    message = EDGE_CASES[name]
    assert assert_agree(message) == name.startswith("+"), "the case's name gives the codec's verdict"
    if "(" in name:  # the case shows the named exception it is about
        exception = name[name.index("(") + 1 : name.index(")")]
        assert EXCEPTIONS[exception](message, wire(message)) and schema_accepts(message)


def test_every_named_exception_is_real() -> None:
    """Each exception has an edge case the schema accepts and the codec rejects, so none is stale."""
    shown = {name[name.index("(") + 1 : name.index(")")] for name in EDGE_CASES if "(" in name}
    assert shown == set(EXCEPTIONS)


def test_a_closed_date_in_arabic_indic_digits_is_rejected_by_both() -> None:
    assert_agree(_config(hours=_hours(closed_dates=["٢٠٢٦-١٢-٢٤"])))


def test_codec_and_schema_accept_every_sample_message(sample: Message) -> None:
    assert assert_agree(to_dict(sample))


# hypothesis: valid messages, then mutated ones

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)
device_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{2,63}", fullmatch=True)
langs = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?", fullmatch=True)
uint53 = st.integers(0, MAX_INT) | st.sampled_from([0, 1, MAX_INT])
seqs = st.integers(1, MAX_INT) | st.integers(1, 1000)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``fields``, each drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def valid_votes(draw: st.DrawFn) -> dict[str, Any]:
    numbers = draw(st.lists(seqs, min_size=1, max_size=4, unique=True))
    votes = []
    for seq in numbers:
        scale, size = draw(st.sampled_from([("nps11", 11), ("faces4", 4), ("faces5", 5), ("agree5", 5)]))
        vote = _vote(seq, scale=scale, answer=draw(st.integers(0, size - 1)), lang=draw(langs), question=draw(ids))
        vote.update(wall=draw(uint53), mono=draw(uint53), boot=draw(ids), synced=draw(st.booleans()))
        vote.update(
            draw(
                optional(
                    unit=st.none() | ids,
                    cfg=st.none() | uint53,
                    flags=st.none() | st.lists(st.sampled_from(["misuse", "after_hours", "historical"]), unique=True),
                    role=st.sampled_from([None, "client", "relative", "other"]),
                    reason=st.none() | ids,
                )
            )
        )
        votes.append(vote)
    batch = _batch(*votes, device=draw(device_ids), batch=draw(uint53))
    batch.update(draw(optional(store=st.none() | ids)))
    return batch


@st.composite
def valid_acks(draw: st.DrawFn) -> dict[str, Any]:
    points = sorted(draw(st.lists(seqs, min_size=2, max_size=12, unique=True)))
    pairs = [[points[i], points[i + 1]] for i in range(0, len(points) - 1, 2)]
    split = draw(st.integers(0, len(pairs)))
    ack = _ack(device=draw(device_ids), batch=draw(uint53), ranges=pairs[:split])
    rest = pairs[split:]
    if rest or not split:
        ack["refused"] = [{"reason": "invalid", "ranges": rest or [[MAX_INT, MAX_INT]]}]
    elif draw(st.booleans()):
        ack["refused"] = None
    ack.update(draw(optional(store=st.none() | ids)))
    return ack


ui_texts = st.text(min_size=1, max_size=40).filter(str.strip)
valid_others = st.one_of(
    st.builds(
        lambda d, o, c, w, fw: {"v": 1, "type": "state", "device": d, "online": o, "conn": c, "wall": w, **fw},
        device_ids, st.booleans(), uint53, uint53, optional(fw=st.none() | st.text(max_size=MAX_FW)),
    ),
    st.builds(
        lambda d, more: _heartbeat(device=d, **more),
        device_ids,
        optional(
            temp=st.none() | st.floats(-100, 200) | st.integers(-100, 200),
            disk=st.none() | uint53,
            refused=st.none() | uint53,
            oldest=st.none() | uint53,
            fw=st.text(max_size=MAX_FW),
            boot=ids,
        ),
    ),
    st.builds(
        lambda d, v, r: _report(device=d, version=v, status="applied" if r is None else "rejected", reason=r),
        device_ids, st.integers(1, MAX_INT), st.none() | st.text(min_size=1, max_size=MAX_REPORT_REASON),
    ),
    st.builds(lambda o, w, i: _fleet(online=o, wall=w, instance=i), st.booleans(), uint53, st.text(max_size=MAX_ID)),
    st.builds(
        lambda more: _config(**more),
        optional(
            unit=st.none() | ids,
            misuse_interval_s=st.floats(0, 3600) | st.integers(0, 3600),
            thanks_s=st.floats(1, 120),
            hours=st.none() | st.just(_hours(closed_dates=["2026-12-24"])),
            followup=st.none() | st.just(_followup([0, 6], timeout_s=20)),
            role_question=st.booleans(),
            strings=st.dictionaries(langs, optional(thanks=ui_texts, skip=ui_texts), max_size=3),
            feedback_url=st.none() | st.just("https://a.fi/q"),
            display=optional(brightness=st.integers(0, 100), sleep_after_s=st.integers(0, 86400)),
        ),
    ),
)  # fmt: skip
valid_messages = st.one_of(valid_votes(), valid_acks(), valid_others, st.sampled_from([m for _, m in SPEC_MESSAGES]))

#: Values a mutation writes: boundaries, wrong types, bools and floats for ints, odd text.
EDGE_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, 4, 5, 10, 11, 100, 101, 200, 3600, MAX_INT, MAX_INT + 1, 1.0, 0.5, -0.0, 1e3,
    200.5, "", " ", "a", "ab", "abc", "a" * 32, "a" * 33, "a" * 64, "a" * 65, "abc\n", "-abc", "Abc", "_fleet",
    DEVICE, "fi", "FI", "en-GB", "nps11", "faces4", "misuse", "client", "applied", "rejected", "conflict", "invalid",
    "\u00a0", "\x1c", "\ufeff", "x\ud800", "09:00", "24:00", "2026-12-24", "Europe/Helsinki", "https://a.fi",
    [], {}, [1, 2], [[1, 2]], [[2, 1]], ["09:00", "17:00"], [["09:00", "17:00"]], ["fi"], ["misuse", "misuse"],
]  # fmt: skip
KEYS = sorted({k for _, m in SPEC_MESSAGES for k, _ in _values(m) if isinstance(k, str)} | {"store", "refused", "x"})
edge_values = (
    st.sampled_from(EDGE_VALUES)
    | st.integers()
    | st.text(max_size=70)
    | st.floats(allow_nan=False, allow_infinity=False)
)


def _containers(value: Any) -> list[Any]:
    found = [value] if isinstance(value, (dict, list)) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return found + [c for child in children for c in _containers(child)]


@st.composite
def mutated_messages(draw: st.DrawFn) -> Any:
    """A valid message with one to three fields dropped, added, replaced, repeated or removed."""
    message = copy.deepcopy(draw(valid_messages))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_containers(message)))
        action = draw(st.sampled_from(["drop", "set", "set", "repeat"]))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target)) | st.sampled_from(KEYS) if target else st.sampled_from(KEYS))
            if action == "drop":
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(draw(edge_values))
        elif target:
            at = draw(st.integers(0, len(target) - 1))
            if action == "drop":
                del target[at]
            elif action == "repeat":
                target.append(copy.deepcopy(target[at]))
            else:
                target[at] = copy.deepcopy(draw(edge_values))
        else:
            target.append(copy.deepcopy(draw(edge_values)))
    return message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages)
def test_codec_and_schema_accept_generated_valid_messages(message: dict[str, Any]) -> None:
    assert assert_agree(message)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_messages())
def test_codec_and_schema_agree_on_generated_mutated_messages(message: Any) -> None:
    event(f"codec {'accepts' if assert_agree(message) else 'rejects'}")  # --hypothesis-show-statistics
