"""Follow-up and role after the score: one vote carries score, role and reason; it is committed at the press
(held, not sent) and released with the answers, or as pressed after a timeout or a power cut."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from device.clock import FakeClock
from device.errors import StoreError
from device.store import VoteStore
from device.terminal import Terminal
from device.ui.flow import Flow
from device.ui.views import ChoiceView

DEVICE = "term-0001"
FOLLOWUP = {
    "timeout_s": 10,
    "branches": [
        {
            "answers": [0, 1],
            "question": {"fi": "Mitä parantaisimme?", "sv": "Vad borde vi förbättra?"},
            "choices": [
                {"id": "waiting", "text": {"fi": "Odotus", "sv": "Väntan"}},
                {"id": "kindness", "text": {"fi": "Ystävällisyys", "sv": "Vänlighet"}},
            ],
        }
    ],
}


def flow_for(store: VoteStore, clock: FakeClock, doc: dict[str, Any], touch: bool = True) -> Flow:
    terminal = Terminal(store, None, clock, (1, doc))
    return Flow(
        terminal,
        DEVICE,
        touch=touch,
        now=lambda: clock.mono_ms() / 1000,
        wall=lambda: datetime.fromtimestamp(clock.wall_ms() / 1000, UTC),
    )


def advance(flow: Flow, clock: FakeClock, seconds: float) -> None:
    clock.advance(int(seconds * 1000))
    flow.tick()


@pytest.fixture
def followup_doc(config_doc_with: Callable[..., dict]) -> dict[str, Any]:
    """Four faces with a follow-up for the two negative faces and the role question."""
    return config_doc_with(followup=FOLLOWUP, role_question=True)


def test_score_is_committed_at_the_press_and_sent_only_with_its_reason_and_role(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc)
    flow.tap(("lang", "sv"))
    vote = flow.answer(1)
    assert vote is not None and vote_store.last_vote() == vote  # committed before anything is shown
    assert vote_store.pending() == []  # held: not sent yet
    assert flow.screen == "followup"
    view = flow.view()
    assert isinstance(view, ChoiceView) and view.question == "Vad borde vi förbättra?"
    flow.tap(("followup", "kindness"))
    assert flow.screen == "role" and vote_store.pending() == []
    flow.tap(("role", "relative"))
    assert flow.screen == "thanks"
    [sent] = vote_store.pending()
    assert (sent.seq, sent.answer, sent.lang, sent.reason, sent.role) == (vote.seq, 1, "sv", "kindness", "relative")


def test_skip_sends_the_score_without_reason_or_role(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc)
    flow.answer(0)
    flow.tap(("skip",))
    flow.tap(("skip",))
    assert flow.screen == "thanks"
    assert [(v.answer, v.reason, v.role) for v in vote_store.pending()] == [(0, None, None)]


def test_a_score_no_branch_names_goes_straight_to_the_role_question(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc)
    flow.answer(3)
    assert flow.screen == "role"
    flow.tap(("role", "client"))
    assert [(v.answer, v.reason, v.role) for v in vote_store.pending()] == [(3, None, "client")]


def test_the_follow_up_times_out_and_the_score_stays_stored(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc)
    flow.answer(1)
    advance(flow, fake_clock, 9)
    assert flow.screen == "followup"
    advance(flow, fake_clock, 2)
    assert flow.screen == "question" and flow.lang == "fi"
    assert [(v.answer, v.reason, v.role) for v in vote_store.pending()] == [(1, None, None)]


def test_a_new_press_during_the_follow_up_releases_the_previous_vote(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc)
    flow.answer(0)
    fake_clock.advance(5000)
    flow.answer(3)  # a button or key while the follow-up shows: the next person
    assert [v.answer for v in vote_store.pending()] == [0]
    assert flow.screen == "role"


def test_buttons_only_terminals_ask_no_follow_up(
    vote_store: VoteStore, fake_clock: FakeClock, followup_doc: dict
) -> None:
    flow = flow_for(vote_store, fake_clock, followup_doc, touch=False)
    flow.answer(1)
    assert flow.screen == "thanks"
    assert [(v.answer, v.reason) for v in vote_store.pending()] == [(1, None)]


def test_a_vote_held_at_a_power_cut_is_sent_as_pressed_after_restart(
    store_path: Path, fake_clock: FakeClock, followup_doc: dict
) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    flow = flow_for(store, fake_clock, followup_doc)
    held = flow.answer(1)
    assert held is not None and store.pending() == []
    store.close()  # the power goes; nothing more runs
    with VoteStore(store_path, DEVICE, fake_clock) as reopened:
        assert [(v.seq, v.answer, v.reason) for v in reopened.pending()] == [(held.seq, 1, None)]
        with pytest.raises(StoreError):
            reopened.release(held.seq, reason="waiting")  # too late: it may already be on its way
