"""Beyond the page — pausing autoscaling: `autoscaling.keda.sh/paused-replicas: "1"` and then
`autoscaling.keda.sh/paused: "true"` on the tutorial's ScaledObject hold the engine Deployment at
one replica while the queue stands above the threshold; removing them lets the scale-up happen
within step 6's budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import NotRun, assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def pause(keda_enabled: Stack) -> beyond.Pause:
    return beyond.pause(keda_enabled)


def _queue_above(run: beyond.Pause, annotation: str) -> waits.Seen[float | None] | NotRun:
    """The premise of a paused phase as observed: the queue passed the threshold before the pause
    held, and stood above it while `annotation` held the Deployment."""
    if not run.queued.reached:
        return run.queued
    phase = next((p for p in run.phases if p.annotation == annotation), None)
    if phase is None:
        return NotRun(f"the scenario ended before the {annotation} phase")
    if phase.queue.peak is None or phase.queue.peak <= run.threshold:
        return NotRun(f"the queue above {run.threshold:g} while paused with {annotation}: peak seen "
                      f"{phase.queue.peak}")
    return run.queued


def _paused(run: beyond.Pause, annotation: str) -> beyond.PausePhase:
    return next(p for p in run.phases if p.annotation == annotation)


def test_the_queue_passes_the_threshold_under_the_load(pause: beyond.Pause) -> None:
    """The scenario's premise: the load raised the queue above the threshold with the pause set."""
    assert_reached(pause.queued)


@pytest.mark.parametrize("annotation", [beyond.PAUSED_REPLICAS, beyond.PAUSED])
def test_the_queue_stands_above_the_threshold_while_paused(pause: beyond.Pause, annotation: str) -> None:
    """Each phase's premise: the queue stayed above the threshold while the annotation held."""
    requires(pause.queued)
    assert_reached(_queue_above(pause, annotation))


@pytest.mark.parametrize("annotation", [beyond.PAUSED_REPLICAS, beyond.PAUSED])
def test_the_scaledobject_reports_paused(pause: beyond.Pause, annotation: str) -> None:
    requires(pause.queued)
    assert_reached(_paused(pause, annotation).paused)


@pytest.mark.parametrize("annotation", [beyond.PAUSED_REPLICAS, beyond.PAUSED])
def test_a_paused_scaledobject_holds_the_deployment_under_load(pause: beyond.Pause, annotation: str) -> None:
    requires(_queue_above(pause, annotation))
    assert_reached(_paused(pause, annotation).held, f"replicas held at 1 with {annotation}")


def test_removing_the_pause_clears_the_paused_condition(pause: beyond.Pause) -> None:
    """The resume's premise: with the annotations gone, the ScaledObject reports Paused=False."""
    requires(pause.queued)
    assert_reached(pause.unpaused, "Paused=False once the annotations are gone")


def test_removing_the_pause_resumes_scaling(pause: beyond.Pause) -> None:
    requires(pause.queued, pause.unpaused)
    assert_reached(pause.resumed, "the scale-up after the pause")


def test_keda_counts_no_errors_for_the_scaledobject(pause: beyond.Pause, no_new_keda_errors: Callable[..., None]) -> None:
    no_new_keda_errors(pause.errors)
