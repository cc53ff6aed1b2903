"""Step 2: `helm install vllm vllm/vllm-stack -f values.yaml`, then the engine pods Ready
(`kubectl wait --for=condition=ready pod -l model=llama3 --timeout=300s`)."""

from __future__ import annotations

from typing import Any

import httpx

from .. import kube as k
from .. import waits
from ..context import Stack

# The router's discovery: its pod watch sees the engine pod turn Ready, then asks the pod's
# /v1/models; a few seconds on a cluster. The router lists a model only after that.
ROUTER_DISCOVERY_SECONDS = 30.0


def engine_selector(stack: Stack) -> str:
    return f"model={stack.config.model}"


def router_selector() -> str:
    """The chart's router pod labels (the same in every chart version the harness knows)."""
    return "environment=router,release=router"


def install(stack: Stack) -> dict[str, Any]:
    """Create the run's namespace and install the release with the step-2 values."""
    if stack.kube.get(*k.NAMESPACE, stack.namespace) is None:
        stack.kube.create_namespace(stack.namespace_object())
        stack.record("namespace", stack.namespace)
    chart = stack.chart
    stack.backend.ensure_repo(chart)
    plan = stack.plan(2)
    if stack.crds_before is None:  # what the release's crds/ (and its subcharts') add, helm never deletes
        stack.crds_before = stack.crd_names()
    stack.echo(f"step 2: helm install {stack.config.release} {chart.ref} ({chart.describe()}) -n {stack.namespace}")
    stack.record("release", stack.config.release, stack.namespace)
    release = stack.backend.helm.install(
        stack.config.release, chart.ref, files=plan.files, sets=list(plan.sets), namespace=stack.namespace,
        wait=False, version=chart.version if chart.repo else None,
        timeout=stack.config.profile_settings.install_seconds)
    wait_engines_ready(stack, count=1)
    return release


def wait_engines_ready(stack: Stack, count: int, budget: float | None = None) -> list[k.Obj]:
    """The tutorial's `kubectl wait --for=condition=ready pod -l model=llama3`, as a watch."""
    budget = budget or stack.config.profile_settings.install_seconds
    return stack.kube.wait_for_list(
        *k.POD, stack.namespace, engine_selector(stack),
        lambda pods: sum(1 for pod in pods if k.pod_ready(pod)) >= count, budget,
        f"{count} engine pod(s) -l {engine_selector(stack)} Ready",
        hint="look at the engine pod's events and logs (image pull, GPU, model download)")


def uninstall(stack: Stack, wait: bool = True) -> None:
    stack.close()
    stack.backend.helm.uninstall(stack.config.release, namespace=stack.namespace)
    stack.forget("release", stack.config.release)
    if stack.kube.delete(*k.NAMESPACE, stack.namespace) and wait:
        stack.kube.wait_gone(*k.NAMESPACE, stack.namespace, None, budget=120)
    stack.forget("namespace", stack.namespace)


def router_models(stack: Stack) -> list[str]:
    """The ids the router's /v1/models lists (through the tutorial's port-forward)."""
    response = httpx.get(f"{stack.router_base()}/models", timeout=10)
    response.raise_for_status()
    return [m["id"] for m in response.json().get("data", [])]


def router_listing(stack: Stack) -> list[str] | None:
    """The router's /v1/models ids, or None while it does not answer (a port-forward being renewed)."""
    try:
        return router_models(stack)
    except httpx.HTTPError:
        return None


def wait_router_lists(stack: Stack, model: str, budget: float = ROUTER_DISCOVERY_SECONDS) -> waits.Seen[list[str] | None]:
    """The router's /v1/models until it lists `model` (its discovery follows the engine's readiness)."""
    return waits.until(waits.polling(lambda: router_listing(stack), 0.5), lambda ids: isinstance(ids, list) and model in ids,
                       budget, f"the router's /v1/models lists {model}", show=lambda ids: f"lists {ids}")


def model_url(stack: Stack) -> str:
    """The modelURL of the tutorial's model spec, from the values helm has for the release."""
    found = stack.backend.helm.get_values(stack.config.release, namespace=stack.namespace, all_values=True)
    for spec in (found.get("servingEngineSpec") or {}).get("modelSpec") or []:
        if spec.get("name") == stack.config.model:
            return str(spec.get("modelURL"))
    raise LookupError(f"model spec {stack.config.model!r} not in the release's values")
