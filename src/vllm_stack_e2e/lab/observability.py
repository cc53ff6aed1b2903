"""Observability on the lab: a real Prometheus as a local process, known in the cluster as
Service `monitoring/prometheus-operated` port 9090 (docs/observability.md), scraping the data
plane's targets from the file the data plane writes (file_sd), selected the way the
observability install's ServiceMonitor selects Services.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import kube as k
from .. import tools
from . import build, manifests
from . import paths as p
from .cluster import LabCluster
from .processes import ManagedProcess
from .prometheus import LocalPrometheus

NAMESPACE = "monitoring"
SERVICE = "prometheus-operated"
FACE = "prometheus"
SCRAPE_INTERVAL = os.environ.get("LAB_SCRAPE_INTERVAL", "5s")


@dataclass
class LabPrometheus(LocalPrometheus):
    """LocalPrometheus whose targets come from the data plane's file_sd file."""

    targets_file: Path | None = None
    pid_path: Path | None = None

    @property
    def pidfile(self) -> Path:  # type: ignore[override]
        return self.pid_path or super().pidfile

    def render_config(self) -> str:
        config = yaml.safe_load(super().render_config())
        config["scrape_configs"] = [{
            "job_name": "vllm-stack",
            "scrape_interval": self.scrape_interval,
            "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}],
        }, p.keda_scrape_job()]
        return yaml.safe_dump(config, sort_keys=False)


def prometheus_binary() -> Path:
    """3.x built from its module (what kube-prometheus-stack ships); LAB_PROMETHEUS=2 picks Debian's 2.x."""
    return tools.prometheus2() if os.environ.get("LAB_PROMETHEUS") == "2" else tools.prometheus3()


class LabObservability:
    """Install / uninstall the lab's Prometheus."""

    def __init__(self, cluster: LabCluster) -> None:
        self.cluster = cluster
        self.paths = cluster.paths
        self.echo = cluster.echo

    def prometheus(self, binary: Path | None = None) -> LabPrometheus:
        return LabPrometheus(binary=binary or Path("prometheus"), data_dir=self.paths.prometheus_data,
                             listen=f"{p.PROMETHEUS_ADDR}:{p.PROMETHEUS_PORT}", scrape_interval=SCRAPE_INTERVAL,
                             name="prometheus", targets_file=self.paths.prometheus_targets,
                             pid_path=self.paths.pidfile("prometheus"))

    def installed(self) -> bool:
        return self.cluster.installed("observability")

    def running(self) -> bool:
        """The Prometheus process this lab started is alive."""
        pidfile = self.paths.pidfile("prometheus")
        return pidfile.exists() and ManagedProcess.from_pidfile(pidfile).alive()

    def up(self) -> str:
        """Start Prometheus and create its in-cluster face; returns its version."""
        started = time.monotonic()
        binary = prometheus_binary()
        if not self.paths.prometheus_targets.exists():
            self.paths.prometheus_targets.write_text("[]")
        prom = self.prometheus(binary)
        if not self.running():
            prom.start()
        version = tools.prometheus_version(binary)
        lab = self.cluster.name
        labels = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "lab",
                  "app.kubernetes.io/version": version}
        self.cluster.kube.wait_not_terminating(NAMESPACE)
        self.cluster.kube.apply_all([
            manifests.namespace(lab, NAMESPACE),
            manifests.service(lab, NAMESPACE, SERVICE, [("web", p.PROMETHEUS_PORT, p.PROMETHEUS_PORT)],
                              selector={manifests.PROCESS_LABEL: FACE}, labels={"operated-prometheus": "true"}),
            manifests.process_face(lab, NAMESPACE, FACE, f"quay.io/prometheus/prometheus:v{version}", labels,
                                   [p.PROMETHEUS_PORT]),
        ])
        self.cluster.kube.wait_for(*k.DEPLOYMENT, FACE, NAMESPACE, k.deployment_available, 30,
                                   f"Deployment {NAMESPACE}/{FACE} Available")
        self.cluster.mark("observability", True, {"prometheus": version, "binary": str(binary)})
        self.echo(f"Prometheus {version} up in {time.monotonic() - started:.1f}s on "
                  f"{p.PROMETHEUS_ADDR}:{p.PROMETHEUS_PORT} (svc {NAMESPACE}/{SERVICE})")
        return version

    def stop_prometheus(self) -> None:
        """Stop the Prometheus process only (the fallback scenario's broken metric source)."""
        if self.paths.pidfile("prometheus").exists():
            ManagedProcess.from_pidfile(self.paths.pidfile("prometheus")).stop()

    def start_prometheus(self) -> None:
        self.prometheus(prometheus_binary()).start()

    def down(self, wait: bool = True) -> None:
        """Uninstall: stop Prometheus and remove its data, as an uninstall of the observability
        stack does (a restarted Prometheus would otherwise serve the old engines' last samples,
        unmarked as stale, for five minutes). `wait` as for LabKeda.down."""
        self.stop_prometheus()
        shutil.rmtree(self.paths.prometheus_data, ignore_errors=True)
        kube = self.cluster.kube
        if kube.delete(*k.NAMESPACE, NAMESPACE) and wait:
            kube.wait_gone(*k.NAMESPACE, NAMESPACE, None, budget=120)
        self.cluster.mark("observability", False)


def built() -> bool:
    return build.is_built("prometheus") or os.environ.get("LAB_PROMETHEUS") == "2"
