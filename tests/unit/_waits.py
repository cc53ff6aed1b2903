"""Named waits for the unit tests: a budget, and what was last seen when it runs out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


def wait_for(description: str, probe: Callable[[], T], budget: float = 10.0) -> T:
    """Call `probe` until it returns something truthy; fail the test after `budget` seconds."""
    try:
        return Retrying(stop=stop_after_delay(budget), wait=wait_fixed(0.05),
                        retry=retry_if_result(lambda value: not value))(probe)
    except RetryError as exc:
        pytest.fail(f"{description}: not true after {budget}s; last seen {exc.last_attempt.result()!r}")
