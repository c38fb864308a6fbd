"""The terminal core: presses become committed votes under the configuration on screen, misuse is flagged."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from device.clock import FakeClock
from device.errors import NotConfiguredError
from device.store import VoteStore
from device.terminal import Terminal


class RecordingWaker:
    """Counts wakes, standing in for the sync agent."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@pytest.fixture
def waker() -> RecordingWaker:
    """A stand-in agent that counts how often it was woken."""
    return RecordingWaker()


@pytest.fixture
def placed_terminal(vote_store: VoteStore, fake_clock: FakeClock, config_doc: dict, waker: RecordingWaker) -> Terminal:
    """A terminal whose store holds configuration version 3."""
    vote_store.save_config(3, config_doc)
    return Terminal(vote_store, waker, fake_clock)


def test_press_records_under_the_config_in_force_and_wakes_the_agent(
    placed_terminal: Terminal, vote_store: VoteStore, waker: RecordingWaker
) -> None:
    vote = placed_terminal.press(3, lang="sv")
    assert (vote.question, vote.scale, vote.answer, vote.lang, vote.unit, vote.cfg) == (
        "q-visit",
        "faces4",
        3,
        "sv",
        "unit-a",
        3,
    )
    assert vote_store.pending() == [vote]
    assert waker.wakes == 1


def test_press_uses_the_default_language(placed_terminal: Terminal) -> None:
    assert placed_terminal.press(0).lang == "fi"


def test_press_refuses_a_language_not_offered(placed_terminal: Terminal, vote_store: VoteStore) -> None:
    with pytest.raises(ValueError, match="not offered"):
        placed_terminal.press(1, lang="en")
    assert vote_store.depth() == 0


def test_unplaced_terminal_refuses_presses(vote_store: VoteStore, fake_clock: FakeClock) -> None:
    terminal = Terminal(vote_store, None, fake_clock)
    assert not terminal.placed
    with pytest.raises(NotConfiguredError):
        terminal.press(1)
    assert vote_store.depth() == 0


def test_factory_default_config_is_used_only_when_the_store_has_none(
    vote_store: VoteStore, fake_clock: FakeClock, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    default = (0, config_doc_with(question="q-default"))
    assert Terminal(vote_store, None, fake_clock, config=default).press(1).question == "q-default"
    vote_store.save_config(4, config_doc_with(question="q-fleet"))
    assert Terminal(vote_store, None, fake_clock, config=default).press(1).question == "q-fleet"


def test_misuse_flag_when_pressed_sooner_than_the_interval(placed_terminal: Terminal, fake_clock: FakeClock) -> None:
    assert placed_terminal.press(3).flags == frozenset()
    fake_clock.advance(1_999)
    assert placed_terminal.press(3).flags == frozenset({"misuse"})
    fake_clock.advance(2_000)
    assert placed_terminal.press(3).flags == frozenset()


def test_misuse_interval_comes_from_the_config(
    vote_store: VoteStore, fake_clock: FakeClock, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    vote_store.save_config(1, config_doc_with(misuse_interval_s=10))
    terminal = Terminal(vote_store, None, fake_clock)
    terminal.press(1)
    fake_clock.advance(9_000)
    assert "misuse" in terminal.press(1).flags


def test_misuse_pace_survives_a_restart_in_the_same_boot(
    store_path: Path, vote_store: VoteStore, fake_clock: FakeClock, config_doc: dict
) -> None:
    vote_store.save_config(1, config_doc)
    Terminal(vote_store, None, fake_clock).press(2)
    fake_clock.advance(500)
    assert "misuse" in Terminal(vote_store, None, fake_clock).press(2).flags


def test_no_misuse_across_a_reboot(vote_store: VoteStore, fake_clock: FakeClock, config_doc: dict) -> None:
    vote_store.save_config(1, config_doc)
    Terminal(vote_store, None, fake_clock).press(2)
    fake_clock.reboot()
    assert Terminal(vote_store, None, fake_clock).press(2).flags == frozenset()


def test_offered_config_waits_until_applied_between_interactions(
    placed_terminal: Terminal, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    new = config_doc_with(question="q-new")
    assert placed_terminal.check_config(4, new) is None
    placed_terminal.offer_config(4, new)
    assert placed_terminal.press(1).question == "q-visit"
    assert placed_terminal.apply_pending() is True
    assert placed_terminal.press(1).question == "q-new"
    assert placed_terminal.apply_pending() is False


def test_invalid_config_is_refused_with_reason(placed_terminal: Terminal, config_doc: dict) -> None:
    reason = placed_terminal.check_config(4, {**config_doc, "default_language": "en"})
    assert reason is not None and "default_language" in reason


# Mon 2024-03-25 in Helsinki (UTC+2): open 08:00-16:00; Sunday 31 March the clocks jump 03:00 -> 04:00.
WEEKDAY_HOURS = {"tz": "Europe/Helsinki", "weekly": {"mon": [["08:00", "16:00"]], "sun": [["04:00", "24:00"]]}}


def _wall(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.mark.parametrize(
    ("wall", "flagged"),
    [
        ("2024-03-25T07:59:59+02:00", True),
        ("2024-03-25T08:00:00+02:00", False),
        ("2024-03-25T16:00:00+02:00", True),
        ("2024-03-26T10:00:00+02:00", True),  # Tuesday has no hours
        ("2024-03-31T01:00:00+00:00", False),  # 04:00 in Helsinki, just after the spring jump
        ("2024-03-31T00:59:59+00:00", True),  # 02:59:59 before it
    ],
)
def test_after_hours_flag_follows_the_hours_at_the_clocks_wall_time(
    vote_store: VoteStore,
    fake_clock: FakeClock,
    config_doc_with: Callable[..., dict[str, Any]],
    wall: str,
    flagged: bool,
) -> None:
    vote_store.save_config(1, config_doc_with(hours=WEEKDAY_HOURS))
    fake_clock.set_wall(_wall(wall))
    vote = Terminal(vote_store, None, fake_clock).press(2)
    assert ("after_hours" in vote.flags) is flagged
    assert vote_store.pending() == [vote]  # stored and kept either way


def test_no_hours_never_flags_after_hours(placed_terminal: Terminal, fake_clock: FakeClock) -> None:
    fake_clock.set_wall(_wall("2024-03-30T03:00:00+02:00"))
    assert placed_terminal.press(1).flags == frozenset()


def test_after_hours_and_misuse_flags_combine(
    vote_store: VoteStore, fake_clock: FakeClock, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    vote_store.save_config(1, config_doc_with(hours=WEEKDAY_HOURS))
    fake_clock.set_wall(_wall("2024-03-26T10:00:00+02:00"))
    terminal = Terminal(vote_store, None, fake_clock)
    terminal.press(1)
    fake_clock.advance(500)
    assert terminal.press(1).flags == frozenset({"misuse", "after_hours"})


def test_unknown_zone_in_a_stored_config_still_records_the_press(
    vote_store: VoteStore, fake_clock: FakeClock, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    vote_store.save_config(1, config_doc_with(hours=dict(WEEKDAY_HOURS, tz="Europe/Atlantis")))
    vote = Terminal(vote_store, None, fake_clock).press(1)
    assert vote.flags == frozenset()
    assert vote_store.depth() == 1


def test_check_config_refuses_an_unknown_zone_and_unshipped_language_without_texts(
    placed_terminal: Terminal, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    reason = placed_terminal.check_config(4, config_doc_with(hours=dict(WEEKDAY_HOURS, tz="Europe/Atlantis")))
    assert reason is not None and "Europe/Atlantis" in reason
    doc = config_doc_with(languages=["fi", "se"])
    doc["question"]["text"]["se"] = "Movt mii lihkostuvaimet?"
    reason = placed_terminal.check_config(5, doc)
    assert reason is not None and "strings.se" in reason and "thanks" in reason


def test_apply_pending_takes_only_the_version_the_ui_drew(
    placed_terminal: Terminal, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    placed_terminal.offer_config(4, config_doc_with(question="q-4"))
    placed_terminal.offer_config(5, config_doc_with(question="q-5"))  # arrived after the UI drew version 4
    assert placed_terminal.apply_pending(4) is False
    assert placed_terminal.pending is not None and placed_terminal.pending[0] == 5
    assert placed_terminal.apply_pending(5) is True
    assert placed_terminal.config is not None and placed_terminal.config[0] == 5


def test_presses_from_another_thread_never_mix_two_configurations(
    vote_store: VoteStore, fake_clock: FakeClock, config_doc_with: Callable[..., dict[str, Any]]
) -> None:
    docs = {
        v: config_doc_with(question=f"q-{v}", scale=scale, languages=[lang], default_language=lang)
        for v, scale, lang in ((1, "faces4", "fi"), (2, "faces5", "sv"))
    }
    docs[2]["question"]["text"] = {"sv": "Hur lyckades vi?"}
    docs[1]["question"]["text"] = {"fi": "Miten onnistuimme?"}
    terminal = Terminal(vote_store, None, fake_clock, (1, docs[1]))
    errors: list[BaseException] = []

    def presses() -> None:
        try:
            for i in range(200):
                terminal.press(i % 4)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    thread = threading.Thread(target=presses)
    thread.start()
    version = 1
    while thread.is_alive():
        version = 3 - version
        terminal.offer_config(version, docs[version])
        terminal.apply_pending()
    thread.join()
    assert errors == []
    votes = vote_store.pending(1000)
    assert len(votes) == 200
    for v in votes:
        doc = docs[v.cfg]
        assert (v.question, v.scale, v.lang) == (doc["question"]["id"], doc["question"]["scale"], doc["languages"][0])
