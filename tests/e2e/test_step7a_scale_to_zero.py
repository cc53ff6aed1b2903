"""Step 7 — "Scale-to-Zero": minReplicaCount 0, maxReplicaCount 5, the queue trigger plus the
traffic keepalive `sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)`. Idle, the stack
goes to zero after the cooldown (KEDA owns 0↔1, the HPA keeps minReplicas 1); from zero the
first request gets the router's 503 and the same request then succeeds once KEDA has activated
an engine; then steady traffic keeps it up for two cooldowns.

The module fixture runs the scenario once and records it; each test judges one claim. A claim
that needs an earlier one (the cold start needs zero) is skipped, with the reason, when that
one did not hold."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import step7_advanced as advanced

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scale_to_zero(keda_enabled: Stack) -> advanced.ScaleToZero:
    return advanced.scale_to_zero(keda_enabled)


def _needs(run: advanced.ScaleToZero, phase: str) -> None:
    if phase in run.not_run:
        pytest.skip(f"not run: {run.not_run[phase]} (see the test that claims it)")


def test_the_scaledobject_allows_zero_with_two_triggers(scale_to_zero: advanced.ScaleToZero) -> None:
    run = scale_to_zero
    got = (run.min_replica_count, run.max_replica_count, run.triggers)
    assert got == (0, 5, 2), f"ScaledObject (minReplicaCount, maxReplicaCount, triggers) = {got}, tutorial: (0, 5, 2)"


def test_idle_stack_scales_to_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    assert scale_to_zero.at_zero.reached, scale_to_zero.at_zero.explain()


def test_scaledobject_is_inactive_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    _needs(scale_to_zero, "inactive")
    assert scale_to_zero.inactive is not None and scale_to_zero.inactive.reached, scale_to_zero.inactive


def test_hpa_keeps_min_one_while_keda_owns_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    _needs(scale_to_zero, "inactive")
    assert scale_to_zero.hpa_min_replicas == 1, f"HPA minReplicas {scale_to_zero.hpa_min_replicas} at zero"


def test_first_request_from_zero_gets_503(scale_to_zero: advanced.ScaleToZero) -> None:
    _needs(scale_to_zero, "cold")
    cold = scale_to_zero.cold
    assert cold is not None and cold.first_status == 503, \
        f"first answer from zero: {cold and cold.first_status} {cold and cold.first_body!r}"


def test_request_succeeds_once_an_engine_is_up(scale_to_zero: advanced.ScaleToZero) -> None:
    """Within two polls + one HPA sync + one engine's readiness + the keepalive's rate window."""
    _needs(scale_to_zero, "cold")
    cold = scale_to_zero.cold
    assert cold is not None and cold.seconds_to_200 is not None, cold and cold.answered.explain()


def test_steady_traffic_keeps_the_stack_up(scale_to_zero: advanced.ScaleToZero) -> None:
    _needs(scale_to_zero, "steady")
    run = scale_to_zero
    assert run.steady is not None and run.steady.held, run.steady and run.steady.explain()
    traffic = run.traffic
    assert traffic is not None and traffic.completed > 0 and traffic.failed == 0, traffic and traffic.summary()
