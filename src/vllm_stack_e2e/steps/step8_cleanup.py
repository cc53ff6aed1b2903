"""Step 8: cleanup in the tutorial's order — `keda.enabled: false` + upgrade (the ScaledObject
and its HPA go away, the Deployment gets its replica count back), then KEDA's uninstall, then
observability's, then the release and the run's namespace. Each phase acts and records what it
saw; the tests judge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import kube as k
from .. import waits
from ..config import RUN_LABEL
from ..context import Stack
from ..observed import NotRun
from . import step1_observability, step2_vllm, step3_keda
# The page's first phase, `keda.enabled: false` + upgrade, is the kit's (the scenarios' reset uses it too).
from .scenario import KedaDisabled, disable_keda

KEDA_CRDS = ("scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh",
             "clustertriggerauthentications.keda.sh")
OBSERVABILITY_RELEASES = ("kube-prom-stack", "prometheus-adapter")


@dataclass
class KedaUninstalled:
    workloads_left: list[str]
    apiservice_left: bool
    crds_left: list[str]  # reported, not a failure: helm never deletes a chart's CRDs
    namespace_gone: waits.Seen[k.Obj | None]


@dataclass
class ObservabilityUninstalled:
    service_gone: waits.Seen[k.Obj | None]  # the Service the page port-forwards to
    releases_left: list[str]
    crds_left: list[str] = field(default_factory=list)  # reported, not a failure: helm never deletes crds/


@dataclass
class Cleanup:
    """Every phase of step 8, in the tutorial's order. A phase the run must not do (it removes only
    what it created) is in `not_run` with the reason."""

    keda_disabled: KedaDisabled | None
    keda: KedaUninstalled | None = None
    observability: ObservabilityUninstalled | None = None
    left_behind: list[str] = field(default_factory=list)  # of what the run created
    crds_left: list[str] = field(default_factory=list)  # CRDs the release's install added: reported, not a failure
    not_run: dict[str, NotRun] = field(default_factory=dict)


def cleanup(stack: Stack, budget: float = 120) -> Cleanup:
    """The tutorial's cleanup in its order. Each uninstall starts its namespace's deletion and goes
    on; the namespace controller removes them side by side, and the claims wait for all at the end."""
    run = Cleanup(disable_keda(stack, budget))
    keda = stack.created("keda")
    if keda:
        step3_keda.uninstall(stack, wait=False)
    else:
        run.not_run["keda"] = NotRun("KEDA was installed before this run; a run removes only what it created")
    observability = stack.created("observability")
    if observability:
        step1_observability.uninstall(stack, wait=False)
    elif not stack.edition.monitoring.removal:
        run.not_run["observability"] = NotRun("the edition's Prometheus is the cluster's own kube-prometheus-stack, which "
                                              "the page leaves in place (one this run installed for it goes after step 8)")
    else:
        run.not_run["observability"] = NotRun("observability was installed before this run; a run removes only what it created")
    step2_vllm.uninstall(stack, wait=False)
    # Now wait for what each phase claims is gone.
    if keda:
        gone = stack.kube.reach(*k.NAMESPACE, step3_keda.NAMESPACE, None, k.GONE, budget,
                                f"namespace {step3_keda.NAMESPACE} deleted")
        run.keda = KedaUninstalled(
            workloads_left=[name for name in step3_keda.DEPLOYMENTS
                            if stack.kube.get(*k.DEPLOYMENT, name, step3_keda.NAMESPACE)],
            apiservice_left=stack.kube.get(*k.APISERVICE, step3_keda.APISERVICE) is not None,
            crds_left=[c for c in KEDA_CRDS if stack.kube.get(*k.CRD, c)], namespace_gone=gone)
        stack.echo(f"step 8: after KEDA's uninstall, CRDs left behind: {run.keda.crds_left or 'none'}")
        if run.keda.crds_left:
            stack.left_behind["KEDA CRDs (helm never deletes crds/)"] = run.keda.crds_left
    if observability:
        prom_namespace, prom_service = stack.prometheus_service
        releases: list[Any] = ([] if step1_observability.comes_with_release(stack)
                               else stack.backend.helm.list_releases(namespace="monitoring"))
        run.observability = ObservabilityUninstalled(
            service_gone=stack.kube.reach(*k.SERVICE, prom_service, prom_namespace, k.GONE, budget,
                                          f"Service {prom_namespace}/{prom_service} deleted"),
            releases_left=sorted(set(OBSERVABILITY_RELEASES) & {str(r.get("name")) for r in releases}),
            crds_left=step1_observability.monitoring_crds_left(stack))
        stack.echo(f"step 8: after monitoring's removal, CRDs left behind: {run.observability.crds_left or 'none'}")
        if run.observability.crds_left:
            stack.left_behind["monitoring CRDs (helm never deletes crds/)"] = run.observability.crds_left
    stack.kube.reach(*k.NAMESPACE, stack.namespace, None, k.GONE, budget, f"the run's namespace {stack.namespace} deleted")
    if stack.crds_before is not None:
        run.crds_left = sorted(stack.crd_names() - stack.crds_before)
        named = {c for crds in stack.left_behind.values() for c in crds}
        release_crds = [c for c in run.crds_left if c not in named]
        if release_crds:
            stack.left_behind["the chart's CRDs (its crds/, which helm never deletes)"] = release_crds
        stack.echo(f"step 8: CRDs the release's install added and left behind: {run.crds_left or 'none'}")
    run.left_behind = [f"{c.kind} {c.name}" for c in stack.ledger if c.kind != step1_observability.EXISTING]
    labelled = stack.kube.list(*k.NAMESPACE, label_selector=f"{RUN_LABEL}={stack.config.run_id}")
    run.left_behind += [f"namespace {n['metadata']['name']}" for n in labelled]
    run.left_behind += [f"release {r['name']}" for r in stack.backend.helm.list_releases(all_namespaces=True)
                        if r.get("namespace") == stack.namespace]
    return run
