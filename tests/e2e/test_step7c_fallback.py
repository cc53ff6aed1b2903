"""Step 7 — "Fallback Configuration": with fallback {failureThreshold: 3, replicas: 2}, a metric
source that fails for real makes KEDA report Fallback=True and the Deployment settle at 2
replicas; when the source returns, Fallback clears and scaling follows the metric again.
Contrast: the same failure without fallback leaves the ScaledObject Ready=False (TriggerError).

Uses the harness fix the run writes for defect 3 (docs/upstream-defects.md#defect-3): at 2
replicas the tutorial's per-pod query would itself fail and keep the fallback on after the
source returns."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import step7_advanced as advanced

pytestmark = pytest.mark.e2e
TUTORIAL_FALLBACK = {"failureThreshold": 3, "replicas": 2}


@pytest.fixture(scope="module")
def fallback(keda_enabled: Stack) -> advanced.Fallback:
    return advanced.fallback(keda_enabled)


def test_the_scaledobject_carries_the_fallback(fallback: advanced.Fallback) -> None:
    """KEDA 2.20 stores the block with its own default added (`behavior: static`, docs/keda.md)."""
    carried = {key: fallback.fallback.get(key) for key in TUTORIAL_FALLBACK}
    assert carried == TUTORIAL_FALLBACK, f"ScaledObject spec.fallback {fallback.fallback}"


def test_fallback_condition_true_when_metrics_fail(fallback: advanced.Fallback) -> None:
    assert_reached(fallback.condition)


def test_deployment_settles_at_fallback_replicas(fallback: advanced.Fallback) -> None:
    assert_reached(fallback.settled, "the Deployment at the fallback's replicas")


def test_deployment_holds_the_fallback_replicas_while_metrics_fail(fallback: advanced.Fallback) -> None:
    requires(fallback.not_run.get("held") or fallback.settled)
    assert_reached(fallback.held, "the fallback's replicas held")


def test_fallback_clears_when_metrics_return(fallback: advanced.Fallback) -> None:
    assert_reached(fallback.cleared, "Fallback=False")


def test_scaling_follows_the_metric_again(fallback: advanced.Fallback) -> None:
    assert_reached(fallback.followed, "back to 1 replica")


@pytest.fixture(scope="module")
def no_fallback(fallback: advanced.Fallback, keda_enabled: Stack) -> advanced.NoFallback:
    """After the fallback scenario (module order): the tutorial's step-4 ScaledObject, same failure."""
    return advanced.no_fallback(keda_enabled)


def test_without_fallback_the_scaledobject_reports_the_trigger_error(no_fallback: advanced.NoFallback) -> None:
    assert not no_fallback.has_fallback, "the contrast's ScaledObject has a fallback block"
    assert_reached(no_fallback.failed)
    ready = k.ScaledObject(no_fallback.failed.state).condition("Ready") or {}
    assert ready.get("reason") == "TriggerError", f"Ready condition while the source was down: {ready}"
    assert not k.condition_is(no_fallback.failed.state, "Fallback"), k.summarize(no_fallback.failed.state)


def test_without_fallback_it_recovers_when_metrics_return(no_fallback: advanced.NoFallback) -> None:
    assert_reached(no_fallback.recovered)
