"""Beyond the page — KEDA disrupted mid-scale: with the queue above the threshold and before the
HPA has acted, one of KEDA's servers crashes — the operator in one run, the metrics API server in
another (lab: SIGKILL, and the lab restarts the process with a kubelet's back-off; a cluster: its
pods deleted, its Deployment makes new ones). KEDA must answer the HPA's metric query again and the
Deployment must still grow to 2 within step 6's budget plus a restart allowance (docs/beyond.md).
The report's timeline shows the gap: KEDA unread, the HPA's ScalingActive."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module", params=beyond.DISRUPTED)
def disruption(request: pytest.FixtureRequest, keda_enabled: Stack) -> beyond.Disruption:
    return beyond.keda_disruption(keda_enabled, request.param)


def test_the_queue_passes_the_threshold_before_the_crash(disruption: beyond.Disruption) -> None:
    """The premise: the load raised the queue above the threshold, so the crash falls mid-scale."""
    assert_reached(disruption.not_run or disruption.queued, f"{disruption.component}: the queue above the threshold")


def test_keda_answers_the_hpa_again_after_the_crash(disruption: beyond.Disruption) -> None:
    run = disruption
    requires(run.not_run or run.queued)
    assert_reached(run.answered, f"{run.component}: KEDA answers again")


def test_replicas_still_grow_within_the_budget(disruption: beyond.Disruption) -> None:
    run = disruption
    requires(run.not_run or run.queued)
    assert_reached(run.grew, f"{run.component}: replicas ≥ 2",
                   context=f"HPA ScalingActive after the crash: {' → '.join(run.gap) or 'not sampled'}; "
                           f"KEDA answered again after {run.recovery_seconds}s")
