"""Beyond the page — activation: load that keeps the queue above 0 but at or below the trigger's
threshold must not scale. The HPA's target is an average of `threshold` per replica, so a queue
that never passes it leaves one replica; replicas must hold at 1 for two KEDA polls and two HPA
syncs while requests wait (KEDA's own e2e suite calls this testActivation)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def activation(keda_enabled: Stack) -> beyond.Activation:
    return beyond.activation(keda_enabled)


def test_the_load_queues_requests_without_passing_the_threshold(activation: beyond.Activation) -> None:
    """The scenario's premise, checked rather than assumed: the queue was non-zero and never above
    the threshold during the window."""
    assert activation.queued.reached, activation.queued.explain()
    assert activation.load_stayed_in_band(), \
        f"queue during the window: peak {activation.queue.peak} (threshold {activation.threshold:g}), " \
        f"{len(activation.queue.values)} samples"


def test_replicas_hold_at_one_below_the_threshold(activation: beyond.Activation) -> None:
    held = activation.held
    assert held is not None and held.held, held.explain() if held is not None else activation.queued.explain()


def test_keda_counts_no_errors_for_the_scaledobject(activation: beyond.Activation, no_new_keda_errors: Callable[..., None]) -> None:
    no_new_keda_errors(activation.errors)


def test_the_runs_prometheus_stores_kedas_reading_of_the_queue(activation: beyond.Activation, stack: Stack) -> None:
    """KEDA's own evidence beside the engines': the operator's `keda_scaler_metrics_value` for the
    queue trigger is in the run's Prometheus, non-zero under the scenario's load (on the lab, the
    Prometheus scrapes KEDA as job `keda-operator`; on a cluster, only where a ServiceMonitor selects
    KEDA's operator)."""
    stored = activation.stored
    assert stored is not None, activation.queued.explain()
    if not stored.reached and stack.backend.name != "lab":
        pytest.skip(f"this cluster's Prometheus does not store KEDA's operator metrics: {stored.explain()}")
    assert stored.reached, stored.explain()
