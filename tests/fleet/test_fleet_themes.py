"""Themes and tone of open-feedback texts: the shipped data, the built-in method, corrections, the switch."""

from __future__ import annotations

import io
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from fleet.__main__ import main as fleet_main
from fleet.db.feedback import Answer, FeedbackRecords
from fleet.db.store import SqlFleetStore
from fleet.feedback import Themes, ThemeSettings
from fleet.themes.builtin import BuiltinThemes, read_examples, shipped, shipped_model
from fleet.themes.evaluate import evaluate
from fleet.themes.model import THEMES, TONES, Text

from . import test_fleet_themes_openai as ai
from .test_fleet_themes_openai import FakeAIService, Reply, completion, results

ai_service = ai.ai_service  # the fake county AI service fixture, shared

LANGS = ("fi", "sv", "en")


def trained() -> BuiltinThemes:
    """The built-in method as the fleet trains it with no corrections (trained once per process)."""
    return shipped_model()


def test_the_evaluation_set_has_300_texts_across_the_three_languages_apart_from_the_training_set() -> None:
    train, held_out = shipped("train"), shipped("eval")
    assert len(held_out) >= 300
    per_lang = Counter(e.lang for e in held_out)
    assert all(per_lang[lang] >= 100 for lang in LANGS), per_lang
    assert {e.lang for e in train} == set(LANGS)
    normalised = {" ".join(e.text.lower().split()) for e in train}
    assert not [e.text for e in held_out if " ".join(e.text.lower().split()) in normalised]
    themes = Counter(t for e in held_out for t in e.themes)
    assert all(themes[t] >= 20 for t in THEMES), themes  # each theme measured on enough texts
    assert {e.tone for e in held_out} == set(TONES)


def test_a_bad_line_in_the_examples_names_its_place() -> None:
    good = '{"lang": "fi", "text": "Kiitos", "themes": [], "tone": "positive"}'
    assert read_examples([good], "x.jsonl")[0].tone == "positive"
    with pytest.raises(ValueError, match="x.jsonl:2"):
        read_examples([good, '{"lang": "fi", "text": "a", "themes": ["weather"], "tone": "positive"}'], "x.jsonl")
    with pytest.raises(ValueError, match="x.jsonl:1"):
        read_examples(["not json"], "x.jsonl")


def test_the_builtin_method_finds_themes_on_texts_it_never_saw() -> None:
    ev = evaluate(trained(), shipped("eval"))
    # Floors a little under what docs/open-feedback.md reports: a change that makes the method worse fails here.
    assert ev.micro.f1 >= 0.74, ev.micro  # 0.78 measured; the rules alone 0.76, the model alone 0.71
    assert ev.macro_f1 >= 0.76, ev.macro_f1
    assert ev.tone_accuracy >= 0.76, ev.tone_accuracy  # 0.80 measured; the rules' tone 0.72
    assert all(s.recall > 0 for s in ev.themes), [(s.label, s.recall) for s in ev.themes]


@pytest.mark.parametrize(
    ("lang", "text", "theme"),
    [
        ("fi", "Jouduin odottamaan vastaanotolle yli kaksi tuntia.", "waiting"),
        ("sv", "Det fanns inga lediga parkeringsplatser vid hälsocentralen.", "parking"),
        ("en", "Nobody answered the phone, I called five times.", "phone"),
        ("fi", "Ajanvaraus netissä ei toiminut ollenkaan.", "digital"),
    ],
)
def test_plain_texts_get_their_obvious_theme(lang: str, text: str, theme: str) -> None:
    (got,) = trained().assign([Text(lang, text)])
    assert theme in got.themes, got


def test_the_evaluate_command_prints_precision_and_recall_per_theme() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert fleet_main(["themes", "--evaluate"]) == 0
    printed = out.getvalue()
    assert "evaluation texts" in printed and "precision" in printed and "recall" in printed
    for theme in THEMES:
        assert any(line.startswith(theme) for line in printed.splitlines()), theme
    assert "tone accuracy" in printed


def _store_text(records: FeedbackRecords, text: str, lang: str = "fi") -> int:
    return records.add(Answer("kaukajarvi", None, lang, "thl-nps", "nps11", 5, None, text))


def test_a_correction_is_kept_and_teaches_later_assignments(fleet_db: SqlFleetStore) -> None:
    records = FeedbackRecords(fleet_db)
    themes = Themes(records)
    odd = "Kahvikuppi ja lehtiä pöydälle, niin olisi mukavampi istua."
    first = _store_text(records, odd)
    assert themes.assign_pending() == 1
    records.correct("manager", first, ["facilities", "waiting"], "negative")
    # A later automatic round never overwrites the person's themes.
    assert records.set_themes(first, ["care"], "positive", "builtin") is False
    corrected = records.text(first)
    assert corrected is not None and corrected.themes == ("waiting", "facilities") and corrected.corrected_by
    # The same text again gets the corrected themes: the method retrained on the correction.
    again = _store_text(records, odd)
    assert themes.assign_pending() == 1
    got = records.text(again)
    assert got is not None and got.themes == ("waiting", "facilities") and got.tone == "negative"
    assert got.method == "builtin"


def test_a_texts_themes_are_assigned_once_and_only_texts_wait(fleet_db: SqlFleetStore) -> None:
    records = FeedbackRecords(fleet_db)
    records.add(Answer("kaukajarvi", None, "fi", "thl-nps", "nps11", 9, None, None))
    _store_text(records, "Hoitaja oli tosi ystävällinen ja kuunteli.")
    assert [p[2] for p in records.pending()] == ["Hoitaja oli tosi ystävällinen ja kuunteli."]
    themes = Themes(records)
    assert themes.assign_pending() == 1 and themes.assign_pending() == 0
    assert records.pending() == []


def test_the_countys_own_service_assigns_when_configured(fleet_db: SqlFleetStore, ai_service: FakeAIService) -> None:
    records = FeedbackRecords(fleet_db)
    text_id = _store_text(records, "Parkkipaikkoja ei ollut.")
    ai_service.answer(Reply(completion(results((["parking"], "negative")))))
    themes = Themes(records, ThemeSettings("openai", ai_service.url, "county-llm", "k"))
    assert themes.assign_pending() == 1
    got = records.text(text_id)
    assert got is not None and got.method == "openai:county-llm" and got.themes == ("parking",)
    (request,) = ai_service.requests
    assert "Parkkipaikkoja ei ollut." in request.body["messages"][-1]["content"]


def test_when_the_countys_service_fails_the_builtin_method_assigns(
    fleet_db: SqlFleetStore, ai_service: FakeAIService
) -> None:
    records = FeedbackRecords(fleet_db)
    text_id = _store_text(records, "Jouduin odottamaan kaksi tuntia.")
    ai_service.answer(Reply(b"down for maintenance", status=503))
    themes = Themes(records, ThemeSettings("openai", ai_service.url, "county-llm", "k"))
    assert themes.assign_pending() == 1
    got = records.text(text_id)
    assert got is not None and got.method == "builtin" and got.tone is not None
    assert themes.failures == 1


def test_the_assign_command_gives_waiting_texts_their_themes(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    with SqlFleetStore(db) as store:
        records = FeedbackRecords(store)
        _store_text(records, "Puhelimeen ei vastattu koko päivänä.")
        _store_text(records, "Ei kommentoitavaa.")
    out = io.StringIO()
    with redirect_stdout(out):
        assert fleet_main(["--db", str(db), "themes", "--assign"]) == 0
    assert "themes assigned to 2 text(s)" in out.getvalue()
    with SqlFleetStore(db) as store:
        assert FeedbackRecords(store).pending() == []
