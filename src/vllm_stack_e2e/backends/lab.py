"""The `lab` backend: the local lab (real control plane, KEDA and Prometheus; simulated GPU
nodes and engines), as a pytest-kubernetes cluster provider."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from pytest_kubernetes.providers.base import AClusterManager

from ..lab import build
from ..lab import paths as lab_paths
from ..lab.lab import Lab
from .base import Backend, ChartRef, Echo

STANDIN_CHART = "vllm-stack-standin"


def standin_chart_path() -> Path:
    return Path(str(importlib.resources.files("vllm_stack_e2e") / "charts" / STANDIN_CHART))


class LabManager(AClusterManager):
    """pytest-kubernetes provider for the lab: create() brings the cluster and data plane up,
    delete() takes the whole lab down — only when this manager created it."""

    lab: Lab

    @classmethod
    def get_binary_name(cls) -> str:
        return "kwokctl"

    def _ensure_executable(self) -> None:  # kwokctl lives in the harness's cache, not on PATH
        build.ensure("kwok")

    def _on_create(self, cluster_options: Any, **kwargs: Any) -> None:
        self.lab.up(["cluster"])

    def _on_delete(self) -> None:
        self.lab.down()

    def ready(self, timeout: int = 20) -> bool:
        if not self.lab.cluster.exists() or not self.lab.cluster.healthy():
            return False
        try:
            return bool(self.lab.cluster.kube.server_version())
        except Exception:  # noqa: BLE001 — not ready is the answer, whatever the error
            return False

    def load_image(self, image: str) -> None:
        """The lab runs no images: pods are simulated."""

    @property
    def kubeconfig(self) -> Path | None:
        return self.lab.paths.kubeconfig


def lab_manager(lab: Lab) -> LabManager:
    cls = type("LabClusterManager", (LabManager,), {"lab": lab})
    manager = cls(cluster_name=lab.name)
    manager._cluster_options.kubeconfig_path = lab.paths.kubeconfig
    return manager


class LabBackend(Backend):
    name = "lab"

    def __init__(self, config: Any, echo: Echo = print) -> None:
        super().__init__(config, echo)
        self.lab = Lab(echo=echo)
        self.manager = lab_manager(self.lab)

    @property
    def kubeconfig(self) -> Path:
        return self.lab.paths.kubeconfig

    def start(self) -> None:
        self.lab.preflight()
        already = self.manager.ready()
        # The data plane must run even on a lab someone else brought up.
        self.manager.create(timeout=60)
        if already:
            self.lab.up(["cluster"])  # idempotent: restarts a dead data plane
        self.echo(f"lab {self.lab.name}: {'reused' if already else 'created'}; kubeconfig {self.kubeconfig}")

    @property
    def created_cluster(self) -> bool:
        return bool(self.manager._created)

    def stop(self) -> None:
        if self.config.keep:
            self.echo(f"--keep: lab {self.lab.name} left running (make lab-down removes it)")
            return
        self.manager.delete()

    def install_observability(self) -> bool:
        if self.lab.observability.installed():
            return False
        self.lab.observability.up()
        return True

    def uninstall_observability(self) -> None:
        self.lab.observability.down()

    def install_keda(self) -> bool:
        if self.lab.keda.installed():
            return False
        self.lab.keda.up()
        return True

    def uninstall_keda(self) -> None:
        self.lab.keda.down()

    def chart(self) -> ChartRef:
        if self.config.chart:
            # With network the lab can install the real chart (VLLM_CHART=vllm/vllm-stack).
            return ChartRef(ref=self.config.chart, name=self.config.chart.rsplit("/", 1)[-1],
                            version=self.config.chart_version or "latest", source=self.config.chart,
                            stand_in=False, repo=("vllm", "https://vllm-project.github.io/production-stack")
                            if self.config.chart.startswith("vllm/") else None)
        path = standin_chart_path()
        meta = self.helm.show_chart(path)
        return ChartRef(ref=str(path), name=str(meta.get("name")), version=str(meta.get("version")),
                        source=str(path), stand_in=True)

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
