"""Step 7 — "Fallback Configuration": with fallback {failureThreshold: 3, replicas: 2}, a metric
source that fails for real makes KEDA report Fallback=True and the Deployment settle at 2
replicas; when the source returns, Fallback clears and scaling follows the metric again.
Contrast: the same failure without fallback leaves the ScaledObject Ready=False (TriggerError).

Uses the harness fix values/fix-aggregated-query.yaml (reference.md §2 defect 3): at 2 replicas
the tutorial's per-pod query would itself fail and keep the fallback on after the source returns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import scaling, scenarios, upgrade
from vllm_stack_e2e.steps.stack import Stack

pytestmark = pytest.mark.e2e
EXTRA = ("fix-aggregated-query.yaml",)


def _replicas(d: dict[str, Any] | None) -> int:
    return int(((d or {}).get("spec") or {}).get("replicas") or 0)


@pytest.fixture(scope="module")
def fallback_run(keda_enabled: Stack) -> Iterator[dict[str, Any]]:
    stack, cfg = keda_enabled, keda_enabled.config
    so = upgrade.reset(stack, "fallback", extra=EXTRA)
    fallback = so["spec"]["fallback"]
    polling = float(so["spec"].get("pollingInterval", 30))
    sync = cfg.profile_settings.hpa_sync_seconds
    tl = scaling.timeline(stack, "step7c-fallback", threshold=5).start()
    record: dict[str, Any] = {"stack": stack, "fallback": fallback, "timeline": tl}
    try:
        with scenarios.broken_metric_source(stack, "fallback", EXTRA) as how:
            broke = time.time()
            tl.event(f"metric source broken ({how})")
            record["fallback_so"] = stack.kube.wait_for(
                *k.SCALEDOBJECT, cfg.scaledobject, stack.namespace, lambda o: k.condition_is(o, "Fallback"),
                (fallback["failureThreshold"] + 3) * polling + 60, "ScaledObject Fallback=True")
            record["settled"] = stack.kube.wait_for(
                *k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                lambda d: _replicas(d) == fallback["replicas"] and k.ready_replicas(d) == fallback["replicas"],
                2 * (polling + sync) + cfg.profile_settings.engine_ready_seconds,
                f"Deployment settles at the fallback's {fallback['replicas']} replicas")
            record["settle_seconds"] = time.time() - broke
            tl.event(f"settled at {fallback['replicas']} after {record['settle_seconds']:.0f}s")
            record["held"] = stack.kube.hold(
                *k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                lambda d: _replicas(d) == fallback["replicas"], 2 * (polling + sync),
                f"Deployment holds {fallback['replicas']} replicas while the metric source is down")
        tl.event("metric source restored")
        record["cleared_so"] = stack.kube.wait_for(
            *k.SCALEDOBJECT, cfg.scaledobject, stack.namespace,
            lambda o: k.condition_is(o, "Fallback", "False") and k.condition_is(o, "Ready"), 3 * polling + 90,
            "ScaledObject Fallback=False and Ready after the source returns")
        record["followed"] = stack.kube.wait_for(
            *k.DEPLOYMENT, cfg.engine_deployment, stack.namespace, lambda d: _replicas(d) == 1,
            120 + 2 * (polling + sync), "Deployment follows the metric (idle queue) back to 1 replica")
        stack.echo(f"step 7c: fallback settled at {fallback['replicas']} replicas "
                   f"{record['settle_seconds']:.0f}s after the metric source broke")
        yield record
    finally:
        tl.stop()
        tl.save(stack.config.run_dir / "timelines" / "step7c-fallback.json")


def test_fallback_condition_true_when_metrics_fail(fallback_run: dict[str, Any]) -> None:
    assert k.condition_is(fallback_run["fallback_so"], "Fallback"), k.summarize(fallback_run["fallback_so"])


def test_deployment_settles_at_fallback_replicas(fallback_run: dict[str, Any]) -> None:
    assert _replicas(fallback_run["settled"]) == fallback_run["fallback"]["replicas"] == 2
    assert all(_replicas(obj) == 2 for _, obj in fallback_run["held"])


def test_fallback_clears_when_metrics_return(fallback_run: dict[str, Any]) -> None:
    assert k.condition_is(fallback_run["cleared_so"], "Fallback", "False"), k.summarize(fallback_run["cleared_so"])


def test_scaling_follows_the_metric_again(fallback_run: dict[str, Any]) -> None:
    assert _replicas(fallback_run["followed"]) == 1


@pytest.fixture(scope="module")
def no_fallback_run(fallback_run: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The contrast: the tutorial's step-4 ScaledObject (no fallback), same failure. With the same
    aggregated query: a restarted Prometheus still serves the removed engines' last samples for
    five minutes (no staleness markers across a restart), which the per-pod query would count."""
    stack, cfg = fallback_run["stack"], fallback_run["stack"].config
    so = upgrade.reset(stack, None, extra=EXTRA)
    assert "fallback" not in so["spec"]
    polling = float(so["spec"].get("pollingInterval", 30))
    with scenarios.broken_metric_source(stack, None, EXTRA) as how:
        failed = stack.kube.wait_for(*k.SCALEDOBJECT, cfg.scaledobject, stack.namespace,
                                     lambda o: k.condition_is(o, "Ready", "False"), 3 * polling + 60,
                                     f"ScaledObject Ready=False with the metric source broken ({how})")
    recovered = stack.kube.wait_for(*k.SCALEDOBJECT, cfg.scaledobject, stack.namespace,
                                    lambda o: k.condition_is(o, "Ready"), 3 * polling + 90,
                                    "ScaledObject Ready again after the source returns")
    yield {"failed": failed, "recovered": recovered}


def test_without_fallback_the_scaledobject_reports_the_trigger_error(no_fallback_run: dict[str, Any]) -> None:
    ready = k.condition(no_fallback_run["failed"], "Ready") or {}
    assert ready.get("status") == "False" and ready.get("reason") == "TriggerError", ready
    assert not k.condition_is(no_fallback_run["failed"], "Fallback"), k.summarize(no_fallback_run["failed"])


def test_without_fallback_it_recovers_when_metrics_return(no_fallback_run: dict[str, Any]) -> None:
    assert k.condition_is(no_fallback_run["recovered"], "Ready"), k.summarize(no_fallback_run["recovered"])
