"""Step 7 — "Scale-to-Zero": minReplicaCount 0, maxReplicaCount 5, the queue trigger plus the
traffic keepalive `sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)`. Idle, the stack
goes to zero after the cooldown (KEDA owns 0↔1, the HPA keeps minReplicas 1); from zero the
first request gets the router's 503 and the same request then succeeds once KEDA has activated
an engine; then steady traffic keeps it up for two cooldowns. The tests run in that order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import scaling, scenarios, upgrade
from vllm_stack_e2e.steps import vllm as vllm_step
from vllm_stack_e2e.steps.stack import Stack

pytestmark = pytest.mark.e2e
RATE_WINDOW = 60  # the keepalive query's rate(...[1m]) keeps reading traffic this long after it stops


def _replicas(d: dict[str, Any] | None) -> int:
    return int(((d or {}).get("spec") or {}).get("replicas") or 0)


@pytest.fixture(scope="module")
def scale_to_zero(keda_enabled: Stack) -> Iterator[dict[str, Any]]:
    stack = keda_enabled
    so = upgrade.reset(stack, "scale-to-zero")
    spec = so["spec"]
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] == 5, spec
    assert len(spec["triggers"]) == 2, spec["triggers"]
    tl = scaling.timeline(stack, "step7a-scale-to-zero", threshold=5).start()
    try:
        yield {"stack": stack, "cooldown": float(spec.get("cooldownPeriod", 300)),
               "polling": float(spec.get("pollingInterval", 30)), "timeline": tl}
    finally:
        tl.stop()
        tl.save(stack.config.run_dir / "timelines" / "step7a-scale-to-zero.json")


def _idle_budget(ctx: dict[str, Any]) -> float:
    return RATE_WINDOW + ctx["cooldown"] + 3 * ctx["polling"] + 60


def test_idle_stack_scales_to_zero(scale_to_zero: dict[str, Any]) -> None:
    stack = scale_to_zero["stack"]
    dep = stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                              lambda d: _replicas(d) == 0, _idle_budget(scale_to_zero),
                              "engine Deployment at 0 replicas after the cooldown with no traffic")
    assert _replicas(dep) == 0
    so = stack.kube.wait_for(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace,
                             lambda o: k.condition_is(o, "Active", "False"), 60, "ScaledObject Active=False")
    assert k.condition_is(so, "Active", "False"), k.summarize(so)
    hpa = stack.kube.get(*k.HPA, stack.config.hpa, stack.namespace)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 1, k.summarize(hpa)


def test_first_request_from_zero_gets_503_then_succeeds(scale_to_zero: dict[str, Any]) -> None:
    stack = scale_to_zero["stack"]
    stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                        lambda d: _replicas(d) == 0 and k.ready_replicas(d) == 0, _idle_budget(scale_to_zero),
                        "engine Deployment at 0 replicas before the cold start")
    # Zero means no engine pod at all: the Deployment says 0 while its last pod still terminates.
    stack.kube.wait_for_list(*k.POD, stack.namespace, vllm_step.engine_selector(stack), lambda pods: not pods, 120,
                             "the last engine pod gone before the cold start")
    budget = scale_to_zero["polling"] * 2 + stack.config.profile_settings.hpa_sync_seconds \
        + stack.config.profile_settings.engine_ready_seconds + RATE_WINDOW
    scale_to_zero["timeline"].event("cold-start request")
    result = scenarios.cold_start(stack, vllm_step.model_url(stack), budget)
    scale_to_zero["timeline"].event(f"first 200 after {result.seconds_to_200:.1f}s")
    stack.echo(f"step 7a: cold start from zero: first answer {result.first_status}, first 200 after "
               f"{result.seconds_to_200:.1f}s ({result.attempts} attempts)")
    assert result.first_status == 503, result.first_body
    assert result.seconds_to_200 <= budget


def test_steady_traffic_keeps_the_stack_up(scale_to_zero: dict[str, Any]) -> None:
    stack, cooldown = scale_to_zero["stack"], scale_to_zero["cooldown"]
    window = 2 * cooldown
    # After the cold start an engine is up; traffic from now on must keep it up.
    stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                        lambda d: k.ready_replicas(d) >= 1, stack.config.profile_settings.engine_ready_seconds,
                        "an engine Ready before the steady traffic starts")
    traffic = scenarios.SteadyTraffic(stack, rate=0.5, duration=window + 10).start()
    scale_to_zero["timeline"].event("steady traffic starts")
    seen = stack.kube.hold(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                           lambda d: _replicas(d) >= 1, window,
                           f"engine replicas ≥ 1 under steady traffic for 2 cooldowns ({window:.0f}s)")
    result = traffic.join()
    scale_to_zero["timeline"].event("steady traffic ends")
    assert result is not None and result.completed > 0 and result.failed == 0, result and result.summary()
    assert all(_replicas(obj) >= 1 for _, obj in seen)
