"""Service ClusterIPs inside KEDA's network namespace, the way kube-proxy's userspace mode
served them: for every Service port with a ClusterIP, a listener on `<clusterIP>:<port>`
inside the namespace that passes each connection to one of the Service's ready endpoints.

With CoreDNS (lab/dns.py) answering the namespace's lookups, a name KEDA is given goes
through what it goes through on a cluster: the resolver's search path and ndots, CoreDNS's
kubernetes plugin, the Service's ClusterIP, its EndpointSlices. An endpoint is a pod IP
(10.244.b.c), which the lab serves on its loopback twin (127.244.b.c), or a pod standing for
one of the lab's local processes (label `vllm-stack-e2e.io/local-process`), served where that
process listens; an address outside the pod CIDR (the `kubernetes` Service) is used as is.

Listeners follow the API every second, so a Service created after KEDA started is reachable
without restarting anything. Run: `python -m vllm_stack_e2e.lab.kubeproxy --netns PATH
--kubeconfig FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
from dataclasses import dataclass

from kubernetes import client, config

from . import paths as p
from .nsrelay import netns, splice

log = logging.getLogger("vllm_stack_e2e.lab.kubeproxy")
RESYNC_SECONDS = 1.0
#: Where each kind of local-process pod serves its ports (pod port -> local address); the
#: data plane forwards `kubectl port-forward` to the same places.
FACE_FORWARDS: dict[str, dict[int, tuple[str, int]]] = {
    "prometheus": {p.PROMETHEUS_PORT: (p.PROMETHEUS_ADDR, p.PROMETHEUS_PORT)},
    "keda-operator-metrics-apiserver": {p.KEDA_ADAPTER_PORT: (p.KEDA_ADAPTER_ADDR, p.KEDA_ADAPTER_PORT)},
}
FACE_LABEL = "vllm-stack-e2e.io/local-process"

Frontend = tuple[str, int]  # (clusterIP, port)
Backend = tuple[str, int]


@dataclass(frozen=True)
class Endpoint:
    """One ready endpoint of a Service port, as EndpointSlices list it."""

    address: str
    port: int
    face: str | None = None  # the local-process label of the pod behind it


def backend_of(endpoint: Endpoint) -> Backend:
    """Where on the machine a connection to `endpoint` goes."""
    if endpoint.face in FACE_FORWARDS and endpoint.port in FACE_FORWARDS[endpoint.face]:
        return FACE_FORWARDS[endpoint.face][endpoint.port]
    try:
        return p.pod_loopback(endpoint.address), endpoint.port
    except ValueError:
        return endpoint.address, endpoint.port


def routes(services: list[dict], slices: list[dict], faces: dict[tuple[str, str], str]) -> dict[Frontend, list[Backend]]:
    """Each ClusterIP Service port and the backends of its ready endpoints (kube-proxy's rules:
    a Service port is matched to the slices' port of the same name; `ready: false` is left out;
    a Service without a ClusterIP, or of type ExternalName, gets no listener)."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for es in slices:
        meta = es.get("metadata") or {}
        name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if name:
            by_service.setdefault((meta.get("namespace", ""), name), []).append(es)
    table: dict[Frontend, list[Backend]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName" or not ip or ip == "None":
            continue
        key = (meta.get("namespace", ""), meta.get("name", ""))
        for port in spec.get("ports") or []:
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            backends: list[Backend] = []
            for es in by_service.get(key, []):
                numbers = [sp.get("port") for sp in es.get("ports") or [] if (sp.get("name") or "") == (port.get("name") or "")]
                if not numbers or numbers[0] is None:
                    continue
                for ep in es.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready") is False:
                        continue
                    ref = ep.get("targetRef") or {}
                    face = faces.get((ref.get("namespace", key[0]), ref.get("name", ""))) if ref.get("kind") == "Pod" else None
                    for address in ep.get("addresses") or []:
                        backends.append(backend_of(Endpoint(address, int(numbers[0]), face)))
            table[(ip, int(port["port"]))] = sorted(set(backends))
    return table


class ServiceProxy:
    def __init__(self, netns_path: str, kubeconfig: str) -> None:
        self.netns_path = netns_path
        self.netns_name = os.path.basename(netns_path)
        api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.serialize = api.sanitize_for_serialization
        self.table: dict[Frontend, list[Backend]] = {}
        self.servers: dict[Frontend, asyncio.base_events.Server] = {}
        self.turn: dict[Frontend, itertools.count] = {}
        self.addresses: set[str] = set()

    def snapshot(self) -> dict[Frontend, list[Backend]]:
        services = [self.serialize(s) for s in self.core.list_service_for_all_namespaces().items]
        slices = [self.serialize(s) for s in self.discovery.list_endpoint_slice_for_all_namespaces().items]
        faces = {(pod.metadata.namespace, pod.metadata.name): pod.metadata.labels[FACE_LABEL]
                 for pod in self.core.list_pod_for_all_namespaces(label_selector=FACE_LABEL).items}
        return routes(services, slices, faces)

    def _own_address(self, ip: str) -> None:
        if ip not in self.addresses:
            subprocess.run(["ip", "-n", self.netns_name, "addr", "replace", f"{ip}/32", "dev", "lo"],
                           check=True, capture_output=True)
            self.addresses.add(ip)

    async def _listen(self, frontend: Frontend) -> None:
        ip, port = frontend
        self._own_address(ip)
        with netns(self.netns_path):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.listen(128)
            sock.setblocking(False)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connect(frontend, reader, writer)

        self.servers[frontend] = await asyncio.start_server(handle, sock=sock)
        self.turn[frontend] = itertools.count()
        log.info("serving %s:%d", ip, port)

    async def _connect(self, frontend: Frontend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backends = self.table.get(frontend) or []
        if not backends:  # no ready endpoint: the connection is refused, as with kube-proxy's REJECT rule
            writer.close()
            return
        start = next(self.turn[frontend])
        for i in range(len(backends)):
            host, port = backends[(start + i) % len(backends)]
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
            except (OSError, asyncio.TimeoutError):
                continue
            await splice(reader, writer, up_reader, up_writer)
            return
        writer.close()

    async def sync(self) -> None:
        table = await asyncio.to_thread(self.snapshot)
        for frontend in set(self.servers) - set(table):
            self.servers.pop(frontend).close()
            log.info("stopped %s:%d", *frontend)
        self.table = table
        for frontend in set(table) - set(self.servers):
            try:
                await self._listen(frontend)
            except (OSError, subprocess.CalledProcessError) as exc:
                log.warning("cannot serve %s:%d (%s); will retry", *frontend, exc)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync()
            except Exception as exc:  # the API restarting: keep the listeners, try again
                log.warning("sync failed (%s: %s); retrying", type(exc).__name__, str(exc).splitlines()[0][:200])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), RESYNC_SECONDS)
        for server in self.servers.values():
            server.close()


async def _main(netns_path: str, kubeconfig: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await ServiceProxy(netns_path, kubeconfig).run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="path of the namespace, e.g. /run/netns/NAME")
    parser.add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LAB_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_main(args.netns, args.kubeconfig))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
