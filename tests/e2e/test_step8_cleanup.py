"""Step 8 — "Cleanup": `keda.enabled: false` + upgrade removes the ScaledObject and its HPA and
gives the Deployment its replica count back; uninstalling KEDA removes its workloads, APIService
and CRDs; uninstalling observability removes its releases; then nothing this run created remains.

The teardown steps here are the session's own (its fixtures then have nothing left to do)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.config import RUN_LABEL
from vllm_stack_e2e.steps import keda as keda_step
from vllm_stack_e2e.steps import observability as obs_step
from vllm_stack_e2e.steps import upgrade
from vllm_stack_e2e.steps import vllm as vllm_step
from vllm_stack_e2e.steps.stack import Stack

pytestmark = pytest.mark.e2e
KEDA_CRDS = ("scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh",
             "clustertriggerauthentications.keda.sh")


def test_disabling_keda_removes_scaledobject_and_hpa(keda_enabled: Stack) -> None:
    stack = keda_enabled
    upgrade.disable_keda(stack)
    assert stack.kube.get(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace) is None
    assert stack.kube.get(*k.HPA, stack.config.hpa, stack.namespace) is None
    dep = stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                              lambda d: ((d or {}).get("spec") or {}).get("replicas") == 1, 60,
                              "engine Deployment back to the chart's replicaCount 1")
    assert dep is not None and dep["spec"]["replicas"] == 1


def test_uninstalling_keda_removes_its_workloads_and_apiservice(keda_enabled: Stack) -> None:
    stack = keda_enabled
    if not any(c.kind == "keda" for c in stack.ledger):
        pytest.skip("KEDA was installed before this run; a run removes only what it created")
    keda_step.uninstall(stack)
    left = [name for name in keda_step.DEPLOYMENTS if stack.kube.get(*k.DEPLOYMENT, name, keda_step.NAMESPACE)]
    assert not left, f"KEDA workloads left: {left}"
    assert stack.kube.get(*k.APISERVICE, keda_step.APISERVICE) is None
    crds_left = [c for c in KEDA_CRDS if stack.kube.get(*k.CRD, c)]
    stack.echo(f"step 8: after KEDA's uninstall, CRDs left behind: {crds_left or 'none'}")
    assert stack.kube.get(*k.NAMESPACE, keda_step.NAMESPACE) is None


def test_uninstalling_observability_removes_it(keda_enabled: Stack) -> None:
    stack = keda_enabled
    if not any(c.kind == "observability" for c in stack.ledger):
        pytest.skip("observability was installed before this run; a run removes only what it created")
    obs_step.uninstall(stack)
    assert stack.kube.get(*k.SERVICE, "prometheus-operated", "monitoring") is None
    releases = [r.get("name") for r in stack.backend.helm.list_releases(namespace="monitoring")]
    assert not {"kube-prom-stack", "prometheus-adapter"} & set(releases), releases


def test_nothing_the_run_created_remains(keda_enabled: Stack) -> None:
    stack = keda_enabled
    vllm_step.uninstall(stack)
    left: list[str] = [f"{c.kind} {c.name}" for c in stack.ledger]
    labelled = stack.kube.list(*k.NAMESPACE, label_selector=f"{RUN_LABEL}={stack.config.run_id}")
    left += [f"namespace {n['metadata']['name']}" for n in labelled]
    releases: list[Any] = stack.backend.helm.list_releases(all_namespaces=True)
    left += [f"release {r['name']}" for r in releases if r.get("namespace") == stack.namespace]
    assert not left, f"left behind by run {stack.config.run_id}: {left}"
