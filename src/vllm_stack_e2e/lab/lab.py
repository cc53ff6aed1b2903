"""The lab as one thing: cluster + data plane, then observability and KEDA on top.

`Lab.up()` with every component is what `make lab-up` does; the e2e backend brings up the
cluster and data plane only and installs observability and KEDA in the tutorial's order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable

from ..errors import LabError
from . import hosts
from .cluster import Echo, LabCluster
from .keda import LabKeda, netns_name
from .observability import LabObservability
from .processes import ManagedProcess, ProcessSpec

DATAPLANE = "lab-dataplane"
COMPONENTS = ("cluster", "observability", "keda")


class Lab:
    """One local lab (default name `vse-lab`, env LAB_NAME)."""

    def __init__(self, name: str | None = None, echo: Echo = print) -> None:
        self.cluster = LabCluster(name, echo)
        self.name = self.cluster.name
        self.paths = self.cluster.paths
        self.echo = echo
        self.keda = LabKeda(self.cluster)
        self.observability = LabObservability(self.cluster)

    def dataplane(self) -> ManagedProcess:
        # The simulated GPU: its KV cache holds about 8 of the tutorial's 3000-token prompts, and
        # the model takes a moment to load. Pod env (servingEngineSpec env) still wins per engine.
        env = {"VLLM_SIM_KV_CACHE_TOKENS": os.environ.get("LAB_GPU_KV_TOKENS", "24576"),
               "VLLM_SIM_STARTUP_DELAY": os.environ.get("LAB_ENGINE_STARTUP_S", "2")}
        spec = ProcessSpec(name=DATAPLANE, log=self.paths.log(DATAPLANE), env=env,
                           argv=[sys.executable, "-m", "vllm_stack_e2e.lab.dataplane", "--lab", self.name])
        return ManagedProcess(spec, self.paths.pidfile(DATAPLANE))

    def preflight(self) -> None:
        """Fail early, in one line, when this machine cannot run the lab."""
        if not hosts.can_isolate():
            raise LabError("the lab needs mount and network namespaces (run as root with `unshare` and `ip` "
                           "from util-linux/iproute2) to run KEDA with the cluster's DNS names")
        if shutil.which("socat") is None:
            raise LabError("the lab needs socat for its pods' port-forwards (they close as a kubelet's do when the "
                           "client leaves): install Debian's socat, or run `make tools`")

    def up(self, components: Iterable[str] = COMPONENTS) -> float:
        """Bring the lab up (idempotent); returns the seconds it took."""
        wanted = set(components)
        unknown = wanted - set(COMPONENTS)
        if unknown:
            raise LabError(f"unknown lab component(s) {sorted(unknown)}: choose from {', '.join(COMPONENTS)}")
        started = time.monotonic()
        self.preflight()
        if self.cluster.stopped():
            # A machine restart (or a killed session) left state whose processes are gone: etcd
            # holds leases of dead holders (KWOK would not manage the nodes again for minutes) and
            # markers of components that no longer run. A lab is disposable: start it afresh.
            self.echo(f"lab {self.name}: found stopped with none of its processes running (machine restart "
                      "or killed session); recreating it")
            self.down()
        self.cluster.up()
        plane = self.dataplane()
        if not plane.alive():
            plane.start()
        # What was installed comes back with the cluster, as a real cluster's workloads do after
        # a reboot: a lab whose processes died (machine restart, killed session) keeps its state
        # and markers, and a marker without its process would make "installed" a lie.
        for name, component in (("observability", self.observability), ("keda", self.keda)):
            if name in wanted:
                component.up()
            elif component.installed() and not component.running():
                self.echo(f"lab {self.name}: {name} is installed but its processes stopped; starting them again")
                component.up()
        seconds = time.monotonic() - started
        self.echo(f"lab {self.name} up in {seconds:.1f}s — kubeconfig {self.paths.kubeconfig}")
        return seconds

    def stop(self) -> None:
        """Stop every process, keep the state: what a machine restart leaves behind."""
        self.dataplane().stop()
        self.cluster.stop()
        self._drop_netns()

    def _drop_netns(self) -> None:
        ns = netns_name(self.name)
        if ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split():
            subprocess.run(["ip", "netns", "del", ns], check=False)

    def down(self) -> float:
        """Stop everything the lab started and remove its state; returns the seconds it took."""
        started = time.monotonic()
        self.dataplane().stop()  # first: it stops the engines and gateways it started
        self.cluster.down()
        self._drop_netns()
        seconds = time.monotonic() - started
        self.echo(f"lab {self.name} down in {seconds:.1f}s")
        return seconds

    def status(self) -> dict[str, object]:
        return self.cluster.status()
