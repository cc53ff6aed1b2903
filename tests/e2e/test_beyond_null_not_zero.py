"""Beyond the page — an empty query is not zero: load holds the model at maxReplicaCount, then the
engines' series vanish from Prometheus (their Service made to select no pod) while the load goes on.
KEDA's Prometheus scaler reads a result with no series as 0 unless the trigger says
ignoreNullValues "false" (docs/keda.md), so with the page's trigger the HPA scales a loaded model in
(upstream defect 11, a strict xfail); with ignoreNullValues "false" and the page's fallback block —
the recommendation — KEDA counts the empty result as an error and the fallback holds the replicas.

The page's configuration runs first: the defect's marker reads the live ScaledObject when its test
runs, before the recommendation's configuration is installed (docs/beyond.md)."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def as_published(keda_enabled: Stack) -> beyond.VanishedQueue:
    return beyond.vanished_queue(keda_enabled, "page")


@pytest.fixture(scope="module")
def recommended(keda_enabled: Stack) -> beyond.VanishedQueue:
    return beyond.vanished_queue(keda_enabled, "null-is-an-error")


def test_the_series_of_a_loaded_model_vanish(as_published: beyond.VanishedQueue) -> None:
    """The premise: the model at its maximum under load, then its trigger query matching no series."""
    assert_reached(as_published.not_run or as_published.vanished, "the page's configuration")


@pytest.mark.upstream_defect(11)
def test_a_vanished_queue_does_not_scale_the_model_in(as_published: beyond.VanishedQueue) -> None:
    run = as_published
    requires(run.not_run or run.vanished)
    assert_reached(run.held, "the replicas held", context=f"KEDA errors meanwhile: {run.keda_errors} (an empty "
                                                          "result read as 0 is no error)")


def test_with_ignore_null_values_false_the_series_of_a_loaded_model_vanish(recommended: beyond.VanishedQueue) -> None:
    """The same premise under the recommendation's configuration."""
    assert_reached(recommended.not_run or recommended.vanished, "the recommendation's configuration")


def test_with_ignore_null_values_false_the_fallback_holds_the_replicas(recommended: beyond.VanishedQueue) -> None:
    run = recommended
    requires(run.not_run or run.vanished)
    assert_reached(run.held, "the replicas held")


def test_with_ignore_null_values_false_keda_counts_the_empty_query_as_errors(
        recommended: beyond.VanishedQueue) -> None:
    """KEDA's own account: the empty result counted as errors of the ScaledObject (its operator's
    keda_scaled_object_errors_total, read before the break and after the hold)."""
    run = recommended
    requires(run.not_run or run.vanished)
    if run.keda_unread:
        pytest.skip(f"KEDA's operator metrics could not be read here: {run.keda_unread}")
    assert (run.keda_errors or 0) > 0, f"KEDA errors while the series were gone: {run.keda_errors}"


def test_with_ignore_null_values_false_the_fallback_becomes_active(recommended: beyond.VanishedQueue) -> None:
    run = recommended
    requires(run.not_run or run.vanished)
    assert_reached(run.fallback, "Fallback=True (the configuration has a fallback block)")
