"""One meaning for "not run", one way to assert an observation (docs/claims.md).

An observation a test judges is a `waits.Seen` (reached or not), a `waits.Held` (held or not), a
`NotRun` (the scenario never got to it: what did not happen and why) or None (nothing recorded:
the scenario ended before it). `assert_reached` is the one assertion on it, with its explanation;
`requires` is the one guard of a dependent claim: a claim whose premise was not observed is
skipped, naming the premise and what was last seen of it, and the premise's own test is the one
that fails.

A scenario that stops early sets its `not_run` (a `NotRun`, or a dict of them by phase); a
`NotRun` is truthy, so `run.not_run or run.premise` is the premise as the test judges it: the
reason the scenario stopped, else the observation itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_OBSERVED = "not observed (the scenario ended before it)"


@dataclass(frozen=True)
class NotRun:
    """An observation that was not made: what did not happen and why (naming the premise that
    failed and what was last seen of it)."""

    why: str

    def __str__(self) -> str:
        return self.why

    def explain(self) -> str:
        return f"not run: {self.why}"


def observed(observation: Any) -> bool:
    """Whether the observation was made and held: a Seen (or anything with `reached`) reached, a
    Held held; a NotRun or None never."""
    if observation is None or isinstance(observation, NotRun):
        return False
    if hasattr(observation, "reached"):
        return bool(observation.reached)
    return bool(observation.held)


def explain(observation: Any, what: str = "") -> str:
    """The observation in words (its own `explain()`, else `describe()`), or what is missing."""
    if observation is None:
        return f"{what}: {NOT_OBSERVED}" if what else NOT_OBSERVED
    words = getattr(observation, "explain", None) or getattr(observation, "describe", None)
    text = words() if words is not None else str(observation)
    return f"{what}: {text}" if what and isinstance(observation, NotRun) else text


def assert_reached(observation: Any, what: str = "", context: str = "") -> None:
    """The one assertion on an observation: fails, explaining it, unless it was made and held.
    `what` names it when it may be missing; `context` adds what else was seen."""
    if not observed(observation):
        raise AssertionError(explain(observation, what) + (f"; {context}" if context else ""))


def requires(*premises: Any) -> None:
    """Skip the calling (dependent) claim unless every premise, in order, was observed: the skip
    names the first missing premise and what was last seen of it. The premise's own test fails
    in the same run, so the failure names the right cause."""
    for premise in premises:
        if not observed(premise):
            import pytest

            pytest.skip(f"premise not observed — {explain(premise)} (its own test fails)")
