"""Beyond the page — a broken neighbour: a ScaledObject in another namespace whose Prometheus
trigger cannot reach its server (KEDA's operator serves every ScaledObject of the cluster from one
process) must not delay the tutorial's scale-up: replicas grow within step 6's budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def neighbour(keda_enabled: Stack) -> beyond.BrokenNeighbour:
    return beyond.broken_neighbour(keda_enabled)


def test_the_neighbour_is_really_broken(neighbour: beyond.BrokenNeighbour) -> None:
    assert_reached(neighbour.broken)


def test_the_queue_passes_the_threshold_beside_it(neighbour: beyond.BrokenNeighbour) -> None:
    """The load's premise: the run's queue above the threshold while the neighbour is broken."""
    up = neighbour.scale_up
    assert_reached(up.queue if up else None, "the scale-up beside the neighbour", context=up.load_line if up else "")


def test_replicas_grow_within_step_6s_budget_beside_it(neighbour: beyond.BrokenNeighbour) -> None:
    up = neighbour.scale_up
    requires(neighbour.broken, up.queue if up else None)
    assert_reached(up.grew, "replicas ≥ 2")


def test_keda_counts_no_errors_for_the_scaledobject(neighbour: beyond.BrokenNeighbour, no_new_keda_errors: Callable[..., None]) -> None:
    no_new_keda_errors(neighbour.errors)
