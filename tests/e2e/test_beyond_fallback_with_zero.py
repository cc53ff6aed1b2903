"""Beyond the page — fallback with scale to zero: the page's scale-to-zero block (minReplicaCount 0,
the keepalive trigger) and fallback block ({failureThreshold 3, replicas 2}) together, as a reader
who takes both would deploy them. The metric source goes down while the model runs at 2+ replicas,
then, separately, while it sits at zero.

What KEDA 2.20.2 does (pkg/fallback and pkg/scaling, read at the pinned version; docs/beyond.md):
each failed read counts toward failureThreshold, in KEDA's polling loop as well as for the HPA; past
it the ScaledObject reports Fallback=True and the failing trigger is fed `threshold × replicas` and
counted as active, so
- at 2+ the HPA settles on fallback.replicas and nothing scales the model to zero while the source
  is down (an erroring trigger is not "inactive": the executor does not apply the cooldown);
- at zero the fallback's "active" trigger makes KEDA scale the model from 0 (its executor), and the
  HPA then brings it to fallback.replicas. Users of older releases report the opposite
  (kedacore/keda #7239, #7411); the report says which one this run saw.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def fallback(keda_enabled: Stack) -> beyond.FallbackWithZero:
    return beyond.fallback_with_zero(keda_enabled)


@pytest.mark.parametrize("name", ["above", "at_zero"])
def test_the_model_stands_at_the_phases_replicas_before_the_break(fallback: beyond.FallbackWithZero,
                                                                 name: str) -> None:
    """The premise of each phase: the model at 2+ replicas (woken from zero and loaded), or idle at
    zero, before the metric source goes down."""
    phase: beyond.FallbackPhase = getattr(fallback, name)
    assert_reached(phase.not_run or phase.start, phase.name)


@pytest.mark.parametrize("name", ["above", "at_zero"])
def test_the_scaledobject_reports_the_fallback(fallback: beyond.FallbackWithZero, name: str) -> None:
    phase: beyond.FallbackPhase = getattr(fallback, name)
    requires(phase.not_run or phase.start)
    assert_reached(phase.fallback, f"{phase.name}: Fallback=True")


def test_at_2_plus_the_deployment_settles_at_the_fallbacks_replicas(fallback: beyond.FallbackWithZero) -> None:
    """The premise of the hold: with the source down, the model at fallback.replicas."""
    phase = fallback.above
    requires(phase.not_run or phase.start)
    assert_reached(phase.settled, f"{phase.name}: at the fallback's replicas")


def test_at_2_plus_the_fallback_holds_its_replicas_instead_of_scaling_to_zero(fallback: beyond.FallbackWithZero) -> None:
    """With minReplicaCount 0 and no traffic readable, KEDA must neither scale to zero after the
    cooldown nor let the HPA go below fallback.replicas: the model is held at 2 for a cooldown, a
    poll and an HPA sync."""
    phase = fallback.above
    requires(phase.not_run or phase.start, phase.settled)
    assert_reached(phase.held, f"{phase.name}: held at the fallback's replicas")


def test_at_zero_the_fallback_lifts_the_model_to_its_replicas(fallback: beyond.FallbackWithZero) -> None:
    phase = fallback.at_zero
    requires(phase.not_run or phase.start)
    assert_reached(phase.settled, f"{phase.name}: lifted to the fallback's replicas",
                   context="KEDA did not lift the model from zero with the metric source down (as kedacore/keda "
                           "#7239 reports)")


@pytest.mark.parametrize("name", ["above", "at_zero"])
def test_keda_counts_no_errors_while_the_source_is_up(fallback: beyond.FallbackWithZero, name: str,
                                                      no_new_keda_errors: Callable[..., None]) -> None:
    phase: beyond.FallbackPhase = getattr(fallback, name)
    requires(phase.not_run or phase.start)
    no_new_keda_errors(phase.healthy)


@pytest.mark.parametrize("name", ["above", "at_zero"])
def test_keda_counts_the_errors_while_the_source_is_down(fallback: beyond.FallbackWithZero, name: str,
                                                         new_keda_errors: Callable[..., None]) -> None:
    """KEDA's error counter is live: the failure shows in its own metrics (the evidence a user has
    when the fallback acts)."""
    phase: beyond.FallbackPhase = getattr(fallback, name)
    requires(phase.not_run or phase.start)
    new_keda_errors(phase.broken)
