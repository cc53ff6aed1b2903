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
    assert run.steady is not None and run.steady.held, \
        run.steady.explain() if run.steady is not None else "not observed"
    traffic = run.traffic
    assert traffic is not None and traffic.completed > 0 and traffic.failed == 0, traffic and traffic.summary()


# ---- the router's model knowledge around zero (production-stack router discovery) ------------------
def test_router_lists_no_model_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    """The router lists the models of the engines it has in rotation: none at zero."""
    _needs(scale_to_zero, "cold")
    listed = scale_to_zero.listing_at_zero
    assert listed == [], f"the router's /v1/models at zero: {listed}"


def test_router_lists_the_model_only_once_an_engine_is_ready(scale_to_zero: advanced.ScaleToZero) -> None:
    """Read at every cold-start repeat, router first and pods second: the model never shows while
    no engine pod is Ready, and it does show once one is."""
    _needs(scale_to_zero, "cold")
    cold = scale_to_zero.cold
    assert cold is not None
    model = scale_to_zero.model
    early = cold.listed_before_ready(model)
    assert not early, f"the router listed {model} with no engine pod Ready at {len(early)} look(s): {early[:3]}"
    assert cold.first_listed(model) is not None, \
        f"the router never listed {model} during the cold start: {[(l.models, l.ready_engines) for l in cold.listings][-5:]}"


def test_a_restarted_router_does_not_know_the_model_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    """production-stack issue #1003: a router that starts while the model has no engine has never
    seen it, so it answers 404 "not found" — where the page promises a 503 from zero."""
    _needs(scale_to_zero, "restart")
    restart = scale_to_zero.restart
    assert restart is not None and restart.new_router is not None and restart.new_router.reached, \
        restart and (restart.new_router.explain() if restart.new_router is not None else restart.at_zero.explain())
    cold = restart.cold
    assert cold is not None and restart.listing == [], f"the new router's /v1/models: {restart.listing}"
    assert cold.first_status == 404 and "not found" in cold.first_body, \
        f"first answer of the restarted router at zero: {cold.first_status} {cold.first_body!r}"


def test_a_request_to_a_restarted_router_still_wakes_the_model(scale_to_zero: advanced.ScaleToZero) -> None:
    """The router counts a request before it looks for an engine, so the keepalive trigger sees the
    404s too: KEDA activates, and the request succeeds once an engine is up (same budget as the
    page's cold start)."""
    _needs(scale_to_zero, "restart")
    restart = scale_to_zero.restart
    cold = restart.cold if restart else None
    assert cold is not None, restart and restart.at_zero.explain()
    assert cold.seconds_to_200 is not None, cold.answered.explain()
