"""Step 4: the same values plus the tutorial's `keda:` block, then `helm upgrade`.

Scenarios (step 7) and cleanup (step 8) are upgrades too: the step-4 values plus an overlay."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..backends.current import ensure_repo
from .stack import Stack


def upgrade(stack: Stack, scenario: str | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    chart = stack.chart
    ensure_repo(stack.backend, chart)
    plan = stack.plan(4, scenario=scenario, extra=extra)
    stack.echo(f"helm upgrade {stack.config.release} {chart.ref}" + (f" (scenario {scenario})" if scenario else ""))
    return stack.backend.helm.upgrade(
        stack.config.release, chart.ref, files=plan.files, sets=list(plan.sets), namespace=stack.namespace,
        wait=False, version=chart.version if chart.repo else None,
        timeout=stack.config.profile_settings.install_seconds)


def wait_scaledobject_ready(stack: Stack, budget: float = 120) -> k.Obj:
    obj = stack.kube.wait_for(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace,
                              lambda o: k.condition_is(o, "Ready"), budget,
                              f"ScaledObject {stack.namespace}/{stack.config.scaledobject} Ready")
    assert obj is not None
    return obj


def wait_hpa(stack: Stack, budget: float = 120) -> k.Obj:
    obj = stack.kube.wait_for(*k.HPA, stack.config.hpa, stack.namespace, lambda o: o is not None, budget,
                              f"HPA {stack.namespace}/{stack.config.hpa} created by KEDA")
    assert obj is not None
    return obj


def disable_keda(stack: Stack, budget: float = 120) -> None:
    """Step 8's first move: keda.enabled false + upgrade; the ScaledObject and its HPA go away."""
    if stack.backend.helm.status(stack.config.release, namespace=stack.namespace) is None:
        return
    upgrade(stack, scenario="keda-disabled")
    stack.kube.wait_gone(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace, budget)
    stack.kube.wait_gone(*k.HPA, stack.config.hpa, stack.namespace, budget)


def reset(stack: Stack, scenario: str | None, extra: tuple[str, ...] = (), budget: float = 180) -> k.Obj:
    """Start a scenario from a known state: keda off (the Deployment back to replicaCount), then
    `helm upgrade` with the step-4 values + the scenario's overlay; returns the Ready ScaledObject."""
    disable_keda(stack, budget)
    stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                        lambda d: ((d or {}).get("spec") or {}).get("replicas") == 1 and k.ready_replicas(d) == 1,
                        budget, f"Deployment {stack.config.engine_deployment} back to 1 Ready replica")
    upgrade(stack, scenario=scenario, extra=extra)
    so = wait_scaledobject_ready(stack, budget)
    wait_hpa(stack, budget)
    return so
