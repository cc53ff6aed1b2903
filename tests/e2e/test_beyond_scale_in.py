"""Beyond the page — scale-in under traffic: load takes the model to maxReplicaCount, then traffic
drops to a trickle of long streamed requests while the HPA scales in. The ReplicaSet deletes engine
pods whatever they are serving; the router stops sending them new requests at once, and the kubelet
sends SIGTERM, waits the pod's grace period, then SIGKILL. The claim is the user's: no answer in
flight is lost. On the page's stack it is — the chart passes vLLM no --shutdown-timeout (upstream
defect 10; FIX_DEFECTS=10 applies the harness's fix). Each lost answer is named with its cause
(docs/termination.md, docs/beyond.md)."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def scale_in(keda_enabled: Stack) -> beyond.ScaleIn:
    return beyond.scale_in_under_traffic(keda_enabled)


def test_the_model_scales_in_under_the_trickle(scale_in: beyond.ScaleIn) -> None:
    """The premise: the HPA took the model to its maximum, and scaled it in to its minimum while the
    trickle ran, the deleted pods gone."""
    assert_reached(scale_in.not_run or scale_in.scaled_in, "the scale-in")


@pytest.mark.upstream_defect(10)
def test_no_answer_in_flight_is_cut_on_scale_in(scale_in: beyond.ScaleIn) -> None:
    requires(scale_in.not_run or scale_in.scaled_in)
    assert scale_in.trickle is not None and scale_in.trickle.records and not scale_in.lost, scale_in.explain()
