"""The `current` backend: the cluster of the kubeconfig in KUBECONFIG (a GPU cluster), the real
charts (`vllm/vllm-stack` pinned, `kedacore/keda`, observability/ as-is).

The run works on a private copy of the kubeconfig (mode 0600, removed at the end), so nothing
it does can change or delete the user's file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .. import kube as k
from .. import tools
from ..config import REPO_ROOT
from ..errors import CommandError, ConfigError
from .base import Backend, ChartRef, Echo

VLLM_REPO = ("vllm", "https://vllm-project.github.io/production-stack")
KEDA_REPO = ("kedacore", "https://kedacore.github.io/charts")
VLLM_CHART = "vllm/vllm-stack"
VLLM_CHART_VERSION = "0.1.12"
KEDA_CHART_VERSION = os.environ.get("KEDA_CHART_VERSION", "2.20.2")
OBSERVABILITY = REPO_ROOT / "observability"


class CurrentBackend(Backend):
    name = "current"

    def __init__(self, config: Any, echo: Echo = print) -> None:
        super().__init__(config, echo)
        source = config.kubeconfig
        if source is None or not Path(source).is_file():
            raise ConfigError(f"kubeconfig {source} does not exist: set KUBECONFIG or use CLUSTER=lab")
        self._tmp = tempfile.mkdtemp(prefix="vse-kubeconfig-")
        self._kubeconfig = Path(self._tmp) / "kubeconfig"
        shutil.copyfile(source, self._kubeconfig)
        self._kubeconfig.chmod(0o600)

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def start(self) -> None:
        try:
            version = self.kube.server_version()
        except Exception as exc:  # noqa: BLE001 — any failure to reach it is the same news
            raise ConfigError(f"cluster of kubeconfig {self.config.kubeconfig} is unreachable "
                              f"({type(exc).__name__}) — check KUBECONFIG and the current context") from None
        self.echo(f"current cluster: Kubernetes {version}")

    def stop(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _script(self, name: str) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HELM=str(self.helm.binary),
                   KUBECTL=str(tools.kubectl()))
        proc = subprocess.run(["bash", str(OBSERVABILITY / name)], env=env, capture_output=True, text=True,
                              check=False, cwd=OBSERVABILITY)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["?"])[-1]
            raise CommandError(f"observability/{name} failed (exit {proc.returncode}): {last}")

    def install_observability(self) -> bool:
        """observability/install.sh, unless a Prometheus is already there: the script's release, or any
        `monitoring/prometheus-operated` (a cluster's own kube-prometheus-stack; the lab's)."""
        if self.helm.status("kube-prom-stack", namespace="monitoring") \
                or self.kube.get(*k.SERVICE, "prometheus-operated", "monitoring"):
            return False
        self._script("install.sh")
        return True

    def uninstall_observability(self, wait: bool = True) -> None:
        self._script("uninstall.sh")
        if wait:
            self.kube.wait_gone(*k.SERVICE, "prometheus-operated", "monitoring", budget=300)

    def install_keda(self) -> bool:
        if self.helm.status("keda", namespace="keda") or self.kube.get(*k.DEPLOYMENT, "keda-operator", "keda"):
            return False
        self.helm.repo_add(*KEDA_REPO)
        if self.kube.get(*k.NAMESPACE, "keda") is None:
            self.kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}})
        self.helm.install("keda", "kedacore/keda", namespace="keda", version=KEDA_CHART_VERSION, wait=True,
                          timeout=600)
        return True

    def uninstall_keda(self, wait: bool = True) -> None:
        self.helm.uninstall("keda", namespace="keda")
        if self.kube.delete(*k.NAMESPACE, "keda") and wait:
            self.kube.wait_gone(*k.NAMESPACE, "keda", None, budget=300)

    def chart(self) -> ChartRef:
        ref = self.config.chart or VLLM_CHART
        if Path(ref).exists():
            return self.local_chart(ref)
        version = self.config.chart_version or VLLM_CHART_VERSION
        return ChartRef(ref=ref, name=ref.rsplit("/", 1)[-1], version=version, source=VLLM_REPO[1],
                        stand_in=False, repo=VLLM_REPO if ref.startswith("vllm/") else None)

    def overlays(self) -> list[str]:
        return ["cpu-engine"] if os.environ.get("CPU_ENGINE") == "1" else []

    def facts(self) -> dict[str, str]:
        return {"backend": "current (kube context of KUBECONFIG; real charts and images)",
                "kubernetes": self.kube.server_version(), "keda": self.keda_version() or "not installed"}

