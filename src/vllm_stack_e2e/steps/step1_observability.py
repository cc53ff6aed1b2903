"""Step 1: monitoring, as the run's edition says (`editions.Monitoring`). First edition: the
observability stack (observability/install.sh; Prometheus is svc/prometheus-operated in
monitoring). Current edition: the chart's kube-prometheus-stack subchart and ServiceMonitors,
switched on in the values — Prometheus (svc/<release>-kube-prometheus-stack-prometheus in the
release namespace) comes up with step 2's helm install and goes with step 8's
`kube-prometheus-stack.enabled: false` upgrade. Existing Prometheus (the note under the current
edition's step 1): a kube-prometheus-stack the cluster already runs as its own release — the run
installs one with the chart's defaults when there is none, and removes only the one it installed,
after step 8 (the page leaves the user's stack in place)."""

from __future__ import annotations

from .. import floors
from .. import kube as k
from ..checks import duration_seconds
from ..context import Stack
from ..editions import ExistingStack
from ..prom import Prometheus, Target
from .scenario import upgrade

ENGINE_METRIC = "vllm:num_requests_waiting"
MONITORING_CRD_GROUP = "monitoring.coreos.com"


#: The ledger's kind for an existing stack the run installed: removed after step 8, not by it.
EXISTING = "existing-prometheus"


def _ledger_name(stack: Stack) -> str:
    """How the run's ledger names what step 1 set up."""
    return stack.edition.monitoring.ledger_name


def comes_with_release(stack: Stack) -> bool:
    """Whether the edition's monitoring is part of the vLLM release (the subchart)."""
    return stack.edition.monitoring.comes_with_release


def install(stack: Stack) -> None:
    existing = stack.edition.monitoring.existing
    if existing is not None:
        _use_existing(stack, existing)
        stack.crds_before = stack.crd_names()  # the user's stack was there before the page: its CRDs too
        return
    if stack.crds_before is None:  # what this run's installs add, helm never deletes (reported in step 8)
        stack.crds_before = stack.crd_names()
    if comes_with_release(stack):
        stack.record("observability", _ledger_name(stack), stack.namespace)
        stack.echo("step 1: monitoring is the chart's kube-prometheus-stack subchart and ServiceMonitors (values "
                   "kube-prometheus-stack.enabled, *.serviceMonitor.enabled): it comes up with step 2's helm install")
        return
    if stack.backend.install_observability():
        stack.record("observability", _ledger_name(stack))
        stack.echo("step 1: observability installed by this run")
    else:
        stack.reused.add("observability")
        stack.echo("step 1: observability already installed; reusing it (it will be left in place)")
    note_version(stack)


def _use_existing(stack: Stack, existing: ExistingStack) -> None:
    """The cluster's own kube-prometheus-stack: installed with the chart's defaults when there is none."""
    if not stack.backend.has_prometheus_stack(existing):
        stack.record(EXISTING, _ledger_name(stack), existing.namespace)  # first: an interrupted install goes too
        stack.backend.install_prometheus_stack(existing)
        stack.echo(f"step 1: no kube-prometheus-stack on the cluster; installed release {existing.release} in "
                   f"{existing.namespace} with the chart's defaults, as the cluster's existing stack (removed after "
                   "step 8)")
    else:
        stack.reused.add("observability")
        stack.echo(f"step 1: the cluster's kube-prometheus-stack {existing.namespace}/{existing.release} is there; "
                   "using it as the page's note says (it will be left in place)")
    stack.echo("step 1: the chart's subchart stays off; its ServiceMonitors are enabled in the values (the page's "
               "note)")


def wait_ready(stack: Stack, budget: float = 120) -> None:
    """Prometheus answers through the page's port-forward. For the subchart, first its pod Ready:
    the operator creates the StatefulSet only once the release's Prometheus object exists."""
    namespace, service = stack.prometheus_service
    if not stack.edition.monitoring.by_script:
        stack.kube.wait_for_list(*k.POD, namespace, "app.kubernetes.io/name=prometheus",
                                 lambda pods: any(k.pod_ready(p) for p in pods), budget,
                                 f"a Prometheus pod behind svc/{service} Ready",
                                 hint="look at the operator's log (kubectl logs deploy/<fullname>-operator)")
    stack.prometheus().wait_ready(budget=60)
    note_version(stack)


def note_version(stack: Stack) -> None:
    version = stack.prometheus().version()
    stack.facts_cache["prometheus"] = version
    namespace, service = stack.prometheus_service
    stack.echo(f"Prometheus {version} behind svc/{service} -n {namespace}")


def uninstall(stack: Stack, wait: bool = True) -> None:
    """First edition: the uninstall script. Current edition: `kube-prometheus-stack.enabled: false`
    and upgrade, KEDA left off as step 8 left it."""
    stack.close()
    removal = stack.edition.monitoring.removal
    if removal.startswith("values:"):
        if stack.backend.helm.status(stack.config.release, namespace=stack.namespace) is not None:
            upgrade(stack, scenario="keda-disabled", extra=(str(stack.edition.values_file(removal[len("values:"):])),))
    elif removal == "script":
        stack.backend.uninstall_observability(wait)
    stack.forget("observability", _ledger_name(stack))


def remove_existing(stack: Stack, wait: bool = True) -> None:
    """The existing stack this run installed in step 1 (never one it found): after step 8."""
    existing = stack.edition.monitoring.existing
    if existing is None or not stack.created(EXISTING):
        return
    stack.close()
    stack.backend.uninstall_prometheus_stack(existing, wait)
    stack.forget(EXISTING, _ledger_name(stack))


def monitoring_crds_left(stack: Stack) -> list[str]:
    """The monitoring.coreos.com CRDs in the cluster that this run's installs added (all of them
    when the run did not see the cluster before): what helm leaves behind of a kube-prometheus-stack
    install — it never deletes a chart's crds/."""
    before = stack.crds_before or set()
    return sorted(name for name in stack.crd_names()
                  if name.endswith("." + MONITORING_CRD_GROUP) and name not in before)


def prometheus(stack: Stack) -> Prometheus:
    return stack.prometheus()


#: How often Prometheus scrapes a pod no ServiceMonitor of the release names: the chart's ServiceMonitor default.
DEFAULT_SCRAPE_SECONDS = 30.0


def monitors_lag(stack: Stack) -> float:
    """The reading lag the release's ServiceMonitors ask for (their longest interval + 1 s for the
    scrape), whether or not a Prometheus selects them; the chart's default when it has none (the
    first edition's scrape config is the observability stack's)."""
    intervals = [duration_seconds(endpoint.get("interval")) or DEFAULT_SCRAPE_SECONDS
                 for monitor in stack.kube.list(*k.SERVICEMONITOR, namespace=stack.namespace)
                 for endpoint in (monitor.get("spec") or {}).get("endpoints") or []]
    return max(intervals, default=DEFAULT_SCRAPE_SECONDS) + 1.0


def first_scrape_budget(stack: Stack) -> floors.Budget:
    """From step 2's engines Ready, with Prometheus answering (step 1's first claim), to Prometheus
    scraping the engine and the router: a ServiceMonitor change reaching it (floors.scrape_change)."""
    return floors.scrape_change(monitors_lag(stack))


def stack_targets(prom: Prometheus, namespace: str) -> list[Target]:
    """Prometheus's active targets that belong to this run's namespace."""
    return [t for t in prom.targets() if t.labels.get("namespace") == namespace]


def engine_series_query(namespace: str, metric: str = ENGINE_METRIC) -> str:
    return f'{metric}{{namespace="{namespace}"}}'
