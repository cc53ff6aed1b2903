"""The lab: a kwokctl cluster (binary runtime) on locally built kube-apiserver,
kube-controller-manager, kube-scheduler, etcd and kwok, with simulated GPU nodes.

Optional parts are installed on top, in the tutorial's order, by their own modules:
observability (Prometheus), KEDA, and the data plane that plays the engines and router.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from .. import kube as k
from ..config import DEFAULT_HPA_SYNC_SECONDS
from ..errors import LabError
from . import build, manifests
from . import paths as p
from .processes import ManagedProcess, _pid_alive

Echo = Callable[[str], None]
GPU_NODES = int(os.environ.get("LAB_GPU_NODES", "3"))
GPUS_PER_NODE = int(os.environ.get("LAB_GPUS_PER_NODE", "2"))
# Control-plane components that elect a leader (a restart waits for their old leases to lapse).
LEADERS = ("kube-scheduler", "kube-controller-manager")
# kube-controller-manager's --horizontal-pod-autoscaler-sync-period on a lab created now. A cluster's
# default is 15 s; the lab syncs every 5 s, as the `fast` profile polls KEDA every 3 s, so a scaling
# claim's floor (a KEDA poll and an HPA sync) is seconds (docs/lab.md, "Control plane"). Create the
# lab with LAB_HPA_SYNC_SECONDS=15 to rehearse a GPU cluster's cadence exactly.
HPA_SYNC_SECONDS = int(os.environ.get("LAB_HPA_SYNC_SECONDS", "5"))


def _kwokctl_config() -> list[dict]:
    return [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration",
         "options": {"bindAddress": "127.0.0.1"}},
        # A partial KwokConfiguration is not defaulted by kwokctl: every option is spelled out.
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration",
         "options": {"nodeIP": "127.0.0.1", "cidr": p.POD_CIDR, "enableDebuggingHandlers": True,
                     "enableProfilingHandler": False, "enableContentionProfiling": False,
                     "podPlayStageParallelism": 4, "nodePlayStageParallelism": 4, "nodeLeaseParallelism": 4,
                     "podsOnNodeSyncParallelism": 1, "enablePodsOnNodeSyncListPager": True,
                     "enablePodsOnNodeSyncStreamWatch": False}},
    ]


class LabCluster:
    """The control plane and nodes of one lab."""

    def __init__(self, name: str | None = None, echo: Echo = print) -> None:
        self.name = name or p.lab_name()
        self.paths = p.LabPaths(self.name)
        self.echo = echo
        self._kube: k.Kube | None = None

    # ---- access -------------------------------------------------------------------
    @property
    def kube(self) -> k.Kube:
        if self._kube is None:
            if not self.paths.kubeconfig.exists():
                raise LabError(f"lab {self.name} is not up (no {self.paths.kubeconfig}) — run `make lab-up`")
            self._kube = k.Kube(self.paths.kubeconfig)
        return self._kube

    def _kwokctl(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        kwokctl = build.ensure("kwok")["kwokctl"]
        env = dict(os.environ, KWOK_WORKDIR=str(self.paths.kwok_workdir))
        proc = subprocess.run([str(kwokctl), *args, "--name", self.name], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:400]
            raise LabError(f"kwokctl {args[0]} {args[1] if len(args) > 1 else ''} failed (exit {proc.returncode}): {last}")
        return proc

    def kwok_pids(self) -> dict[str, int | None]:
        """PIDs of the control-plane processes kwokctl started (None when not running)."""
        pid_dir = self.paths.kwok_workdir / "clusters" / self.name / "pids"
        pids: dict[str, int | None] = {}
        for pidfile in sorted(pid_dir.glob("*.pid")) if pid_dir.exists() else []:
            try:
                pid = int(pidfile.read_text().strip())
            except ValueError:
                pid = 0
            pids[pidfile.stem] = pid if pid and _pid_alive(pid) else None
        return pids

    def control_plane_logs(self) -> Path:
        return self.paths.kwok_workdir / "clusters" / self.name / "logs"

    def exists(self) -> bool:
        return (self.paths.kwok_workdir / "clusters" / self.name / "kwok.yaml").exists()

    def stopped(self) -> bool:
        """The cluster exists on disk but not one of its control-plane processes runs."""
        return self.exists() and not any(self.kwok_pids().values())

    def healthy(self) -> bool:
        pids = self.kwok_pids()
        return bool(pids) and all(pids.values())

    # ---- lifecycle ------------------------------------------------------------------
    def up(self) -> None:
        """Create (or restart) the cluster, then its nodes, stages and RuntimeClass. Idempotent."""
        self.paths.ensure()
        if self.exists() and self.healthy():
            self.echo(f"lab {self.name}: control plane already running")
        elif self.exists():
            self.echo(f"lab {self.name}: restarting stopped control-plane components")
            restarted = datetime.datetime.now(datetime.timezone.utc)
            self._kwokctl("start", "cluster", "--wait", "2m")
            self._kube = None
            self._wait_for_leaders(restarted)
        else:
            bins = {**build.ensure("kubernetes"), **build.ensure("etcd"), **build.ensure("kwok")}
            # The data plane runs the monitoring subchart's operator pods with it (lab/monitoring.py).
            build.ensure("prometheus-operator", echo=self.echo)
            self.paths.kwokctl_config.write_text(yaml.safe_dump_all(_kwokctl_config()))
            started = time.monotonic()
            self._kwokctl(
                "--config", str(self.paths.kwokctl_config), "create", "cluster", "--runtime", "binary",
                "--kube-apiserver-binary", str(bins["kube-apiserver"]),
                "--kube-controller-manager-binary", str(bins["kube-controller-manager"]),
                "--kube-scheduler-binary", str(bins["kube-scheduler"]),
                "--etcd-binary", str(bins["etcd"]),
                "--kwok-controller-binary", str(bins["kwok"]),
                # kwokctl's binary runtime passes an empty --node-ip; nodes need a reachable one
                # for `kubectl logs` / `port-forward` to reach kwok's kubelet server.
                "--extra-args", "kwok-controller=node-ip=127.0.0.1",
                "--extra-args", f"kube-controller-manager=horizontal-pod-autoscaler-sync-period={HPA_SYNC_SECONDS}s",
                "--enable-crds", "Stage,PortForward,Logs",
                "--kubeconfig", str(self.paths.kubeconfig),
                "--wait", "2m",
            )
            self.paths.hpa_sync.write_text(f"{HPA_SYNC_SECONDS}\n")
            self.echo(f"lab {self.name}: control plane up in {time.monotonic() - started:.1f}s; HPAs sync every "
                      f"{HPA_SYNC_SECONDS}s")
        self._kube = None
        self.kube.apply_all(manifests.stages(self.name))
        nodes = [manifests.system_node(self.name)] + [
            manifests.gpu_node(self.name, i, GPUS_PER_NODE) for i in range(GPU_NODES)]
        for node in nodes:
            if self.kube.get("v1", "Node", node["metadata"]["name"]) is None:
                self.kube.apply(node)
        self.kube.apply(manifests.runtime_class(self.name))
        names = {n["metadata"]["name"] for n in nodes}
        self.kube.wait_for_list(
            "v1", "Node", None, f"{manifests.LAB_LABEL}={self.name}",
            lambda items: names <= {n["metadata"]["name"] for n in items if k.condition_is(n, "Ready")},
            budget=60, description=f"lab {self.name}: {len(names)} nodes Ready")

    def _wait_for_leaders(self, since: datetime.datetime, budget: float = 60) -> None:
        """After a restart the scheduler and controller-manager find their old instances'
        leases in etcd and wait for them to expire (15 s) before they schedule pods or run the
        HPA controller; wait until both have renewed their lease since `since`."""
        def renewed(lease: k.Obj | None) -> bool:
            stamp = ((lease or {}).get("spec") or {}).get("renewTime")
            return bool(stamp) and datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= since

        for component in LEADERS:
            self.kube.wait_for("coordination.k8s.io/v1", "Lease", component, "kube-system", renewed, budget,
                               f"lab {self.name}: restarted {component} holds its leader lease")

    def _stop_processes(self) -> None:
        """Stop every process the lab started, by its PID file."""
        for pidfile in sorted(self.paths.pids.glob("*.json")) if self.paths.pids.exists() else []:
            proc = ManagedProcess.from_pidfile(pidfile)
            if proc.alive():
                self.echo(f"stopping {proc.spec.name} (pid {proc.pid})")
            proc.stop()

    def stop(self) -> None:
        """Stop every process of the lab and keep its state (etcd data, markers), as a machine
        shutdown does; `up()` brings it back."""
        self._stop_processes()
        if self.exists():
            self._kwokctl("stop", "cluster")

    def down(self) -> None:
        """Stop every process the lab started (by PID file) and remove its state folder."""
        self._stop_processes()
        if self.exists():
            self._kwokctl("delete", "cluster", check=False)
        if self.paths.root.exists():
            shutil.rmtree(self.paths.root)

    def hpa_sync_seconds(self) -> float:
        """The HPA sync period this lab's kube-controller-manager was created with (a lab created
        before the setting existed ran Kubernetes' default, 15 s)."""
        try:
            return float(self.paths.hpa_sync.read_text().strip())
        except (OSError, ValueError):
            return DEFAULT_HPA_SYNC_SECONDS

    def gpu_capacity(self) -> int:
        return GPU_NODES * GPUS_PER_NODE

    def status(self) -> dict[str, object]:
        """Which processes of the lab are running, and where each logs."""
        rows: list[dict[str, object]] = []
        for comp, pid in self.kwok_pids().items():
            rows.append({"name": comp, "pid": pid, "running": pid is not None,
                         "log": str(self.control_plane_logs() / f"{comp}.log")})
        for pidfile in sorted(self.paths.pids.glob("*.json")) if self.paths.pids.exists() else []:
            proc = ManagedProcess.from_pidfile(pidfile)
            rows.append({"name": proc.spec.name, "pid": proc.pid, "running": proc.alive(),
                         "log": str(proc.spec.log)})
        installed = sorted(m.name for m in self.paths.components.glob("*")) if self.paths.components.exists() else []
        return {"lab": self.name, "exists": self.exists(), "state": str(self.paths.root),
                "kubeconfig": str(self.paths.kubeconfig), "components": installed, "processes": rows}

    def rss_bytes(self) -> int:
        """Resident memory of every process of the lab, control plane included."""
        from .processes import _rss

        total = sum(_rss(pid) for pid in self.kwok_pids().values() if pid)
        for pidfile in self.paths.pids.glob("*.json") if self.paths.pids.exists() else []:
            total += ManagedProcess.from_pidfile(pidfile).rss_bytes()
        return total

    def mark(self, component: str, installed: bool, info: dict[str, object] | None = None) -> None:
        marker = self.paths.components / component
        if installed:
            marker.write_text(json.dumps(info or {}))
        else:
            marker.unlink(missing_ok=True)

    def component_info(self, component: str) -> dict[str, object] | None:
        marker = self.paths.components / component
        return json.loads(marker.read_text()) if marker.exists() else None

    def installed(self, component: str) -> bool:
        return (self.paths.components / component).exists()
