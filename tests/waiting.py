"""Waiting on conditions in tests: poll with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition", step: float = 0.01
) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` if it does not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
