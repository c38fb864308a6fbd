"""SPEC.md stays honest: every field, reason, limit and example in it matches the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import protocol
from protocol import REASONS, SCALES, VOTE_FLAGS, decode, encode, limits, validate_config_doc
from protocol.codec import _PARSERS, _VOTE_OPTIONAL, _VOTE_REQUIRED, TYPE_OF_KIND
from protocol.configdoc import (
    DEFAULTS,
    DOC_OPTIONAL,
    DOC_REQUIRED,
    QUESTION_OPTIONAL,
    QUESTION_REQUIRED,
    SHIPPED_LANGUAGES,
    UI_STRING_KEYS,
)
from protocol.messages import CONFIG_STATUSES, ROLES
from protocol.topics import DEVICE_KINDS, FLEET_STATE

SPEC = (Path(protocol.__file__).parent / "SPEC.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"\*\*Topic:\*\* `([^`]+)`\s*\n\s*```json\n(.*?)\n```", SPEC, re.DOTALL)


def documented(name: str) -> bool:
    """Whether ``name`` appears in SPEC.md as code (in backticks)."""
    return f"`{name}`" in SPEC


@pytest.mark.parametrize("field", sorted(_VOTE_REQUIRED | _VOTE_OPTIONAL))
def test_every_vote_field_is_documented(field: str) -> None:
    assert documented(field)


@pytest.mark.parametrize("field", sorted(_VOTE_REQUIRED))
def test_every_required_vote_field_is_documented_as_required(field: str) -> None:
    assert re.search(rf"^\| `{field}` \|.*\| yes \|$", SPEC, re.MULTILINE)


@pytest.mark.parametrize("field", sorted(_VOTE_OPTIONAL))
def test_every_optional_vote_field_is_documented_as_optional(field: str) -> None:
    assert re.search(rf"^\| `{field}` \|.*\| no \|$", SPEC, re.MULTILINE)


@pytest.mark.parametrize(
    "name",
    sorted(
        set(REASONS)
        | set(_PARSERS)
        | set(DEVICE_KINDS)
        | set(SCALES)
        | set(VOTE_FLAGS)
        | set(ROLES)
        | set(CONFIG_STATUSES)
        | DOC_REQUIRED
        | DOC_OPTIONAL
        | QUESTION_REQUIRED
        | QUESTION_OPTIONAL
        | {FLEET_STATE}
    ),
)
def test_every_name_of_the_contract_is_documented(name: str) -> None:
    assert documented(name)


#: Where SPEC.md states each limit of ``protocol/limits.py``: a pattern for the sentence or table
#: row that defines it, whose one group is the number as written there. A bare number would be
#: found anywhere (``8`` and ``500`` occur dozens of times), so a changed limit would go unnoticed.
LIMIT_PLACES: list[tuple[str, str]] = [
    ("MAX_PAYLOAD_BYTES", r"The largest payload is \*\*(\d+) bytes\*\* \(\d+ KiB, `MAX_PAYLOAD_BYTES`\)"),
    ("MAX_PAYLOAD_BYTES", r"^\| `oversized` \| payload larger than (\d+) bytes \|$"),
    ("MAX_BATCH_VOTES", r"^\| `votes` \| array of vote objects \| 1 \.\. (\d+) votes \(`MAX_BATCH_VOTES`\)"),
    ("MAX_BATCH_VOTES", r"contiguous seq runs of up to \d+ votes by default \(at most\s+(\d+)\)"),
    ("MAX_CONFIG_DOC_BYTES", r"^\| `doc` \| object \| [^|\n]*at most (\d+) bytes [^|\n]*\(`MAX_CONFIG_DOC_BYTES`\) \|"),
    ("MAX_ID", r"\*\*Identifiers\*\* \([^)]*\) are 1 to (\d+) ASCII characters"),
    ("MAX_ID", r"fleet `instance` (\d+) \(`MAX_ID`\)"),
    ("MAX_ID", r"^\| `instance` \| text, ≤ (\d+) \|"),
    ("MAX_FW", r"`fw` (\d+) \(`MAX_FW`\)"),
    ("MAX_FW", r"^\| `fw` \| text, ≤ (\d+) \| firmware version \| no \|$"),
    ("MAX_FW", r"^\| `fw` \| text, ≤ (\d+) \| firmware version \(may be empty\) \| yes \|$"),
    ("MAX_REPORT_REASON", r"config report `reason` (\d+)\s+\(`MAX_REPORT_REASON`\)"),
    ("MAX_REPORT_REASON", r"^\| `reason` \| text, ≤ (\d+) \| why it was rejected"),
    ("MAX_REPORT_REASON", r"A terminal truncates a longer text to (\d+) code points"),
    ("MAX_LANGUAGES", r"^\| `languages` \| array of language tags \| 1 \.\. (\d+) distinct tags"),
    ("MAX_LANGUAGES", r"Interface texts, `strings`: at most (\d+) language tags"),
    ("MAX_QUESTION_TEXT", r"^\| `text` \| object \| language tag → question text, 1 \.\. (\d+) code points"),
    ("MAX_QUESTION_TEXT", r"`question`\s+\(language tag → text, 1 \.\. (\d+) code points"),
    ("MAX_SOURCE_TEXT", r"^\| `sources` \| object \| language tag → [^|\n]*, 1 \.\. (\d+) code points \|"),
    ("MAX_INT", r"2\^53 − 1 \((\d+), `MAX_INT`\)"),
    ("MAX_ACK_RANGES", r"^\| `ranges` \| array of `\[lo, hi\]` \| 0 \.\. (\d+) \(`MAX_ACK_RANGES`\)"),
    ("MAX_ACK_RANGES", r"its `ranges` 1 \.\. (\d+) ranges written as `ranges` is"),
    ("MAX_REFUSALS", r"^\| `refused` \| array of objects \| 1 \.\. (\d+) \(`MAX_REFUSALS`\)"),
    ("MAX_FLAGS", r"^\| `flags` \| array of strings \| [^|\n]*; at most (\d+) \(`MAX_FLAGS`\);"),
    ("MAX_UI_TEXT", r"^Interface texts, `strings`: at most \d+ language tags,[^.]*each text 1 \.\. (\d+) code points"),
    ("MAX_UI_TEXT", r"`choices` \(1 \.\. \d+ objects [^)]*`text`, language tag →\s+1 \.\. (\d+) code points"),
    ("MAX_URL", r"^\| `feedback_url` \| string or null \| an `http://` or `https://` address of at most (\d+) char"),
    ("CURRENT_VERSION", r"This document is\s+version \*\*(\d+)\*\* \(`CURRENT_VERSION`;"),
    ("SUPPORTED_VERSIONS", r"`SUPPORTED_VERSIONS` = \{([\d, ]+)\}"),
]


def as_written(value: int | frozenset[int]) -> str:
    """How SPEC.md writes a limit's value: a number, or a set's members in order."""
    return ", ".join(map(str, sorted(value))) if isinstance(value, frozenset) else str(value)


def test_every_limit_has_a_place_in_the_spec() -> None:
    public = {name for name in vars(limits) if name.isupper() and not name.startswith("_")}
    assert public == {name for name, _ in LIMIT_PLACES}


@pytest.mark.parametrize(("name", "pattern"), LIMIT_PLACES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LIMIT_PLACES)])
def test_every_limit_is_stated_where_it_is_defined(name: str, pattern: str) -> None:
    found = re.findall(pattern, SPEC, re.MULTILINE)
    assert len(found) == 1, f"SPEC.md should state {name} exactly once like {pattern!r}, found {found}"
    assert found[0] == as_written(getattr(limits, name)), name


@pytest.mark.parametrize("key", sorted(UI_STRING_KEYS))
def test_every_interface_text_a_new_language_must_supply_is_listed(key: str) -> None:
    section = SPEC[SPEC.index("Interface texts, `strings`") : SPEC.index("The question object")]
    assert f"`{key}`" in section
    assert f"among these {len(UI_STRING_KEYS)}" in section


def test_the_shipped_languages_are_stated() -> None:
    assert "Every terminal ships all 19 for " + ", ".join(f"`{lang}`" for lang in SHIPPED_LANGUAGES[:-1]) in SPEC
    assert len(UI_STRING_KEYS) == 19


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("misuse_interval_s", DEFAULTS["misuse_interval_s"]),
        ("thanks_s", DEFAULTS["thanks_s"]),
        ("role_question", DEFAULTS["role_question"]),
        ("brightness", DEFAULTS["display"]["brightness"]),
        ("sleep_after_s", DEFAULTS["display"]["sleep_after_s"]),
    ],
)
def test_every_default_is_stated_in_its_keys_row(key: str, value: object) -> None:
    found = re.findall(rf"^\| `{key}` \| [^\n]*; default ([^ |;]+) \| no \|$", SPEC, re.MULTILINE)
    assert found == [json.dumps(value)]


def test_every_message_type_has_an_example_on_its_topic() -> None:
    types = {json.loads(body)["type"] for _, body in EXAMPLES}
    assert types == set(_PARSERS)
    assert set(TYPE_OF_KIND.values()) < types


@pytest.mark.parametrize(("topic", "body"), EXAMPLES, ids=[f"{i}-{t}" for i, (t, _) in enumerate(EXAMPLES)])
def test_every_example_decodes_on_its_topic(topic: str, body: str) -> None:
    compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    msg = decode(topic, compact)
    assert encode(msg) == compact  # examples are written the way the codec writes


def test_the_compact_example_is_byte_identical_to_the_codec() -> None:
    compact = [(t, b) for t, b in EXAMPLES if "\n" not in b and ": " not in b]
    assert compact
    for topic, body in compact:
        assert encode(decode(topic, body.encode())) == body.encode()


def test_the_example_configuration_document_is_valid() -> None:
    (body,) = [b for _, b in EXAMPLES if '"type": "config"' in b]
    doc = json.loads(body)["doc"]
    assert validate_config_doc(doc) == doc  # raises ProtocolError if the example is not valid


def test_the_worked_nps_example_is_right() -> None:
    # Adjusted-Wald: ¾ promoter, ¾ detractor and 1½ passive pseudo-answers before the normal interval.
    n, promoters, detractors = 1000, 250, 75
    n_adj = n + 3
    p, d = (promoters + 0.75) / n_adj, (detractors + 0.75) / n_adj
    se = ((p + d - (p - d) ** 2) / n_adj) ** 0.5
    low, high = 100 * (p - d - 1.96 * se), 100 * (p - d + 1.96 * se)
    figure = 100 * (promoters - detractors) / n
    assert f"NPS = {figure:.1f} with interval {low:.1f}–{high:.1f}" in SPEC
    assert f"p' = {promoters + 0.75} / {n_adj} = {p:.2f}," in SPEC and f"SE = sqrt(({p + d:.5f} − " in SPEC


def test_the_worked_wilson_example_is_right() -> None:
    n, k, z = 200, 150, 1.96
    ph = k / n
    centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (ph * (1 - ph) / n + z * z / (4 * n * n)) ** 0.5
    assert f"{100 * ph:.1f} %, interval {100 * (centre - half):.1f}–{100 * (centre + half):.1f}" in SPEC


def test_the_worked_time_correction_example_is_right() -> None:
    vote_mono, point_wall, point_mono = 60000, 1700003540000, 3600000
    offset = point_wall - point_mono
    assert f"the vote's corrected time is {vote_mono} + {offset} = {vote_mono + offset}" in SPEC
