"""One meaning for "not run" (NotRun), one assertion on an observation (assert_reached), one guard
of a dependent claim (requires): docs/claims.md."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.observed import NotRun, assert_reached, explain, observed, requires


def seen(reached: bool) -> waits.Seen[int]:
    return waits.Seen("the queue above 5", 30.0, reached, 7 if reached else 2, 3.0, 0.0, "7" if reached else "2")


def held(ok: bool) -> waits.Held[int]:
    return waits.Held("replicas at 1", 20.0, [(0.0, 1), (5.0, 1 if ok else 2)], None if ok else 5.0, "" if ok else "2")


def test_a_not_run_says_what_did_not_happen_and_why() -> None:
    missing = NotRun("the load never raised the queue above the threshold: last seen 2")
    assert missing.explain() == "not run: the load never raised the queue above the threshold: last seen 2"
    assert str(missing) == missing.why


def test_a_not_run_is_truthy_so_it_wins_over_the_observation_it_replaces() -> None:
    """`run.not_run or run.premise`: the reason the scenario stopped, else the observation."""
    missing = NotRun("stopped")
    assert (missing or seen(True)) is missing
    assert observed(None or seen(True))


@pytest.mark.parametrize(("observation", "expected"), [
    (seen(True), True), (seen(False), False), (held(True), True), (held(False), False),
    (NotRun("stopped"), False), (None, False),
])
def test_observed_is_reached_or_held_and_never_a_missing_one(observation: object, expected: bool) -> None:
    assert observed(observation) is expected


def test_explain_says_what_was_seen_or_what_is_missing() -> None:
    assert explain(seen(False)) == seen(False).explain()
    assert explain(None, "the cold start") == "the cold start: not observed (the scenario ended before it)"
    assert explain(NotRun("no zero"), "the cold start") == "the cold start: not run: no zero"


def test_assert_reached_passes_a_reached_observation() -> None:
    assert_reached(seen(True))
    assert_reached(held(True), "replicas held")


@pytest.mark.parametrize("observation", [seen(False), held(False), NotRun("no zero"), None])
def test_assert_reached_fails_with_the_explanation(observation: object) -> None:
    with pytest.raises(AssertionError) as failed:
        assert_reached(observation, "the claim", context="queue peak 2")
    assert str(failed.value) == f"{explain(observation, 'the claim')}; queue peak 2"


def test_assert_reached_explains_an_object_with_describe_only() -> None:
    class Drive:
        reached = False

        def describe(self) -> str:
            return "target >15 NOT reached"

    with pytest.raises(AssertionError, match="target >15 NOT reached"):
        assert_reached(Drive())


def test_requires_lets_the_claim_run_when_every_premise_was_observed() -> None:
    requires(seen(True), held(True))


@pytest.mark.parametrize("missing", [seen(False), NotRun("the Deployment never reached 0 replicas"), None])
def test_requires_skips_naming_the_first_missing_premise(missing: object) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        requires(seen(True), missing, NotRun("a later premise"))
    message = str(skipped.value)
    assert message.startswith("premise not observed — ") and "its own test fails" in message
    assert explain(missing) in message and "a later premise" not in message
