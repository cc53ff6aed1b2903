"""Beyond the page — KEDA disrupted mid-scale: with the queue above the threshold and before the
HPA has acted, one of KEDA's servers crashes — the operator in one run, the metrics API server in
another (lab: SIGKILL, and the lab restarts the process with a kubelet's back-off; a cluster: its
pods deleted, its Deployment makes new ones). KEDA must answer the HPA's metric query again and the
Deployment must still grow to 2 within step 6's budget plus a restart allowance (docs/beyond.md).
The report's timeline shows the gap: KEDA unread, the HPA's ScalingActive."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module", params=beyond.DISRUPTED)
def disruption(request: pytest.FixtureRequest, keda_enabled: Stack) -> beyond.Disruption:
    return beyond.keda_disruption(keda_enabled, request.param)


def _ran(run: beyond.Disruption) -> beyond.Disruption:
    if run.not_run:
        pytest.fail(f"{run.component}: {run.not_run}")
    return run


def test_keda_answers_the_hpa_again_after_the_crash(disruption: beyond.Disruption) -> None:
    run = _ran(disruption)
    assert run.answered is not None and run.answered.reached, \
        run.answered.explain() if run.answered is not None else "no crash"


def test_replicas_still_grow_within_the_budget(disruption: beyond.Disruption) -> None:
    run = _ran(disruption)
    assert run.grew is not None and run.grew.reached, (
        f"{run.grew.explain() if run.grew is not None else 'not watched'}; HPA ScalingActive after the crash: "
        f"{' → '.join(run.gap) or 'not sampled'}; KEDA answered again after {run.recovery_seconds}s")
