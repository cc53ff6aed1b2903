"""Beyond the page — activation: load that keeps the queue above 0 but at or below the trigger's
threshold must not scale. The HPA's target is an average of `threshold` per replica, so a queue
that never passes it leaves one replica; replicas must hold at 1 for two KEDA polls and two HPA
syncs while requests wait (KEDA's own e2e suite calls this testActivation)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import NotRun, assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def activation(keda_enabled: Stack) -> beyond.Activation:
    return beyond.activation(keda_enabled)


def _in_band(run: beyond.Activation) -> waits.Seen[float | None] | NotRun:
    """The scenario's premise as observed: the queue above 0, and during the window non-zero and
    never above the threshold."""
    if not run.queued.reached or run.load_stayed_in_band():
        return run.queued
    return NotRun(f"the queue left the band during the window: peak {run.queue.peak} (threshold "
                  f"{run.threshold:g}), {len(run.queue.values)} samples")


def test_the_load_queues_requests_without_passing_the_threshold(activation: beyond.Activation) -> None:
    """The scenario's premise, checked rather than assumed: the queue was non-zero and never above
    the threshold during the window."""
    assert_reached(_in_band(activation))


def test_replicas_hold_at_one_below_the_threshold(activation: beyond.Activation) -> None:
    requires(_in_band(activation))
    assert_reached(activation.held, "replicas held at 1")


def test_keda_counts_no_errors_for_the_scaledobject(activation: beyond.Activation, no_new_keda_errors: Callable[..., None]) -> None:
    no_new_keda_errors(activation.errors)


def test_the_runs_prometheus_stores_kedas_reading_of_the_queue(activation: beyond.Activation, stack: Stack) -> None:
    """KEDA's own evidence beside the engines': the operator's `keda_scaler_metrics_value` for the
    queue trigger is in the run's Prometheus, non-zero under the scenario's load (on the lab, the
    Prometheus scrapes KEDA as job `keda-operator`; on a cluster, only where a ServiceMonitor selects
    KEDA's operator)."""
    requires(activation.queued)
    stored = activation.stored
    if stored is not None and not stored.reached and stack.backend.name != "lab":
        pytest.skip(f"this cluster's Prometheus does not store KEDA's operator metrics: {stored.explain()}")
    assert_reached(stored, "KEDA's reading in the run's Prometheus")
