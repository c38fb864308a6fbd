"""Interface texts: shipped for fi, sv and en, overridable per configuration, complete before a language is shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import protocol
from device.strings import AWAITING_REVIEW, SHIPPED, check_config, check_config_for, texts_for
from protocol.configdoc import SHIPPED_LANGUAGES, UI_STRING_KEYS, missing_strings
from protocol.limits import MAX_UI_TEXT

SAMI = {key: f"davvisámegiella {key}" for key in UI_STRING_KEYS}


def test_the_terminal_ships_exactly_the_languages_the_protocol_exempts_from_strings() -> None:
    # The fleet checks a document against protocol's list without importing device/: they must agree.
    assert set(SHIPPED) == set(SHIPPED_LANGUAGES)


@pytest.mark.parametrize("lang", SHIPPED_LANGUAGES)
def test_every_shipped_language_has_every_key_within_the_protocol_limit(lang: str) -> None:
    texts = SHIPPED[lang]
    assert texts.keys() == UI_STRING_KEYS
    # The same rule the protocol applies to configured strings, so shipped texts could travel as one.
    protocol.validate_config_doc(
        {
            "unit": None,
            "languages": [lang],
            "default_language": lang,
            "question": {"id": "q", "scale": "faces4", "text": {lang: "?"}},
            "strings": {lang: dict(texts)},
        }
    )
    assert all(len(text) <= MAX_UI_TEXT for text in texts.values())


def test_shipped_texts_say_what_the_product_promises() -> None:
    assert (SHIPPED["fi"]["thanks"], SHIPPED["sv"]["thanks"]) == ("Kiitos!", "Tack!")
    assert [SHIPPED[lang]["language_name"] for lang in ("fi", "sv", "en")] == ["Suomi", "Svenska", "English"]
    assert SHIPPED["fi"]["nps_low"] == "En lainkaan todennäköisesti"
    assert SHIPPED["fi"]["face_0"] == "Erittäin tyytymätön"


def test_texts_awaiting_review_are_marked_and_name_real_keys() -> None:
    assert "nps_low" in AWAITING_REVIEW["sv"]
    assert "language_name" not in AWAITING_REVIEW["sv"]
    for lang, keys in AWAITING_REVIEW.items():
        assert lang in SHIPPED and keys <= UI_STRING_KEYS


def test_texts_for_merges_configured_overrides_over_shipped_texts(
    config_doc_with: Callable[..., dict[str, Any]],
) -> None:
    doc = config_doc_with(strings={"fi": {"thanks": "Kiitos palautteestasi!"}})
    texts = texts_for("fi", doc)
    assert texts["thanks"] == "Kiitos palautteestasi!"
    assert texts["skip"] == SHIPPED["fi"]["skip"]
    assert texts_for("sv", doc)["thanks"] == "Tack!"


def test_texts_for_an_unplaced_terminal_are_the_shipped_ones() -> None:
    assert texts_for("sv", None) == dict(SHIPPED["sv"])


def test_a_configured_language_is_shown_from_its_strings(config_doc_with: Callable[..., dict[str, Any]]) -> None:
    doc = _offering(config_doc_with, ["fi", "se"], strings={"se": SAMI})
    assert texts_for("se", doc) == SAMI


def test_a_gap_falls_back_to_english_rather_than_an_empty_screen(
    config_doc_with: Callable[..., dict[str, Any]],
) -> None:
    doc = _offering(config_doc_with, ["fi", "se"], strings={"se": {"thanks": "Giitu!"}})
    texts = texts_for("se", doc)
    assert texts["thanks"] == "Giitu!"
    assert texts["skip"] == "Skip"


def test_missing_strings_names_each_unshipped_language_and_its_missing_keys(
    config_doc_with: Callable[..., dict[str, Any]],
) -> None:
    partial = {k: v for k, v in SAMI.items() if k not in ("thanks", "face_4")}
    doc = _offering(
        config_doc_with,
        ["fi", "se", "smn"],
        strings={"se": partial},
    )
    assert missing_strings(doc) == {"se": ["face_4", "thanks"], "smn": sorted(UI_STRING_KEYS)}
    assert missing_strings(config_doc_with()) == {}


def test_check_config_accepts_a_runnable_configuration(config_doc_with: Callable[..., dict[str, Any]]) -> None:
    hours = {"tz": "Europe/Helsinki", "weekly": {"mon": [["08:00", "16:00"]]}}
    assert check_config(1, config_doc_with(hours=hours)) is None
    doc = _offering(config_doc_with, ["fi", "se"], strings={"se": SAMI})
    assert check_config(2, doc) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hours": {"tz": "Europe/Atlantis", "weekly": {}}}, "Europe/Atlantis"),
        ({"languages": ["fi", "se"]}, "strings.se must supply every interface text"),
        ({"misuse_interval_s": -1}, "misuse_interval_s"),
    ],
)
def test_check_config_names_why_it_refuses(
    config_doc_with: Callable[..., dict[str, Any]], change: dict[str, Any], reason: str
) -> None:
    got = check_config(7, _offering(config_doc_with, change.pop("languages", ["fi", "sv"]), **change))
    assert got is not None and reason in got


def _offering(make: Callable[..., dict[str, Any]], langs: list[str], **extra: Any) -> dict[str, Any]:
    """A valid document offering ``langs``, its question text covering each of them."""
    doc = make(languages=langs, default_language=langs[0], **extra)
    doc["question"]["text"] = {lang: f"? ({lang})" for lang in langs}
    return doc


def test_a_button_terminal_refuses_a_scale_with_another_number_of_answers(
    config_doc_with: Callable[..., dict[str, Any]],
) -> None:
    four_buttons = check_config_for(4)
    assert four_buttons(1, config_doc_with(scale="faces4")) is None
    reason = four_buttons(2, config_doc_with(scale="nps11"))
    assert reason is not None and "11 answers" in reason and "4 buttons" in reason
    assert check_config_for(None)(3, config_doc_with(scale="nps11")) is None
    assert check_config_for(4)(4, config_doc_with(misuse_interval_s=-1)) == check_config(
        4, config_doc_with(misuse_interval_s=-1)
    )
