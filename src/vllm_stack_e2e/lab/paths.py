"""Where one lab keeps its state, and the loopback addresses its local processes use.

One lab runs per machine at a time (the addresses below are fixed so that the in-cluster
names the tutorial uses can resolve to them).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..cache import lab_state_dir

DEFAULT_LAB = "vse-lab"

# Loopback addresses of the lab's local processes.
PROMETHEUS_ADDR = "127.0.90.1"
PROMETHEUS_PORT = 9090
KEDA_OPERATOR_ADDR = "127.0.91.1"
KEDA_ADAPTER_ADDR = "127.0.91.2"
KEDA_WEBHOOKS_ADDR = "127.0.91.3"
KEDA_ADAPTER_PORT = 6443
KEDA_WEBHOOKS_PORT = 9443
KEDA_GRPC_PORT = 9666
KEDA_METRICS_PORT = 8080  # the operator's Prometheus metrics (KEDA's chart: the same port)
KEDA_SCRAPE_JOB = "keda-operator"


def keda_scrape_job(interval: str = "5s") -> dict:
    """The lab Prometheus's job for KEDA's operator metrics — what KEDA's chart sets up with
    `prometheus.operator.serviceMonitor.enabled` on a cluster. No `namespace` target label: the
    series keep KEDA's own `namespace` (the ScaledObject's)."""
    return {"job_name": KEDA_SCRAPE_JOB, "scrape_interval": interval, "scrape_timeout": interval,
            "static_configs": [{"targets": [f"{KEDA_OPERATOR_ADDR}:{KEDA_METRICS_PORT}"],
                                "labels": {"service": "keda-operator"}}]}
# CoreDNS, inside KEDA's network namespace (its resolv.conf's nameserver).
DNS_ADDR = "127.0.92.53"

# KWOK hands out pod IPs from POD_CIDR; a pod's local process listens on the loopback
# address with the same last two octets (10.244.b.c -> 127.244.b.c).
POD_CIDR = "10.244.0.1/16"


def pod_loopback(pod_ip: str) -> str:
    """The loopback address where the local process for a pod with `pod_ip` listens."""
    ip = ipaddress.ip_address(pod_ip)
    if ip not in ipaddress.ip_network("10.244.0.0/16"):
        raise ValueError(f"pod IP {pod_ip} is outside the lab's pod CIDR {POD_CIDR}")
    _, _, b, c = pod_ip.split(".")
    return f"127.244.{b}.{c}"


def lab_name() -> str:
    return os.environ.get("LAB_NAME", DEFAULT_LAB)


@dataclass(frozen=True)
class LabPaths:
    """Every file and folder of one lab lives under `root`; lab-down removes `root`."""

    name: str

    @property
    def root(self) -> Path:
        return lab_state_dir() / self.name

    @property
    def kwok_workdir(self) -> Path:
        return self.root / "kwok"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def keda_resolv_conf(self) -> Path:
        """The /etc/resolv.conf of KEDA's processes (lab/dns.py)."""
        return self.root / "keda-resolv.conf"

    @property
    def keda_certs(self) -> Path:
        return self.root / "keda-certs"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "prometheus"

    @property
    def prometheus_targets(self) -> Path:
        return self.root / "prometheus-targets.json"

    @property
    def kwokctl_config(self) -> Path:
        return self.root / "kwokctl.yaml"

    @property
    def hpa_sync(self) -> Path:
        """The HPA sync period (seconds) kube-controller-manager was created with."""
        return self.root / "hpa-sync-seconds"

    @property
    def components(self) -> Path:
        """Markers of which optional components (observability, keda) are installed."""
        return self.root / "components"

    def pidfile(self, name: str) -> Path:
        return self.pids / f"{name}.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def ensure(self) -> None:
        for path in (self.root, self.logs, self.pids, self.components):
            path.mkdir(parents=True, exist_ok=True)
