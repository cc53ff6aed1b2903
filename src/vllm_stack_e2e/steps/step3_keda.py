"""Step 3: `kubectl create namespace keda; helm install keda kedacore/keda --namespace keda`,
then KEDA ready: its three Deployments Available, the external metrics APIService Available,
and `GET /apis/external.metrics.k8s.io/v1beta1` answering (docs/keda.md)."""

from __future__ import annotations

from .. import kube as k
from ..context import Stack

NAMESPACE = "keda"
DEPLOYMENTS = ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks")
APISERVICE = "v1beta1.external.metrics.k8s.io"
EXTERNAL_METRICS = "/apis/external.metrics.k8s.io/v1beta1"


def install(stack: Stack) -> None:
    if stack.backend.install_keda():
        stack.record("keda", "keda", NAMESPACE)
        stack.echo("step 3: KEDA installed by this run")
    else:
        stack.reused.add("keda")
        stack.echo("step 3: KEDA already installed; reusing it (it will be left in place)")
    wait_ready(stack)


def wait_ready(stack: Stack, budget: float = 180) -> None:
    for name in DEPLOYMENTS:
        stack.kube.wait_for(*k.DEPLOYMENT, name, NAMESPACE, k.deployment_available, budget,
                            f"Deployment {NAMESPACE}/{name} Available")
    stack.kube.wait_for(*k.APISERVICE, APISERVICE, None, k.has_condition("Available"), budget,
                        f"APIService {APISERVICE} Available",
                        hint="kube-apiserver cannot reach keda-operator-metrics-apiserver")
    stack.kube.wait_answers(EXTERNAL_METRICS, budget, "the external metrics API answers")


def uninstall(stack: Stack, wait: bool = True) -> None:
    stack.backend.uninstall_keda(wait)
    stack.forget("keda", "keda")


def external_metrics_resources(stack: Stack) -> list[str]:
    """What the external metrics API lists (it answers only when KEDA's metrics server works)."""
    listing = stack.kube.raw(EXTERNAL_METRICS)
    return [r.get("name") for r in listing.get("resources") or []]
