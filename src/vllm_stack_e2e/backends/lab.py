"""The `lab` backend: the local lab (real control plane, KEDA and Prometheus; simulated GPU
nodes and engines). A run creates the lab when none is up and removes it afterwards only if it
created it; a lab someone else brought up (`make lab-up`) is reused and left running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import kube as k
from ..editions import ExistingStack
from ..helm import STANDIN_CHART
from ..lab import build
from ..lab import paths as lab_paths
from ..lab.lab import Lab
from .base import Backend, ChartRef, Echo

#: Pairs the cluster's own kube-prometheus-stack with its own operator on the lab (prometheus_stack_values).
EXISTING_CONTROLLER_ID = "existing-prometheus"

class LabBackend(Backend):
    name = "lab"

    def __init__(self, config: Any, echo: Echo = print) -> None:
        super().__init__(config, echo)
        self.lab = Lab(echo=echo)
        self.created = False  # whether this run created the lab (and so removes it)

    @property
    def kubeconfig(self) -> Path:
        return self.lab.paths.kubeconfig

    def ready(self) -> bool:
        """The lab's cluster exists, is healthy and its API server answers."""
        if not self.lab.cluster.exists() or not self.lab.cluster.healthy():
            return False
        try:
            return bool(self.lab.cluster.kube.server_version())
        except Exception:  # noqa: BLE001 — not ready is the answer, whatever the error
            return False

    def start(self) -> None:
        self.lab.preflight()
        already = self.ready()
        # Idempotent: creates the lab, or on a lab someone else brought up restarts a dead data plane.
        self.lab.up(["cluster"])
        self.created = not already
        self.config.hpa_sync_seconds = self.lab.cluster.hpa_sync_seconds()
        self.echo(f"lab {self.lab.name}: {'reused' if already else 'created'}; kubeconfig {self.kubeconfig}")

    def stop(self) -> None:
        if self.config.keep:
            self.echo(f"--keep: lab {self.lab.name} left running (make lab-down removes it)")
            return
        if self.created:
            self.lab.down()

    def install_observability(self) -> bool:
        if self.lab.observability.installed():
            return False
        self.lab.observability.up()
        return True

    def uninstall_observability(self, wait: bool = True) -> None:
        self.lab.observability.down(wait)

    def prometheus_stack_chart(self, existing: ExistingStack) -> tuple[str, str | None]:
        """The stand-in's kube-prometheus-stack part, installed as a release of its own. Its CRDs (the
        prometheus-operator module's, 4 MB) are applied first, without helm: in the chart they would make
        helm's release record larger than a Secret may be."""
        self.ensure_monitoring_crds()
        return str(STANDIN_CHART / "charts" / "kube-prometheus-stack"), None

    def ensure_monitoring_crds(self, budget: float = 30) -> list[str]:
        """The monitoring.coreos.com CRDs the cluster lacks, applied and Established; their names."""
        created = []
        for crd_file in build.monitoring_crds():
            crd = build.load_crd(crd_file)
            if self.kube.get(*k.CRD, crd["metadata"]["name"]) is None:
                self.kube.apply(crd)
                created.append(crd["metadata"]["name"])
        for name in created:
            self.kube.wait_for(*k.CRD, name, None, k.has_condition("Established"), budget, f"CRD {name} Established")
        return created

    def prometheus_stack_values(self) -> dict[str, Any]:
        """The lab's runs share one control plane: each current-edition run's operator watches every
        namespace (the subchart's default), so the cluster's own stack is paired with its own operator
        by a controller id (`--controller-id` and the Prometheus object's annotation) and the two never
        reconcile each other's Prometheus. Selection — which ServiceMonitors — is the chart's default."""
        return {"prometheusOperator.extraArgs": [f"--controller-id={EXISTING_CONTROLLER_ID}"],
                "prometheus.annotations": {"operator.prometheus.io/controller-id": EXISTING_CONTROLLER_ID}}

    def install_keda(self) -> bool:
        if self.lab.keda.installed():
            return False
        self.lab.keda.up()
        return True

    def uninstall_keda(self, wait: bool = True) -> None:
        self.lab.keda.down(wait)

    def chart(self) -> ChartRef:
        if self.config.chart and Path(self.config.chart).exists():
            return self.local_chart(self.config.chart)
        if self.config.chart:
            # With network the lab can install the real chart (VLLM_CHART=vllm/vllm-stack).
            return ChartRef(ref=self.config.chart, name=self.config.chart.rsplit("/", 1)[-1],
                            version=self.config.chart_version or "latest", source=self.config.chart,
                            stand_in=False, repo=("vllm", "https://vllm-project.github.io/production-stack")
                            if self.config.chart.startswith("vllm/") else None)
        import dataclasses

        return dataclasses.replace(self.local_chart(self._standin_with_crds()), source=(
            f"{STANDIN_CHART} (+ crds/ of prometheus-operator {build.PROMETHEUS_OPERATOR_VERSION})"),
            templates_ref=str(STANDIN_CHART))

    def _standin_with_crds(self) -> Path:
        """The stand-in chart with its kube-prometheus-stack subchart's crds/ filled from the
        prometheus-operator module (as the real subchart ships them; not committed here). helm
        installs them with the release when the subchart is enabled and never deletes them.

        Runs side by side share it (`make test`): the copy is made once per content — its folder
        named after a hash of the chart's and the CRDs' files — in a temporary folder renamed into
        place, so a run never reads a copy another run is writing or removing."""
        import hashlib
        import shutil
        import tempfile

        sources = sorted(p for p in STANDIN_CHART.rglob("*") if p.is_file()) + list(build.monitoring_crds())
        digest = hashlib.sha256()
        for path in sources:
            digest.update(str(path.relative_to(STANDIN_CHART) if path.is_relative_to(STANDIN_CHART) else path.name)
                          .encode() + b"\0" + path.read_bytes())
        home = self.lab.paths.root / "charts" / digest.hexdigest()[:16]
        target = home / STANDIN_CHART.name  # the folder keeps the chart's name (helm lint checks it)
        if target.is_dir():
            return target
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="standin-", dir=home.parent))
        shutil.copytree(STANDIN_CHART, staging / STANDIN_CHART.name)
        crds = staging / STANDIN_CHART.name / "charts" / "kube-prometheus-stack" / "crds"
        crds.mkdir(parents=True, exist_ok=True)
        for crd in build.monitoring_crds():
            shutil.copyfile(crd, crds / crd.name)
        try:
            staging.rename(home)
        except OSError:  # another run put the same copy in place first
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def keda_operator_log(self, tail: int = 5000) -> str:
        """The lab runs KEDA's operator as a process: its log file's last `tail` lines."""
        from ..lab.keda import OPERATOR

        path = self.lab.paths.log(OPERATOR)
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    def keda_metrics(self) -> str:
        """The operator's metrics port, reached on the machine through the lab's relay into KEDA's
        network namespace (lab/keda.py)."""
        import httpx

        response = httpx.get(f"http://{lab_paths.KEDA_OPERATOR_ADDR}:{lab_paths.KEDA_METRICS_PORT}/metrics", timeout=3)
        response.raise_for_status()
        return response.text

    def disrupt_keda(self, component: str) -> str:
        """SIGKILL the process; the lab restarts it as a kubelet would (lab/hosts.py: back-off)."""
        name = self.KEDA_COMPONENTS[component]
        pid = self.lab.keda.crash(name)
        return f"SIGKILL to {name} (pid {pid}); the lab restarts it with a kubelet's back-off"

    def overlays(self) -> list[str]:
        return ["lab"]

    def stop_metric_source(self) -> bool:
        self.lab.observability.stop_prometheus()
        return True

    def start_metric_source(self) -> None:
        self.lab.observability.start_prometheus()

    def facts(self) -> dict[str, str]:
        facts = {"backend": "lab (local: real control plane, KEDA and Prometheus; simulated GPU nodes and vLLM engines)",
                 "kubernetes": self.kube.server_version(), "keda": build.KEDA_VERSION,
                 "kwok": build.KWOK_VERSION, "etcd": build.ETCD_VERSION,
                 "gpu_nodes": f"{self.lab.cluster.gpu_capacity()} simulated nvidia.com/gpu"}
        observability = self.lab.cluster.component_info("observability")
        if observability:
            facts["prometheus"] = str(observability.get("prometheus"))
        facts["prometheus_address"] = f"{lab_paths.PROMETHEUS_ADDR}:{lab_paths.PROMETHEUS_PORT}"
        return facts
