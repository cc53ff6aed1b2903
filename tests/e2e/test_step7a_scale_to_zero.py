"""Step 7 — "Scale-to-Zero": minReplicaCount 0, maxReplicaCount 5, the queue trigger plus the
traffic keepalive `sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)`. Idle, the stack
goes to zero after the cooldown (KEDA owns 0↔1, the HPA keeps minReplicas 1); from zero the
first request gets the router's 503 and the same request then succeeds once KEDA has activated
an engine; then steady traffic keeps it up for two cooldowns.

The module fixture runs the scenario once and records it; each test judges one claim. A claim
that needs an earlier one (the cold start needs zero) is skipped, naming it, when that one did
not hold — and the earlier one's own test fails (docs/claims.md)."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import NotRun, assert_reached, requires
from vllm_stack_e2e.steps import step7_advanced as advanced

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scale_to_zero(keda_enabled: Stack) -> advanced.ScaleToZero:
    return advanced.scale_to_zero(keda_enabled)


def _answered(run: advanced.ScaleToZero) -> waits.Seen[int] | NotRun:
    """The premise of what follows the cold start: the request from zero answered 200."""
    return run.not_run.get("steady") or run.cold.answered  # type: ignore[union-attr]


def _restarted(run: advanced.ScaleToZero) -> waits.Seen[k.Obj | None] | waits.Seen[list[k.Obj]] | NotRun:
    """The premise of the restarted router's claims: the model back at zero and a new router Ready."""
    if "restart" in run.not_run or run.restart is None:
        return run.not_run.get("restart") or NotRun("the scenario ended before the router restart")
    restart = run.restart
    return restart.new_router if restart.at_zero.reached and restart.new_router is not None else restart.at_zero


def test_the_scaledobject_allows_zero_with_two_triggers(scale_to_zero: advanced.ScaleToZero) -> None:
    run = scale_to_zero
    got = (run.min_replica_count, run.max_replica_count, run.triggers)
    assert got == (0, 5, 2), f"ScaledObject (minReplicaCount, maxReplicaCount, triggers) = {got}, tutorial: (0, 5, 2)"


def test_idle_stack_scales_to_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    assert_reached(scale_to_zero.at_zero)


def test_scaledobject_is_inactive_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    requires(scale_to_zero.at_zero)
    assert_reached(scale_to_zero.inactive, "ScaledObject Active=False")


def test_hpa_keeps_min_one_while_keda_owns_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    requires(scale_to_zero.at_zero)
    assert scale_to_zero.hpa_min_replicas == 1, f"HPA minReplicas {scale_to_zero.hpa_min_replicas} at zero"


def test_first_request_from_zero_gets_503(scale_to_zero: advanced.ScaleToZero) -> None:
    requires(scale_to_zero.at_zero)
    cold = scale_to_zero.cold
    assert cold is not None and cold.first_status == 503, \
        f"first answer from zero: {cold and cold.first_status} {cold and cold.first_body!r}"


def test_request_succeeds_once_an_engine_is_up(scale_to_zero: advanced.ScaleToZero) -> None:
    """Within two polls + one HPA sync + one engine's readiness + the keepalive's rate window."""
    requires(scale_to_zero.at_zero)
    assert_reached(scale_to_zero.cold.answered if scale_to_zero.cold else None, "the cold start")


def test_steady_traffic_keeps_the_stack_up(scale_to_zero: advanced.ScaleToZero) -> None:
    requires(scale_to_zero.at_zero, _answered(scale_to_zero))
    assert_reached(scale_to_zero.steady, "replicas ≥ 1 under steady traffic")


def test_no_steady_request_fails(scale_to_zero: advanced.ScaleToZero) -> None:
    """The steady traffic itself: some requests completed, none failed."""
    requires(scale_to_zero.at_zero, _answered(scale_to_zero))
    traffic = scale_to_zero.traffic
    assert traffic is not None and traffic.completed > 0 and traffic.failed == 0, traffic and traffic.summary()


# ---- the router's model knowledge around zero (production-stack router discovery) ------------------
def test_router_lists_no_model_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    """The router lists the models of the engines it has in rotation: none at zero."""
    requires(scale_to_zero.at_zero)
    listed = scale_to_zero.listing_at_zero
    assert listed == [], f"the router's /v1/models at zero: {listed}"


def test_router_lists_the_model_only_once_an_engine_is_ready(scale_to_zero: advanced.ScaleToZero) -> None:
    """Read at every cold-start repeat, router first and pods second: the model never shows while
    no engine pod is Ready, and it does show once one is."""
    requires(scale_to_zero.at_zero)
    cold = scale_to_zero.cold
    assert cold is not None
    model = scale_to_zero.model
    early = cold.listed_before_ready(model)
    assert not early, f"the router listed {model} with no engine pod Ready at {len(early)} look(s): {early[:3]}"
    assert cold.first_listed(model) is not None, \
        f"the router never listed {model} during the cold start: {[(l.models, l.ready_engines) for l in cold.listings][-5:]}"


def test_the_router_restarts_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    """The premise of the restarted router's claims: back at zero, the router pod replaced by a new
    one that is Ready."""
    requires(scale_to_zero.at_zero, _answered(scale_to_zero))
    assert_reached(_restarted(scale_to_zero), "the router restart at zero")


def test_a_restarted_router_lists_no_model_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    requires(_restarted(scale_to_zero))
    restart = scale_to_zero.restart
    assert restart is not None and restart.listing == [], \
        f"the new router's /v1/models: {restart.listing if restart else None}"


def test_a_restarted_router_does_not_know_the_model_at_zero(scale_to_zero: advanced.ScaleToZero) -> None:
    """production-stack issue #1003: a router that starts while the model has no engine has never
    seen it, so it answers 404 "not found" — where the page promises a 503 from zero."""
    requires(_restarted(scale_to_zero))
    cold = scale_to_zero.restart.cold if scale_to_zero.restart else None
    assert cold is not None and cold.first_status == 404 and "not found" in cold.first_body, \
        f"first answer of the restarted router at zero: {cold and cold.first_status} {cold and cold.first_body!r}"


def test_a_request_to_a_restarted_router_still_wakes_the_model(scale_to_zero: advanced.ScaleToZero) -> None:
    """The router counts a request before it looks for an engine, so the keepalive trigger sees the
    404s too: KEDA activates, and the request succeeds once an engine is up (same budget as the
    page's cold start)."""
    requires(_restarted(scale_to_zero))
    cold = scale_to_zero.restart.cold if scale_to_zero.restart else None
    assert_reached(cold.answered if cold else None, "the restarted router's cold start")
