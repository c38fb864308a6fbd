"""Fixtures for the fleet: a fresh store, and builders for the messages terminals send."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from fleet.db.store import SqlFleetStore
from protocol import Vote, VoteBatch

from .web import Fleet, build_fleet

#: 2025-03-01 12:00:00 UTC, in ms: a synchronised wall clock.
NOON = 1_740_830_400_000


def make_vote(seq: int, answer: int = 9, **fields: object) -> Vote:
    """A valid nps11 vote pressed ``seq`` seconds after boot on a synchronised clock, unless told otherwise."""
    base: dict[str, object] = {
        "seq": seq,
        "question": "thl-nps",
        "scale": "nps11",
        "answer": answer,
        "lang": "fi",
        "wall": NOON + seq * 1000,
        "mono": seq * 1000,
        "boot": "boot-1",
        "synced": True,
        "unit": "unit-a",
        "cfg": 1,
    }
    base.update(fields)
    return Vote(**base)  # type: ignore[arg-type]


def make_batch(device: str, seqs: Iterable[int], batch: int = 1, **fields: object) -> VoteBatch:
    """A batch of ``device``'s votes with the given seqs."""
    return VoteBatch(device, batch, tuple(make_vote(s, **fields) for s in seqs))


@pytest.fixture
def fleet_db(fleet_url: str) -> Iterator[SqlFleetStore]:
    """A fresh fleet store on each engine in turn (SQLite, PostgreSQL)."""
    store = SqlFleetStore(fleet_url)
    yield store
    store.close()


@pytest.fixture
def fleet_web(tmp_path: Path) -> Iterator[Fleet]:
    """The fleet web on a fresh SQLite store, with an organisation and an account per role."""
    store = SqlFleetStore(tmp_path / "fleet.db")
    try:
        yield build_fleet(store)
    finally:
        store.close()
