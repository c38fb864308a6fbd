"""Fixtures for the terminal's tests: a fake clock, a vote store on it, and a configuration document."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.clock import FakeClock
from device.store import VoteStore

DEVICE = "term-0001"


@pytest.fixture
def device_id() -> str:
    """The id of the terminal under test."""
    return DEVICE


def make_config_doc(question: str = "q-visit", scale: str = "faces4", **extra: Any) -> dict[str, Any]:
    """A valid configuration document; keyword arguments override or add settings."""
    doc: dict[str, Any] = {
        "unit": "unit-a",
        "languages": ["fi", "sv"],
        "default_language": "fi",
        "question": {"id": question, "scale": scale, "text": {"fi": "Miten onnistuimme?", "sv": "Hur lyckades vi?"}},
    }
    doc.update(extra)
    return doc


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the terminal's vote database lives for this test."""
    return tmp_path / "votes.db"


@pytest.fixture
def vote_store(store_path: Path, fake_clock: FakeClock, device_id: str) -> Iterator[VoteStore]:
    """An open vote store on the fake clock, closed after the test."""
    store = VoteStore(store_path, device_id, fake_clock)
    yield store
    store.close()


@pytest.fixture
def config_doc() -> dict[str, Any]:
    """A valid four-face configuration with the default two-second misuse interval."""
    return make_config_doc()


@pytest.fixture
def config_doc_with() -> Callable[..., dict[str, Any]]:
    """Factory for valid configuration documents: ``config_doc_with(question="q2", misuse_interval_s=5)``."""
    return make_config_doc
