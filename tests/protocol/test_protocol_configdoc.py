"""The configuration document: what a terminal accepts and why it refuses the rest."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from protocol import Config, ProtocolError, decode, encode, setting, validate_config_doc
from protocol.configdoc import SHIPPED_LANGUAGES, UI_STRING_KEYS, missing_strings
from protocol.limits import MAX_CONFIG_DOC_BYTES


def config_doc() -> dict[str, Any]:
    """A valid document using every key."""
    return {
        "unit": "hus-meilahti-er",
        "languages": ["fi", "sv", "en"],
        "default_language": "fi",
        "question": {
            "id": "thl-nps",
            "scale": "nps11",
            "text": {
                "fi": "Suosittelisitko meitä?",
                "sv": "Skulle du rekommendera oss?",
                "en": "Would you recommend us?",
            },
            "sources": {"fi": "THL"},
            "review": ["en"],
        },
        "misuse_interval_s": 2.5,
        "thanks_s": 5,
        "hours": {
            "tz": "Europe/Helsinki",
            "weekly": {"mon": [["08:00", "11:30"], ["12:00", "16:00"]], "fri": [["08:00", "24:00"]], "sun": []},
            "closed_dates": ["2026-12-24"],
        },
        "followup": {
            "timeout_s": 20,
            "branches": [
                {
                    "answers": [9, 10],
                    "question": {"fi": "Mikä oli hyvää?", "sv": "Vad var bra?", "en": "What was good?"},
                    "choices": [{"id": "staff", "text": {"fi": "Henkilökunta", "sv": "Personalen", "en": "Staff"}}],
                },
                {
                    "answers": [0, 1, 2, 3, 4, 5, 6, 7, 8],
                    "question": {"fi": "Mitä parantaisimme?", "sv": "Vad kan vi förbättra?", "en": "What to improve?"},
                    "choices": [{"id": "waiting", "text": {"fi": "Odotus", "sv": "Väntan", "en": "Waiting"}}],
                },
            ],
        },
        "role_question": True,
        "strings": {"se": {"language_name": "Davvisámegiella", "thanks": "Giitu!"}},
        "feedback_url": "https://palaute.example.fi/hus-meilahti-er",
        "display": {"brightness": 80, "sleep_after_s": 600},
    }


def minimal_doc() -> dict[str, Any]:
    return {
        "unit": None,
        "languages": ["fi"],
        "default_language": "fi",
        "question": {"id": "q1", "scale": "faces4", "text": {"fi": "Miten onnistuimme?"}},
    }


def test_a_document_with_every_key_is_valid() -> None:
    assert validate_config_doc(config_doc()) == config_doc()


def test_a_minimal_document_is_valid_and_takes_the_shipped_defaults() -> None:
    doc = minimal_doc()
    assert validate_config_doc(doc) is doc
    assert setting(doc, "misuse_interval_s") == 2.0
    assert setting(doc, "thanks_s") == 5.0
    assert setting(config_doc(), "misuse_interval_s") == 2.5


def change(fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    doc = copy.deepcopy(config_doc())
    fn(doc)
    return doc


def q(key: str, value: Any) -> dict[str, Any]:
    return change(lambda d: d["question"].__setitem__(key, value))


INVALID: list[tuple[str, Any, str]] = [
    ("not_an_object", ["fi"], "document must be an object"),
    ("missing_unit", change(lambda d: d.pop("unit")), "document lacks ['unit']"),
    ("missing_question", change(lambda d: d.pop("question")), "document lacks ['question']"),
    ("unknown_key", change(lambda d: d.__setitem__("colour", "red")), "document has unknown keys ['colour']"),
    ("bad_unit", change(lambda d: d.__setitem__("unit", "ward 3")), "unit must be an identifier or null"),
    ("unit_trailing_newline", change(lambda d: d.__setitem__("unit", "ward\n")), "unit must be an identifier"),
    ("no_languages", change(lambda d: d.__setitem__("languages", [])), "languages must be 1..16 distinct"),
    ("repeated_language", change(lambda d: d.__setitem__("languages", ["fi", "fi"])), "distinct language tags"),
    ("bad_language_tag", change(lambda d: d.__setitem__("languages", ["fi", "Swedish"])), "distinct language tags"),
    (
        "too_many_languages",
        change(lambda d: d.__setitem__("languages", [f"a{c}" for c in "abcdefghijklmnopq"])),
        "1..16",
    ),
    ("default_not_offered", change(lambda d: d.__setitem__("default_language", "de")), "default_language must be one"),
    ("default_not_a_string", change(lambda d: d.__setitem__("default_language", ["fi"])), "default_language"),
    ("question_not_an_object", change(lambda d: d.__setitem__("question", "q1")), "question must be an object"),
    ("question_missing_text", change(lambda d: d["question"].pop("text")), "question lacks ['text']"),
    ("question_unknown_key", q("choices", []), "question has unknown keys ['choices']"),
    ("bad_question_id", q("id", "-q"), "question id must be an identifier"),
    ("unknown_scale", q("scale", "stars7"), "unknown scale 'stars7'"),
    ("scale_not_a_string", q("scale", ["nps11"]), "unknown scale"),
    ("text_not_a_map", q("text", "Miten meni?"), "question text must map language tags to text"),
    ("text_lacks_a_language", q("text", {"fi": "Miten meni?", "sv": "Hur gick det?"}), "lacks languages ['en']"),
    ("text_blank", change(lambda d: d["question"]["text"].__setitem__("sv", "  ")), "question text[sv] must be"),
    ("text_too_long", change(lambda d: d["question"]["text"].__setitem__("sv", "x" * 301)), "1..300 characters"),
    ("text_not_a_string", change(lambda d: d["question"]["text"].__setitem__("sv", 3)), "question text[sv]"),
    ("text_lone_surrogate", change(lambda d: d["question"]["text"].__setitem__("sv", "\ud800")), "question text[sv]"),
    ("text_bad_tag", change(lambda d: d["question"]["text"].__setitem__("EN", "x")), "bad language tag 'EN'"),
    ("sources_too_long", q("sources", {"fi": "x" * 501}), "question sources[fi] must be 1..500"),
    ("review_not_a_list", q("review", "en"), "review must list languages"),
    ("review_unknown_language", q("review", ["de"]), "review must list languages"),
    ("misuse_interval_negative", change(lambda d: d.__setitem__("misuse_interval_s", -1)), "misuse_interval_s must be"),
    ("misuse_interval_too_long", change(lambda d: d.__setitem__("misuse_interval_s", 3601)), "0..3600"),
    ("misuse_interval_bool", change(lambda d: d.__setitem__("misuse_interval_s", True)), "misuse_interval_s must be"),
    ("misuse_interval_huge", change(lambda d: d.__setitem__("misuse_interval_s", 10**400)), "misuse_interval_s"),
    ("misuse_interval_nan", change(lambda d: d.__setitem__("misuse_interval_s", float("nan"))), "misuse_interval_s"),
    ("thanks_zero", change(lambda d: d.__setitem__("thanks_s", 0)), "thanks_s must be a number in 1..120"),
    ("thanks_string", change(lambda d: d.__setitem__("thanks_s", "5")), "thanks_s must be"),
    ("hours_no_tz", change(lambda d: d["hours"].pop("tz")), "hours lacks ['tz']"),
    ("hours_bad_tz", change(lambda d: d["hours"].__setitem__("tz", "../etc/passwd")), "IANA time zone"),
    ("hours_bad_day", change(lambda d: d["hours"]["weekly"].__setitem__("monday", [])), "unknown keys ['monday']"),
    (
        "hours_close_before_open",
        change(lambda d: d["hours"]["weekly"].__setitem__("tue", [["12:00", "08:00"]])),
        "in order",
    ),
    (
        "hours_overlap",
        change(lambda d: d["hours"]["weekly"].__setitem__("tue", [["08:00", "12:00"], ["11:00", "13:00"]])),
        "in order",
    ),
    ("hours_bad_time", change(lambda d: d["hours"]["weekly"].__setitem__("tue", [["8:00", "12:00"]])), "HH:MM"),
    ("hours_25h", change(lambda d: d["hours"]["weekly"].__setitem__("tue", [["08:00", "25:00"]])), "HH:MM"),
    ("hours_bad_date", change(lambda d: d["hours"].__setitem__("closed_dates", ["24.12.2026"])), "YYYY-MM-DD"),
    (
        "followup_answer_off_scale",
        change(lambda d: d["followup"]["branches"][0].__setitem__("answers", [11])),
        "distinct answers of the scale",
    ),
    (
        "followup_overlap",
        change(lambda d: d["followup"]["branches"][1]["answers"].append(9)),
        "overlaps an earlier branch",
    ),
    (
        "followup_lacks_language",
        change(lambda d: d["followup"]["branches"][0]["question"].pop("sv")),
        "lacks languages ['sv']",
    ),
    ("followup_no_choices", change(lambda d: d["followup"]["branches"][0].__setitem__("choices", [])), "1..8 choices"),
    (
        "followup_repeated_choice",
        change(lambda d: d["followup"]["branches"][0]["choices"].append(d["followup"]["branches"][0]["choices"][0])),
        "distinct identifier",
    ),
    (
        "followup_timeout",
        change(lambda d: d["followup"].__setitem__("timeout_s", 1)),
        "followup.timeout_s must be an integer in 3..300",
    ),
    (
        "role_question_not_bool",
        change(lambda d: d.__setitem__("role_question", "yes")),
        "role_question must be true or false",
    ),
    (
        "strings_unknown_key",
        change(lambda d: d["strings"]["se"].__setitem__("welcome", "x")),
        "unknown keys ['welcome']",
    ),
    ("strings_blank", change(lambda d: d["strings"]["se"].__setitem__("thanks", " ")), "strings.se.thanks must be"),
    ("strings_bad_tag", change(lambda d: d["strings"].__setitem__("Sami", {})), "bad language tag 'Sami'"),
    (
        "feedback_url_not_http",
        change(lambda d: d.__setitem__("feedback_url", "javascript:alert(1)")),
        "http(s) address",
    ),
    (
        "display_brightness",
        change(lambda d: d["display"].__setitem__("brightness", 101)),
        "display.brightness must be an integer in 0..100",
    ),
    ("display_unknown", change(lambda d: d["display"].__setitem__("contrast", 1)), "unknown keys ['contrast']"),
]


@pytest.mark.parametrize(("doc", "message"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_invalid_documents_are_rejected_with_a_clear_message(doc: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        validate_config_doc(doc)
    assert err.value.reason == "invalid"
    assert err.value.detail.startswith("configuration: ")
    assert message in err.value.detail


def test_a_config_message_carries_only_a_valid_document() -> None:
    wire = {"v": 1, "type": "config", "device": "kiosk-001", "version": 2, "doc": {"unit": None}}
    with pytest.raises(ProtocolError, match="configuration: document lacks"):
        decode("hymy/v1/kiosk-001/config", json.dumps(wire).encode())
    with pytest.raises(ProtocolError):
        encode(Config("kiosk-001", 2, {"unit": None}))


def test_a_document_over_the_size_limit_is_rejected_even_if_otherwise_valid() -> None:
    doc = config_doc()
    doc["question"]["sources"] = {f"a{a}{b}": "x" * 500 for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdef"}
    validate_config_doc(doc)
    assert len(json.dumps(doc)) > MAX_CONFIG_DOC_BYTES
    wire = {"v": 1, "type": "config", "device": "kiosk-001", "version": 2, "doc": doc}
    with pytest.raises(ProtocolError, match="over 65536 bytes"):
        decode("hymy/v1/kiosk-001/config", json.dumps(wire).encode())


# -- what a terminal needs to run a document, checked by the same function on both sides --------

ALL_TEXTS = {key: f"{key} (smn)" for key in sorted(UI_STRING_KEYS)}


def offering(langs: list[str], **extra: Any) -> dict[str, Any]:
    """A valid document offering ``langs``; its question text covers each of them."""
    doc = config_doc()
    doc.pop("followup")  # its texts cover fi, sv and en only
    doc.update(languages=langs, default_language=langs[0], **extra)
    doc["question"]["text"] = {lang: f"? ({lang})" for lang in langs}
    doc["question"]["review"] = []
    return doc


def with_hours(**changes: Any) -> dict[str, Any]:
    return change(lambda d: d["hours"].update(changes))


def weekly(day: str, *pairs: list[str]) -> dict[str, Any]:
    return change(lambda d: d["hours"]["weekly"].__setitem__(day, list(pairs)))


STRICT: list[tuple[str, Any, str]] = [
    ("tz_not_on_earth", with_hours(tz="Mars/Olympus_Mons"), "hours.tz must be an IANA time zone"),
    ("tz_host_artefact", with_hours(tz="localtime"), "hours.tz"),
    ("tz_posix_tree", with_hours(tz="posix/Europe/Helsinki"), "hours.tz"),
    ("date_not_in_calendar", with_hours(closed_dates=["2024-02-30"]), "hours.closed_dates[0] must be a calendar date"),
    ("date_month_13", with_hours(closed_dates=["2026-12-24", "2026-13-01"]), "hours.closed_dates[1]"),
    ("date_arabic_indic_digits", with_hours(closed_dates=["٢٠٢٤-٠١-٠١"]), "in ASCII digits"),
    ("date_fullwidth_digits", with_hours(closed_dates=["２０２４-01-01"]), "hours.closed_dates[0]"),
    ("date_not_a_string", with_hours(closed_dates=[20240101]), "hours.closed_dates[0]"),
    ("date_basic_format", with_hours(closed_dates=["20240101"]), "hours.closed_dates[0]"),
    ("time_24_00_opens", weekly("tue", ["24:00", "24:00"]), "hours.weekly.tue opening time must be HH:MM"),
    ("time_unpadded", weekly("tue", ["9:5", "12:00"]), "hours.weekly.tue opening time"),
    ("time_minute_60", weekly("tue", ["08:00", "12:60"]), "hours.weekly.tue closing time"),
    ("time_arabic_indic_digits", weekly("tue", ["٠٨:٠٠", "12:00"]), "hours.weekly.tue opening time"),
    ("time_trailing_newline", weekly("tue", ["08:00", "12:00\n"]), "hours.weekly.tue closing time"),
    (
        "unshipped_language_without_texts",
        offering(["fi", "smn"]),
        "strings.smn must supply every interface text",
    ),
    (
        "unshipped_language_missing_one_key",
        offering(["fi", "smn"], strings={"smn": {k: v for k, v in ALL_TEXTS.items() if k != "face_4"}}),
        "(missing smn: face_4)",
    ),
    (
        "texts_for_another_language_do_not_count",
        offering(["fi", "smn"], strings={"se": ALL_TEXTS}),
        "strings.smn",
    ),
]

#: Every number of the document: (where it lives, key, whether it must be an integer).
NUMBERS = [
    ((), "misuse_interval_s", False),
    ((), "thanks_s", False),
    (("followup",), "timeout_s", True),
    (("display",), "brightness", True),
    (("display",), "sleep_after_s", True),
]


def with_number(path: tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    def put(d: dict[str, Any]) -> None:
        for part in path:
            d = d[part]
        d[key] = value

    return change(put)


for _path, _key, _integer in NUMBERS:
    _name = ".".join((*_path, _key))
    STRICT.append((f"{_name}_bool", with_number(_path, _key, True), f"{_name} must be a"))
    STRICT.append((f"{_name}_string", with_number(_path, _key, "10"), f"{_name} must be a"))
    if _integer:
        STRICT.append((f"{_name}_float", with_number(_path, _key, 10.0), f"{_name} must be an integer"))


@pytest.mark.parametrize(("doc", "message"), [i[1:] for i in STRICT], ids=[i[0] for i in STRICT])
def test_a_document_a_terminal_cannot_run_is_invalid_and_the_reason_names_the_field(doc: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        validate_config_doc(doc)
    assert err.value.reason == "invalid"
    assert message in err.value.detail


@pytest.mark.parametrize(
    "doc",
    [
        with_hours(tz="UTC"),
        with_hours(tz="America/Argentina/Buenos_Aires"),
        with_hours(closed_dates=["2024-02-29", "2026-12-31"]),
        weekly("tue", ["00:00", "23:59"]),
        weekly("tue", ["23:59", "24:00"]),
        with_number((), "thanks_s", 7.5),
        with_number((), "misuse_interval_s", 0),
        offering(["fi", "smn"], strings={"smn": ALL_TEXTS}),
        offering(["sv", "en"]),
    ],
    ids=["utc", "three_part_zone", "leap_day", "whole_day", "24_00_closes", "fraction", "zero", "smn", "shipped"],
)
def test_real_zones_dates_times_fractions_and_complete_languages_pass(doc: dict[str, Any]) -> None:
    assert validate_config_doc(doc) is doc


def test_the_required_strings_are_the_shipped_keys_and_every_shipped_language_is_exempt() -> None:
    assert SHIPPED_LANGUAGES == ("fi", "sv", "en")
    assert missing_strings(offering(["fi", "sv", "en"])) == {}
    assert missing_strings(offering(["en", "smn", "se"], strings={"se": {"thanks": "Giitu!"}})) == {
        "smn": sorted(UI_STRING_KEYS),
        "se": sorted(UI_STRING_KEYS - {"thanks"}),
    }


def test_a_config_message_whose_zone_is_unknown_does_not_decode_and_says_why() -> None:
    wire = {"v": 1, "type": "config", "device": "kiosk-001", "version": 2, "doc": with_hours(tz="Mars/Olympus_Mons")}
    with pytest.raises(ProtocolError, match="hours.tz"):
        decode("hymy/v1/kiosk-001/config", json.dumps(wire).encode())
