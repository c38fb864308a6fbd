"""The one codec: messages to compact UTF-8 JSON and back, validating strictly on the way in.

Every decode either returns a well-formed message or raises ProtocolError; nothing else
escapes, whatever the bytes (a property test holds us to that).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from . import topics
from .configdoc import validate_config_doc
from .errors import PartialBatch, ProtocolError
from .limits import (
    CURRENT_VERSION,
    MAX_ACK_RANGES,
    MAX_BATCH_VOTES,
    MAX_CONFIG_DOC_BYTES,
    MAX_FLAGS,
    MAX_FW,
    MAX_ID,
    MAX_INT,
    MAX_PAYLOAD_BYTES,
    MAX_REFUSALS,
    MAX_REPORT_REASON,
    SUPPORTED_VERSIONS,
)
from .messages import (
    CONFIG_STATUSES,
    REFUSAL_REASONS,
    ROLES,
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
)
from .scales import SCALES

# ``\Z`` rather than ``$``, which would also match before a trailing newline.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?\Z")

# Message type names, and the topic kind each travels on.
TYPE_OF_KIND = {
    topics.VOTES: "votes",
    topics.ACK: "ack",
    topics.STATE: "state",
    topics.HEARTBEAT: "heartbeat",
    topics.CONFIG: "config",
    topics.CONFIG_REPORT: "config_report",
}


def _fail(detail: str) -> ProtocolError:
    return ProtocolError("invalid", detail)


def _reject_constant(name: str) -> Any:
    raise ProtocolError("malformed", f"non-JSON number {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key is read differently by different parsers (first or last wins), so a
    # message could mean one thing to a broker plugin and another to us: reject it.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ProtocolError("malformed", "an object repeats a key")
    return obj


def _fields(obj: dict[str, Any], required: frozenset[str], optional: frozenset[str], what: str) -> None:
    keys = obj.keys()
    if not required <= keys:
        raise _fail(f"{what} lacks {sorted(required - keys)}")
    extra = keys - required - optional
    if extra:
        raise _fail(f"{what} has unknown fields {sorted(extra)}")


def _int(obj: dict[str, Any], key: str, lo: int = 0, hi: int = MAX_INT) -> int:
    v = obj[key]
    # bool is an int in Python but not in the contract.
    if type(v) is not int or v < lo or v > hi:
        raise _fail(f"{key} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _bool(obj: dict[str, Any], key: str) -> bool:
    v = obj[key]
    if type(v) is not bool:
        raise _fail(f"{key} must be true or false, got {v!r}")
    return v


def _id(obj: dict[str, Any], key: str) -> str:
    v = obj[key]
    if type(v) is not str or not ID_RE.match(v):
        raise _fail(f"{key} must be an identifier of 1..{MAX_ID} characters, got {v!r}")
    return v


def _opt_id(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _id(obj, key)


def _is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (JSON ``"\\ud800"``), which UTF-8 cannot carry."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(obj: dict[str, Any], key: str, limit: int) -> str:
    v = obj[key]
    if type(v) is not str or len(v) > limit or not _is_utf8(v):
        raise _fail(f"{key} must be text of at most {limit} characters")
    return v


def _opt_number(obj: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    v = obj.get(key)
    if v is None:
        return None
    # The range test comes first: math.isfinite raises OverflowError on a huge integer.
    if type(v) not in (int, float) or not lo <= v <= hi or not math.isfinite(v):
        raise _fail(f"{key} must be a number in {lo}..{hi}, got {v!r}")
    return float(v)


def _device(obj: dict[str, Any]) -> str:
    v = obj["device"]
    if type(v) is not str or not topics.DEVICE_ID_RE.match(v):
        raise _fail(f"bad device id {v!r}")
    return v


def check_lang(lang: Any) -> str:
    """Return ``lang`` if it is a language tag the contract accepts (``fi``, ``sv``, ``se``, ``en-GB``)."""
    if type(lang) is not str or not LANG_RE.match(lang):
        raise _fail(f"bad language tag {lang!r}")
    return lang


_VOTE_REQUIRED = frozenset({"seq", "question", "scale", "answer", "lang", "wall", "mono", "boot", "synced"})
_VOTE_OPTIONAL = frozenset({"unit", "cfg", "flags", "role", "reason"})
_VOTE_ALL = _VOTE_REQUIRED | _VOTE_OPTIONAL


def _vote(obj: Any, seen: set[str], seen_langs: set[str]) -> Vote:
    """Validate one vote. ``seen`` and ``seen_langs`` memoise identifiers and language tags already
    checked in this batch (kept apart: a valid identifier such as ``Q1`` is not a valid tag).

    This is the ingest hot loop (a batch repeats its question, language, boot and unit in
    every vote), so checks are inlined and each distinct string is matched only once.
    """
    if type(obj) is not dict:
        raise _fail("a vote must be an object")
    keys = obj.keys()
    if not (_VOTE_REQUIRED <= keys and keys <= _VOTE_ALL):
        _fields(obj, _VOTE_REQUIRED, _VOTE_OPTIONAL, "vote")
    scale_name = obj["scale"]
    sc = SCALES.get(scale_name) if type(scale_name) is str else None
    if sc is None:
        raise _fail(f"unknown scale {scale_name!r}")
    seq, answer, wall, mono = obj["seq"], obj["answer"], obj["wall"], obj["mono"]
    # bool is an int in Python but not in the contract, hence ``type(x) is int``.
    if type(seq) is not int or not 1 <= seq <= MAX_INT:
        raise _fail(f"seq must be an integer in 1..{MAX_INT}, got {seq!r}")
    if type(answer) is not int or not 0 <= answer < sc.size:
        raise _fail(f"answer must be an integer in 0..{sc.size - 1} for {sc.name}, got {answer!r}")
    if type(wall) is not int or not 0 <= wall <= MAX_INT:
        raise _fail(f"wall must be an integer in 0..{MAX_INT}, got {wall!r}")
    if type(mono) is not int or not 0 <= mono <= MAX_INT:
        raise _fail(f"mono must be an integer in 0..{MAX_INT}, got {mono!r}")
    synced = obj["synced"]
    if type(synced) is not bool:
        raise _fail(f"synced must be true or false, got {synced!r}")
    question, boot, lang = obj["question"], obj["boot"], obj["lang"]
    unit, reason = obj.get("unit"), obj.get("reason")
    for key, value in (("question", question), ("boot", boot), ("unit", unit), ("reason", reason)):
        if value is not None and (type(value) is not str or value not in seen):
            if type(value) is not str or not ID_RE.match(value):
                raise _fail(f"{key} must be an identifier of 1..{MAX_ID} characters, got {value!r}")
            seen.add(value)
    if question is None or boot is None:
        raise _fail("question and boot must be identifiers, got null")
    if type(lang) is not str or lang not in seen_langs:
        check_lang(lang)
        seen_langs.add(lang)
    cfg = obj.get("cfg")
    if cfg is None:
        cfg = 0
    elif type(cfg) is not int or not 0 <= cfg <= MAX_INT:
        raise _fail(f"cfg must be an integer in 0..{MAX_INT}, got {cfg!r}")
    flags_raw = obj.get("flags")
    if flags_raw is None:
        flags: frozenset[str] = _NO_FLAGS
    else:
        if type(flags_raw) is not list or len(flags_raw) > MAX_FLAGS or not all(type(f) is str for f in flags_raw):
            raise _fail(f"flags must be a list of at most {MAX_FLAGS} known flags")
        flags = frozenset(flags_raw)
        if not flags <= VOTE_FLAGS:
            raise _fail(f"unknown flags {flags_raw!r}")
        if len(flags) != len(flags_raw):
            raise _fail(f"flags repeat a flag: {flags_raw!r}")
    role = obj.get("role")
    if role is not None and (type(role) is not str or role not in ROLES):
        raise _fail(f"unknown role {role!r}")
    return Vote(seq, question, scale_name, answer, lang, wall, mono, boot, synced, unit, cfg, flags, role, reason)


_NO_FLAGS: frozenset[str] = frozenset()


def _votes(obj: dict[str, Any]) -> VoteBatch:
    _fields(obj, frozenset({"v", "type", "device", "batch", "votes"}), frozenset({"store"}), "votes")
    raw = obj["votes"]
    if type(raw) is not list or not 1 <= len(raw) <= MAX_BATCH_VOTES:
        raise _fail(f"votes must be a list of 1..{MAX_BATCH_VOTES} votes")
    device, batch, store = _device(obj), _int(obj, "batch"), _opt_id(obj, "store")
    seen: set[str] = set()
    seen_langs: set[str] = set()
    try:
        votes = tuple([_vote(v, seen, seen_langs) for v in raw])
    except ProtocolError as exc:
        raise _salvage(raw, device, batch, store, exc) from None
    if len({v.seq for v in votes}) != len(votes):
        raise _fail("a batch repeats a seq")
    return VoteBatch(device=device, batch=batch, votes=votes, store=store)


def _salvage(raw: list[Any], device: str, batch: int, store: str | None, first: ProtocolError) -> ProtocolError:
    """Split a batch with bad votes into the good ones and refusals, if every vote has its own seq.

    Without a distinct valid seq for each vote there is nothing to refuse by name, so the whole
    batch is rejected with the first fault, as any other malformed message.
    """
    seqs: list[Any] = [v.get("seq") if type(v) is dict else None for v in raw]
    if not all(type(s) is int and 1 <= s <= MAX_INT for s in seqs) or len(set(seqs)) != len(seqs):
        return first
    good: list[Vote] = []
    refused: list[tuple[int, str]] = []
    for obj, seq in zip(raw, seqs, strict=True):
        try:
            good.append(_vote(obj, set(), set()))
        except ProtocolError as exc:
            refused.append((seq, exc.detail))
    detail = f"{len(refused)} of {len(raw)} votes invalid, the first (seq {refused[0][0]}): {refused[0][1]}"
    return PartialBatch(detail, VoteBatch(device, batch, tuple(good), store), tuple(refused))


def _ranges(raw: Any, what: str, least: int) -> tuple[tuple[int, int], ...]:
    """Inclusive seq ranges, ascending and disjoint, as seq_ranges builds them."""
    if type(raw) is not list or not least <= len(raw) <= MAX_ACK_RANGES:
        raise _fail(f"{what} must be a list of {least}..{MAX_ACK_RANGES} ranges")
    ranges: list[tuple[int, int]] = []
    for r in raw:
        if (
            type(r) is not list
            or len(r) != 2
            or type(r[0]) is not int
            or type(r[1]) is not int
            or not 1 <= r[0] <= r[1] <= MAX_INT
        ):
            raise _fail(f"bad seq range {r!r} in {what}")
        # Ascending and disjoint, so a terminal can merge in one pass.
        if ranges and r[0] <= ranges[-1][1]:
            raise _fail(f"seq ranges must ascend without overlap, got {r!r} after {list(ranges[-1])!r} in {what}")
        ranges.append((r[0], r[1]))
    return tuple(ranges)


def _ack(obj: dict[str, Any]) -> Ack:
    _fields(obj, frozenset({"v", "type", "device", "batch", "ranges"}), frozenset({"store", "refused"}), "ack")
    ranges = _ranges(obj["ranges"], "ranges", 0)
    refused: list[tuple[str, tuple[tuple[int, int], ...]]] = []
    raw = obj.get("refused")
    if raw is not None:
        if type(raw) is not list or not 1 <= len(raw) <= MAX_REFUSALS:
            raise _fail(f"refused must be a list of 1..{MAX_REFUSALS} refusals")
        for r in raw:
            if type(r) is not dict:
                raise _fail("a refusal must be an object")
            _fields(r, frozenset({"reason", "ranges"}), frozenset(), "refusal")
            reason = r["reason"]
            if type(reason) is not str or reason not in REFUSAL_REASONS:
                raise _fail(f"refusal reason must be one of {list(REFUSAL_REASONS)}, got {reason!r}")
            if any(reason == done for done, _ in refused):
                raise _fail(f"refusal reason {reason!r} given twice")
            refused.append((reason, _ranges(r["ranges"], f"refused {reason}", 1)))
    every = sorted([*ranges, *(rg for _, rs in refused for rg in rs)])
    if not every:
        raise _fail("an ack must name at least one seq")
    for prev, cur in zip(every, every[1:], strict=False):
        if cur[0] <= prev[1]:
            raise _fail(f"seq range {list(cur)!r} overlaps {list(prev)!r}: a seq is acknowledged or refused once")
    return Ack(
        device=_device(obj),
        batch=_int(obj, "batch"),
        ranges=ranges,
        store=_opt_id(obj, "store"),
        refused=tuple(refused),
    )


def _state(obj: dict[str, Any]) -> TerminalState:
    _fields(obj, frozenset({"v", "type", "device", "online", "conn", "wall"}), frozenset({"fw"}), "state")
    return TerminalState(
        device=_device(obj),
        online=_bool(obj, "online"),
        conn=_int(obj, "conn"),
        wall=_int(obj, "wall"),
        fw=None if obj.get("fw") is None else _text(obj, "fw", MAX_FW),
    )


_HB_REQUIRED = frozenset(
    {"v", "type", "device", "wall", "mono", "boot", "synced", "uptime", "queue", "oldest", "cfg", "fw"}
)


def _heartbeat(obj: dict[str, Any]) -> Heartbeat:
    _fields(obj, _HB_REQUIRED, frozenset({"temp", "disk", "refused"}), "heartbeat")
    disk, refused = obj.get("disk"), obj.get("refused")
    return Heartbeat(
        device=_device(obj),
        wall=_int(obj, "wall"),
        mono=_int(obj, "mono"),
        boot=_id(obj, "boot"),
        synced=_bool(obj, "synced"),
        uptime=_int(obj, "uptime"),
        queue=_int(obj, "queue"),
        oldest=None if obj["oldest"] is None else _int(obj, "oldest"),
        cfg=_int(obj, "cfg"),
        fw=_text(obj, "fw", MAX_FW),
        temp=_opt_number(obj, "temp", -100.0, 200.0),
        disk=None if disk is None else _int(obj, "disk"),
        refused=None if refused is None else _int(obj, "refused"),
    )


def _config(obj: dict[str, Any]) -> Config:
    _fields(obj, frozenset({"v", "type", "device", "version", "doc"}), frozenset(), "config")
    doc = obj["doc"]
    if len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_CONFIG_DOC_BYTES:
        raise _fail(f"configuration document over {MAX_CONFIG_DOC_BYTES} bytes")
    validate_config_doc(doc)
    return Config(device=_device(obj), version=_int(obj, "version", 1), doc=doc)


def _config_report(obj: dict[str, Any]) -> ConfigReport:
    _fields(obj, frozenset({"v", "type", "device", "version", "status"}), frozenset({"reason"}), "config_report")
    status = obj["status"]
    if type(status) is not str or status not in CONFIG_STATUSES:
        raise _fail(f"status must be one of {sorted(CONFIG_STATUSES)}, got {status!r}")
    reason = None if obj.get("reason") is None else _text(obj, "reason", MAX_REPORT_REASON)
    if status == "rejected" and not reason:
        raise _fail("a rejection must carry its reason")
    return ConfigReport(device=_device(obj), version=_int(obj, "version", 1), status=status, reason=reason)


def _fleet_state(obj: dict[str, Any]) -> FleetState:
    _fields(obj, frozenset({"v", "type", "online", "wall", "instance"}), frozenset(), "fleet_state")
    return FleetState(online=_bool(obj, "online"), wall=_int(obj, "wall"), instance=_text(obj, "instance", MAX_ID))


_PARSERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    "votes": _votes,
    "ack": _ack,
    "state": _state,
    "heartbeat": _heartbeat,
    "config": _config,
    "config_report": _config_report,
    "fleet_state": _fleet_state,
}


def decode_payload(payload: bytes) -> Message:
    """Decode one message without regard to its topic; raises ProtocolError on any fault."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"{len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}")
    try:
        # Decode UTF-8 ourselves: given bytes, json.loads would also take UTF-16, UTF-32, a BOM
        # and encoded lone surrogates, none of which a compatible peer may send.
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except ProtocolError:
        raise
    except (ValueError, TypeError, RecursionError, AttributeError) as exc:
        raise ProtocolError("malformed", f"not UTF-8 JSON: {exc}") from exc
    if type(obj) is not dict:
        raise ProtocolError("malformed", "a message must be a JSON object")
    v = obj.get("v")
    if type(v) is not int or v not in SUPPORTED_VERSIONS:
        raise ProtocolError("unknown_version", f"schema version {v!r}; this side speaks {sorted(SUPPORTED_VERSIONS)}")
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if type(kind) is str else None
    if parser is None:
        raise _fail(f"unknown message type {kind!r}")
    try:
        return parser(obj)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:  # belt and braces: never leak
        raise _fail(f"{type(exc).__name__}: {exc}") from exc


def decode(topic: str, payload: bytes) -> Message:
    """Decode a message received on ``topic``, checking it belongs there and names that terminal."""
    device, kind = topics.parse_topic(topic)
    try:
        msg = decode_payload(payload)
    except PartialBatch as exc:
        # The good votes are only usable if the batch came on its own terminal's votes topic.
        _check_place(device, kind, exc.batch)  # type: ignore[arg-type]
        raise
    return _check_place(device, kind, msg)


def _check_place(device: str, kind: str, msg: Message) -> Message:
    """The message must be of the topic's kind and name the topic's terminal."""
    if device == topics.FLEET_SEGMENT:
        if not isinstance(msg, FleetState):
            raise _fail(f"{type(msg).__name__} on the fleet state topic")
        return msg
    expected = TYPE_OF_KIND[kind]
    if _TYPE_NAMES[type(msg)] != expected:
        raise _fail(f"{_TYPE_NAMES[type(msg)]} message on a {kind} topic")
    if msg.device != device:  # type: ignore[union-attr]
        raise ProtocolError("device_mismatch", f"payload names {msg.device!r} on {device!r}'s topic")  # type: ignore[union-attr]
    return msg


_TYPE_NAMES: dict[type, str] = {
    VoteBatch: "votes",
    Ack: "ack",
    TerminalState: "state",
    Heartbeat: "heartbeat",
    Config: "config",
    ConfigReport: "config_report",
    FleetState: "fleet_state",
}


def vote_to_dict(v: Vote) -> dict[str, Any]:
    """The wire form of one vote; optional fields are left out when empty."""
    d: dict[str, Any] = {
        "seq": v.seq,
        "question": v.question,
        "scale": v.scale,
        "answer": v.answer,
        "lang": v.lang,
        "wall": v.wall,
        "mono": v.mono,
        "boot": v.boot,
        "synced": v.synced,
    }
    if v.unit is not None:
        d["unit"] = v.unit
    if v.cfg:
        d["cfg"] = v.cfg
    if v.flags:
        d["flags"] = sorted(v.flags)
    if v.role is not None:
        d["role"] = v.role
    if v.reason is not None:
        d["reason"] = v.reason
    return d


def to_dict(msg: Message) -> dict[str, Any]:
    """The wire form of any message as a dict (before JSON)."""
    d: dict[str, Any] = {"v": CURRENT_VERSION, "type": _TYPE_NAMES[type(msg)]}
    if isinstance(msg, VoteBatch):
        d["device"] = msg.device
        if msg.store is not None:
            d["store"] = msg.store
        d.update(batch=msg.batch, votes=[vote_to_dict(v) for v in msg.votes])
    elif isinstance(msg, Ack):
        d["device"] = msg.device
        if msg.store is not None:
            d["store"] = msg.store
        d.update(batch=msg.batch, ranges=[list(r) for r in msg.ranges])
        if msg.refused:
            d["refused"] = [{"reason": reason, "ranges": [list(r) for r in rs]} for reason, rs in msg.refused]
    elif isinstance(msg, TerminalState):
        d.update(device=msg.device, online=msg.online, conn=msg.conn, wall=msg.wall)
        if msg.fw is not None:
            d["fw"] = msg.fw
    elif isinstance(msg, Heartbeat):
        d.update(
            device=msg.device,
            wall=msg.wall,
            mono=msg.mono,
            boot=msg.boot,
            synced=msg.synced,
            uptime=msg.uptime,
            queue=msg.queue,
            oldest=msg.oldest,
            cfg=msg.cfg,
            fw=msg.fw,
        )
        if msg.temp is not None:
            # Always a float on the wire: decode gives a float, so 45 and 45.0 must encode alike.
            d["temp"] = float(msg.temp)
        if msg.disk is not None:
            d["disk"] = msg.disk
        if msg.refused is not None:
            d["refused"] = msg.refused
    elif isinstance(msg, Config):
        d.update(device=msg.device, version=msg.version, doc=msg.doc)
    elif isinstance(msg, ConfigReport):
        d.update(device=msg.device, version=msg.version, status=msg.status)
        if msg.reason is not None:
            d["reason"] = msg.reason
    elif isinstance(msg, FleetState):
        d.update(online=msg.online, wall=msg.wall, instance=msg.instance)
    else:  # pragma: no cover - Message is closed
        raise TypeError(f"not a protocol message: {msg!r}")
    return d


def encode(msg: Message) -> bytes:
    """Encode a message as compact UTF-8 JSON; raises ProtocolError if it breaks a limit.

    The sender checks what it sends with the same rules the receiver applies, so a terminal
    can never build a message the fleet would reject.
    """
    try:
        data = json.dumps(to_dict(msg), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, TypeError, RecursionError) as exc:  # NaN, a non-JSON value, a lone surrogate
        raise _fail(f"cannot encode {type(msg).__name__}: {exc}") from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"{len(data)} bytes, limit {MAX_PAYLOAD_BYTES}")
    decode_payload(data)
    return data


def check_vote(vote: Vote) -> Vote:
    """Validate one vote as the fleet would; raises ProtocolError. Terminals call it before storing."""
    try:
        return _vote(vote_to_dict(vote), set(), set())
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # a field of a foreign type
        raise _fail(f"{type(exc).__name__}: {exc}") from exc
