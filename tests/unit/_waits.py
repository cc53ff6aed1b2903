"""Named waits for the unit tests, through the harness's own wait engine: a budget, and what
was last seen when it runs out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from vllm_stack_e2e import waits

T = TypeVar("T")


def wait_for(description: str, probe: Callable[[], T], budget: float = 10.0) -> T:
    """Call `probe` until it returns something truthy (an exception counts as not yet); fail the
    test after `budget` seconds, saying what was seen last."""
    seen = waits.until(waits.polling(probe, 0.05), bool, budget, description, show=repr)
    if not seen.reached:
        pytest.fail(seen.explain())
    return seen.state  # type: ignore[return-value]
