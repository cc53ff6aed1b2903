"""Beyond the page — pausing autoscaling: `autoscaling.keda.sh/paused-replicas: "1"` and then
`autoscaling.keda.sh/paused: "true"` on the tutorial's ScaledObject hold the engine Deployment at
one replica while the queue stands above the threshold; removing them lets the scale-up happen
within step 6's budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def pause(keda_enabled: Stack) -> beyond.Pause:
    return beyond.pause(keda_enabled)


def _phase(run: beyond.Pause, annotation: str) -> beyond.PausePhase:
    found = [p for p in run.phases if p.annotation == annotation]
    if not found:
        pytest.skip(f"not run: {run.not_run.get('resume') or run.queued.explain()}")
    return found[0]


@pytest.mark.parametrize("annotation", [beyond.PAUSED_REPLICAS, beyond.PAUSED])
def test_the_scaledobject_reports_paused(pause: beyond.Pause, annotation: str) -> None:
    phase = _phase(pause, annotation)
    assert phase.paused.reached, phase.paused.explain()


@pytest.mark.parametrize("annotation", [beyond.PAUSED_REPLICAS, beyond.PAUSED])
def test_a_paused_scaledobject_holds_the_deployment_under_load(pause: beyond.Pause, annotation: str) -> None:
    phase = _phase(pause, annotation)
    assert phase.queue.peak is not None and phase.queue.peak > pause.threshold, \
        f"the premise: queue above {pause.threshold:g} while paused; peak seen {phase.queue.peak}"
    assert phase.held is not None and phase.held.held, phase.held.explain() if phase.held is not None else "not held"


def test_removing_the_pause_resumes_scaling(pause: beyond.Pause) -> None:
    if "resume" in pause.not_run:
        pytest.skip(f"not run: {pause.not_run['resume']}")
    assert pause.unpaused is not None and pause.unpaused.reached, \
        pause.unpaused.explain() if pause.unpaused is not None else "not watched"
    assert pause.resumed is not None and pause.resumed.reached, \
        pause.resumed.explain() if pause.resumed is not None else "not watched"


def test_keda_counts_no_errors_for_the_scaledobject(pause: beyond.Pause, no_new_keda_errors: Callable[..., None]) -> None:
    no_new_keda_errors(pause.errors)
