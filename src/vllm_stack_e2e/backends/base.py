"""The backend interface: how to install X on this cluster and how to reach Y.

The tests never ask which backend they run on; they ask the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..editions import ExistingStack
from ..errors import CommandError
from ..helm import Helm, is_stand_in
from ..kube import NAMESPACE, Kube

Echo = Callable[[str], None]
PROMETHEUS_COMMUNITY_REPO = ("prometheus-community", "https://prometheus-community.github.io/helm-charts")
KWOK_NODE = "kwok.x-k8s.io/node"  # annotation of a node KWOK simulates ("fake")


@dataclass(frozen=True)
class ChartRef:
    """The vLLM stack chart a run installs."""

    ref: str  # what helm gets: a path or repo/name
    name: str
    version: str
    source: str  # where it comes from (path or repository URL)
    stand_in: bool
    repo: tuple[str, str] | None = None  # (name, url) to `helm repo add` first
    # What `helm upgrade` and `helm template` get, when not `ref`: the same chart without the CRDs of
    # its crds/ folders, which helm never applies on an upgrade and never renders in a template, but
    # loads and parses on every call (the monitoring subchart's are 4 MB: about a second each).
    templates_ref: str | None = None

    @property
    def upgrade_ref(self) -> str:
        return self.templates_ref or self.ref

    def describe(self) -> str:
        kind = "STAND-IN (not the real chart)" if self.stand_in else "real chart"
        return f"{self.name} {self.version} from {self.source} — {kind}"


class Backend(ABC):
    """A cluster the tutorial runs on."""

    name: str = ""

    def __init__(self, config: RunConfig, echo: Echo = print) -> None:
        self.config = config
        self.echo = echo
        self._kube: Kube | None = None
        self._helm: Helm | None = None
        self._kwok_nodes: dict[str, bool] = {}  # node name → KWOK simulates it

    # ---- reaching the cluster ---------------------------------------------------------
    @property
    @abstractmethod
    def kubeconfig(self) -> Path: ...

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.kubeconfig)
        return self._kube

    @property
    def helm(self) -> Helm:
        if self._helm is None:
            self._helm = Helm(kubeconfig=self.kubeconfig)
        return self._helm

    def ready(self) -> bool:
        """The cluster's API server answers."""
        try:
            return bool(self.kube.server_version())
        except Exception:  # noqa: BLE001 — not ready is the answer, whatever the error
            return False

    @abstractmethod
    def start(self) -> None:
        """Make the cluster reachable (the lab: create it if needed)."""

    @abstractmethod
    def stop(self) -> None:
        """Release the cluster (the lab: remove it if this run created it and --keep is off)."""

    # ---- the tutorial's installs --------------------------------------------------------
    @abstractmethod
    def install_observability(self) -> bool:
        """Step 1. Returns True when this run installed it (False: it was already there)."""

    @abstractmethod
    def uninstall_observability(self, wait: bool = True) -> None:
        """`wait` False: start the removal and return; the caller waits for what it claims is gone."""

    # ---- a kube-prometheus-stack of the cluster's own (edition existing-prometheus) ------------
    def prometheus_stack_chart(self, existing: ExistingStack) -> tuple[str, str | None]:
        """(chart reference, version) of the kube-prometheus-stack a cluster gets as its own."""
        self.helm.repo_add(*PROMETHEUS_COMMUNITY_REPO)
        return f"{PROMETHEUS_COMMUNITY_REPO[0]}/kube-prometheus-stack", existing.chart_version

    def prometheus_stack_values(self) -> dict[str, Any]:
        """Values the backend adds to the chart's defaults (none on a cluster)."""
        return {}

    def has_prometheus_stack(self, existing: ExistingStack) -> bool:
        return bool(self.helm.status(existing.release, namespace=existing.namespace))

    def install_prometheus_stack(self, existing: ExistingStack) -> None:
        """`helm install <release> kube-prometheus-stack -n <namespace> --create-namespace` with the
        chart's defaults: its Prometheus selects ServiceMonitors labelled with its own release."""
        chart, version = self.prometheus_stack_chart(existing)
        self.helm.install(existing.release, chart, namespace=existing.namespace, create_namespace=True,
                          version=version, sets=self.prometheus_stack_values() or None, wait=False, timeout=600)

    def uninstall_prometheus_stack(self, existing: ExistingStack, wait: bool = True) -> None:
        self.helm.uninstall(existing.release, namespace=existing.namespace, wait=wait)
        if self.kube.delete(*NAMESPACE, existing.namespace) and wait:
            self.kube.wait_gone(*NAMESPACE, existing.namespace, None, budget=300)

    @abstractmethod
    def install_keda(self) -> bool:
        """Step 3. Returns True when this run installed it (False: it was already there)."""

    @abstractmethod
    def uninstall_keda(self, wait: bool = True) -> None:
        """`wait` as for uninstall_observability."""

    @abstractmethod
    def chart(self) -> ChartRef:
        """The vLLM stack chart to install."""

    def local_chart(self, path: str | Path) -> ChartRef:
        """A chart on disk (a checkout, an unpacked or packaged chart), named by its Chart.yaml —
        never by its folder's name — and flagged when it is the lab's stand-in."""
        meta = self.helm.show_chart(path)
        return ChartRef(ref=str(path), name=str(meta.get("name")), version=str(meta.get("version")),
                        source=str(path), stand_in=is_stand_in(meta))

    def ensure_repo(self, chart: ChartRef) -> None:
        """`helm repo add` the chart's repository when it comes from one."""
        if chart.repo:
            try:
                self.helm.repo_add(*chart.repo)
            except CommandError as exc:
                raise CommandError(f"cannot add helm repo {chart.repo[0]} ({chart.repo[1]}): {exc}") from None

    def overlays(self) -> list[str]:
        """Names of the values overlays this backend needs (values/backend-<name>.yaml)."""
        return []

    # ---- failure injection ----------------------------------------------------------------
    def stop_metric_source(self) -> bool:
        """Make the Prometheus the triggers use unreachable for real; False if not possible here."""
        return False

    def start_metric_source(self) -> None:
        """Undo stop_metric_source."""

    KEDA_COMPONENTS = {"operator": "keda-operator", "metrics-apiserver": "keda-operator-metrics-apiserver"}

    def disrupt_keda(self, component: str) -> str:
        """Take one of KEDA's servers away as a failure would (`operator` or `metrics-apiserver`): on a
        cluster, delete its pods (label `app=<name>` in namespace `keda`, as KEDA's chart labels them);
        their Deployment brings new ones. Says what was done."""
        app = self.KEDA_COMPONENTS[component]
        pods = self.kube.list("v1", "Pod", namespace="keda", label_selector=f"app={app}")
        if not pods:
            raise RuntimeError(f"no pod app={app} in namespace keda to delete")
        for pod in pods:
            self.kube.delete("v1", "Pod", pod["metadata"]["name"], "keda")
        return f"deleted pod(s) {', '.join(p['metadata']['name'] for p in pods)}"

    # ---- evidence -----------------------------------------------------------------------------
    def keda_operator_log(self, tail: int = 5000) -> str:
        """The KEDA operator's recent log: its pods' in namespace `keda` (`app=keda-operator`)."""
        out = []
        for pod in self.kube.list("v1", "Pod", namespace="keda", label_selector="app=keda-operator"):
            out.append(self.kube.pod_logs("keda", pod["metadata"]["name"], tail=tail))
        return "\n".join(out)

    KEDA_METRICS_PORT = 8080  # the operator's --metrics-bind-address in KEDA's chart

    def keda_metrics(self) -> str:
        """The KEDA operator's Prometheus metrics as text, read through the API server's pod proxy
        (`pods/proxy` in the operator's namespace). Raises when it cannot be read, saying why."""
        pods = self.kube.list("v1", "Pod", namespace="keda", label_selector="app=keda-operator")
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if not running:
            raise RuntimeError("no Running pod app=keda-operator in namespace keda")
        pod = running[0]
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if self._kwok_node(node):
            # A KWOK node (the lab, read as a cluster): no kubelet runs its pods, so the API server's
            # proxy would dial the pod's IP, an address no process on this machine serves.
            raise RuntimeError(f"pod keda/{pod['metadata']['name']} is on KWOK node {node}: the "
                               f"API server's pod proxy would dial pod IP {(pod.get('status') or {}).get('podIP')}, "
                               "which nothing serves — not read")
        return self.kube.pod_proxy_get("keda", pod["metadata"]["name"], self.KEDA_METRICS_PORT, "metrics")

    def _kwok_node(self, name: str) -> bool:
        """Whether KWOK simulates the node (annotation kwok.x-k8s.io/node: fake); asked once per node,
        since the timeline reads KEDA's metrics every second."""
        if name not in self._kwok_nodes:
            node = self.kube.get("v1", "Node", name) or {}
            self._kwok_nodes[name] = ((node.get("metadata") or {}).get("annotations") or {}).get(KWOK_NODE) == "fake"
        return self._kwok_nodes[name]

    # ---- facts for reports ------------------------------------------------------------------
    @abstractmethod
    def facts(self) -> dict[str, str]:
        """Versions and names for the run header and the report."""

    def keda_version(self) -> str | None:
        """The KEDA version running in the cluster, read from its operator Deployment."""
        dep = self.kube.get("apps/v1", "Deployment", "keda-operator", "keda")
        if not dep:
            return None
        labels = dep["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/version"):
            return str(labels["app.kubernetes.io/version"])
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return image.rsplit(":", 1)[-1] if ":" in image else None
