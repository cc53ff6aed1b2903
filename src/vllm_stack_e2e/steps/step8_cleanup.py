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
from .step4_upgrade import upgrade

# The tutorial's replicaCount (values/tutorial-step2.yaml): what the Deployment returns to.
REPLICA_COUNT = 1
KEDA_CRDS = ("scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh",
             "clustertriggerauthentications.keda.sh")
OBSERVABILITY_RELEASES = ("kube-prom-stack", "prometheus-adapter")


@dataclass
class KedaDisabled:
    """What `keda.enabled: false` + upgrade did."""

    scaledobject_gone: waits.Seen[k.Obj | None]
    hpa_gone: waits.Seen[k.Obj | None]
    replicas_back: waits.Seen[k.Obj | None]  # spec.replicas back to the chart's replicaCount

    def expect(self) -> None:
        """For callers that need KEDA off before they go on (teardown, a scenario's reset)."""
        self.scaledobject_gone.expect()
        self.hpa_gone.expect()


def disable_keda(stack: Stack, budget: float = 120, extra: tuple[str, ...] = ()) -> KedaDisabled | None:
    """keda.enabled false + upgrade (with `extra` overlays: a scenario's harness fixes, which must
    hold while KEDA is off too); None when the release is already gone."""
    if stack.backend.helm.status(stack.config.release, namespace=stack.namespace) is None:
        return None
    cfg = stack.config
    upgrade(stack, scenario="keda-disabled", extra=extra)
    return KedaDisabled(
        stack.kube.reach(*k.SCALEDOBJECT, cfg.scaledobject, stack.namespace, k.GONE, budget,
                         f"ScaledObject {cfg.scaledobject} deleted"),
        stack.kube.reach(*k.HPA, cfg.hpa, stack.namespace, k.GONE, budget, f"HPA {cfg.hpa} deleted"),
        stack.kube.reach(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                         k.spec_replicas("==", REPLICA_COUNT), 60,
                         f"engine Deployment back to the chart's replicaCount {REPLICA_COUNT}"))


def keda_off(stack: Stack, budget: float = 120, extra: tuple[str, ...] = ()) -> None:
    """KEDA off and the Deployment at the chart's replicaCount, for the harness's own housekeeping (a
    scenario's reset, the session's teardown) — never for the page's step-8 claim, which calls
    `disable_keda` and is judged as it is. A stack its HPA left scaled out under load meets two races:
    - helm's server-side apply of `replicas: 1` conflicts with kube-controller-manager's ownership of
      `spec.replicas` (its scale subresource): the ScaledObject is deleted directly (KEDA deletes its
      HPA), the Deployment scaled to replicaCount — the chart's value, so the apply no longer
      conflicts — and the upgrade run again;
    - the HPA acts once more between helm's apply and KEDA's deletion of it (3 → 1 → 3, then no HPA;
      seen on the lab after KEDA's operator was restarted): the count is put back once the HPA is gone.
    Each step is printed. Nothing to do when the release is already gone."""
    from ..helm import HelmError

    cfg = stack.config
    try:
        disabled = disable_keda(stack, budget, extra=extra)
    except HelmError as exc:
        if "conflict" not in str(exc) or ".spec.replicas" not in str(exc):
            raise
        stack.echo(f"keda off: helm's apply of replicas {REPLICA_COUNT} conflicts with the HPA's scale of "
                   f"{cfg.engine_deployment}; deleting ScaledObject {cfg.scaledobject} and scaling to {REPLICA_COUNT} "
                   "first")
        stack.kube.delete(*k.SCALEDOBJECT, cfg.scaledobject, stack.namespace)
        stack.kube.reach(*k.HPA, cfg.hpa, stack.namespace, k.GONE, budget, f"HPA {cfg.hpa} deleted").expect()
        stack.kube.scale(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace, REPLICA_COUNT)
        disabled = disable_keda(stack, budget, extra=extra)
    if disabled is None:
        return
    disabled.expect()
    dep = k.Deployment(stack.kube.get(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace))
    if dep.exists and dep.spec_replicas != REPLICA_COUNT:
        stack.echo(f"keda off: Deployment {cfg.engine_deployment} left at {dep.spec_replicas} replicas after KEDA was "
                   f"disabled (its HPA acted after helm's apply); scaling it to {REPLICA_COUNT}")
        stack.kube.scale(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace, REPLICA_COUNT)


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
    run.left_behind = [f"{c.kind} {c.name}" for c in stack.ledger]
    labelled = stack.kube.list(*k.NAMESPACE, label_selector=f"{RUN_LABEL}={stack.config.run_id}")
    run.left_behind += [f"namespace {n['metadata']['name']}" for n in labelled]
    run.left_behind += [f"release {r['name']}" for r in stack.backend.helm.list_releases(all_namespaces=True)
                        if r.get("namespace") == stack.namespace]
    return run
