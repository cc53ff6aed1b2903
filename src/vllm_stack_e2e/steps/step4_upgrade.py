"""Step 4: the same values plus the tutorial's `keda:` block, then `helm upgrade`.

Scenarios (step 7) and cleanup (step 8) are upgrades too: the step-4 values plus an overlay."""

from __future__ import annotations

import time
from typing import Any

from .. import kube as k
from ..context import Stack


def upgrade(stack: Stack, scenario: str | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    chart = stack.chart
    stack.backend.ensure_repo(chart)
    plan = stack.plan(4, scenario=scenario, extra=extra)
    stack.echo(f"helm upgrade {stack.config.release} {chart.ref}" + (f" (scenario {scenario})" if scenario else ""))
    # The chart without its crds/ when the backend has one (backends.base.ChartRef.templates_ref):
    # an upgrade never touches CRDs, and helm would parse them on every call.
    release = stack.backend.helm.upgrade(
        stack.config.release, chart.upgrade_ref, files=plan.files, sets=list(plan.sets), namespace=stack.namespace,
        wait=False, version=chart.version if chart.repo else None,
        timeout=stack.config.profile_settings.install_seconds)
    stack.upgraded_at = time.time()
    return release


def wait_scaledobject_ready(stack: Stack, budget: float = 120) -> k.Obj:
    obj = stack.kube.wait_for(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace,
                              k.has_condition("Ready"), budget,
                              f"ScaledObject {stack.namespace}/{stack.config.scaledobject} Ready")
    assert obj is not None
    return obj


def wait_hpa(stack: Stack, budget: float = 120) -> k.Obj:
    obj = stack.kube.wait_for(*k.HPA, stack.config.hpa, stack.namespace, lambda o: o is not None, budget,
                              f"HPA {stack.namespace}/{stack.config.hpa} created by KEDA")
    assert obj is not None
    return obj
