"""The lab's data plane: a kubelet-like supervisor that runs a local process for each lab pod
that needs one, and wires it in the way a real cluster would.

- An engine pod (chart label `app.kubernetes.io/component=serving-engine`) that KWOK has
  started gets the simulator, run with the pod's own container command (`vllm serve …`,
  also `/opt/venv/bin/vllm serve …`) and environment (`valueFrom`/`envFrom` resolved as a
  kubelet does: lab/podspec.py), bound to the pod's loopback twin (10.244.b.c → 127.244.b.c)
  on the port its command names.
- Engine and router pods are probed as the kubelet probes them (lab/probes.py): startup,
  readiness and liveness probes from the pod spec, with their delays, periods and thresholds; the
  pod's Ready condition follows the readiness probe, a failed startup or liveness probe restarts
  the process (restartCount counts it). A deleted engine or router pod gets SIGTERM, the pod's
  grace period to finish (what the engine and the gateway do with requests in flight follows
  docs/termination.md: sim/shutdown.py, sim/gateway.py), then SIGKILL; the data plane deletes the
  pod object once the process is gone, as the kubelet does.
- A router pod (label `environment=router`) gets the gateway, run with the router container's
  own arguments and environment. The data plane does the router's pod watch for it: the pods
  of its `--k8s-namespace` that its `--k8s-label-selector` selects (empty: all), Ready and not
  terminating, are handed to the gateway at `http://<twin>:<--k8s-port>`, and the gateway asks
  each one's /v1/models, as the router does (sim/gateway.py).
- Every such pod gets a KWOK PortForward (so `kubectl port-forward` reaches the process)
  and a KWOK Logs resource (so `kubectl logs` shows the process's output).
- Prometheus scrape targets are written as a file_sd file, selected the way the
  observability install's ServiceMonitor selects Services (docs/observability.md).
- The Prometheus Operator's pod and the Prometheus pods it creates get the operator and a
  Prometheus with the operator's configuration (lab/monitoring.py).
- Pods standing for other local processes (label `vllm-stack-e2e.io/local-process`) get a
  PortForward to that process.

Run: `python -m vllm_stack_e2e.lab.dataplane --lab NAME` (started by the lab).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import shlex
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from .. import kube as k
from .. import labelselector
from ..redaction import redact_argv
from ..sim import presets, routerflags
from . import build, manifests, monitoring, podspec, probes
from . import paths as p
from .kubeproxy import FACE_FORWARDS
from .observability import prometheus_binary
from .processes import ManagedProcess, ProcessSpec

log = logging.getLogger("vllm_stack_e2e.lab.dataplane")
ROUTER_DEFAULT_PORT = routerflags.RouterSettings().port
# The observability install's ServiceMonitor (docs/observability.md).
MONITOR_SELECTOR = {"app.kubernetes.io/managed-by": {"Helm"}, "environment": {"test", "router"},
                    "release": {"test", "router"}}
MONITOR_PORTS = {"service-port", "router-sport"}
REDISCOVER_SECONDS = 10.0  # a Ready pod whose /v1/models failed is asked again (the router's watch re-lists)


def _labels(obj: k.Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def service_selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A Service's selector: a map that must match; an empty one selects nothing (no endpoints)."""
    return bool(selector) and labelselector.matches(selector, labels)


def is_engine(pod: k.Obj) -> bool:
    return _labels(pod).get("app.kubernetes.io/component") == manifests.ENGINE_COMPONENT


def is_router(pod: k.Obj) -> bool:
    return _labels(pod).get("environment") == manifests.ROUTER_ENVIRONMENT


def router_args(pod: k.Obj) -> list[str]:
    """The router container's arguments (its image's entrypoint is the router; a command, if the
    pod names one, is that entrypoint)."""
    c = podspec.container(pod)
    return list(c.get("args") or []) if c.get("args") else list(c.get("command") or [])[1:]


def router_settings(pod: k.Obj) -> routerflags.RouterSettings:
    """The router's discovery and routing settings from its arguments (ValueError if it would not start)."""
    return routerflags.parse(router_args(pod))


def pod_ready(pod: k.Obj) -> bool:
    """The router's test for a pod: every container ready, and not terminating."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (bool(statuses) and all(s.get("ready") for s in statuses)
            and not pod["metadata"].get("deletionTimestamp"))


PROBED_KINDS = ("engine", "router")


def grace_seconds(pod: k.Obj) -> float:
    """The grace period of a deleted pod: the deletion's own, else the pod spec's, else 30 s."""
    for value in (pod["metadata"].get("deletionGracePeriodSeconds"),
                  (pod.get("spec") or {}).get("terminationGracePeriodSeconds")):
        if value is not None:
            return float(value)
    return 30.0


def discovered(settings: routerflags.RouterSettings, pods: list[k.Obj]) -> dict[str, str]:
    """What the router's pod-ip discovery would put in rotation: pod name -> engine URL, for the
    Ready pods of its namespace that its selector selects, reached on `--k8s-port` (on the pod's
    loopback twin)."""
    if settings.service_discovery != "k8s" or settings.discovery_type != "pod-ip":
        return {}
    out = {}
    for pod in pods:
        meta, ip = pod["metadata"], (pod.get("status") or {}).get("podIP")
        if (meta["namespace"] == settings.namespace and ip and pod_ready(pod)
                and labelselector.matches(settings.label_selector, _labels(pod))):
            out[meta["name"]] = f"http://{p.pod_loopback(ip)}:{settings.k8s_port}"
    return out


@dataclass
class Runtime:
    """The local process of one pod."""

    uid: str
    kind: str  # engine | router
    namespace: str
    pod: str
    address: str
    process: ManagedProcess
    port: int = 0
    ready: bool = False
    engines: dict[str, str] = field(default_factory=dict)  # a router's: pod name -> URL in rotation
    tried: dict[str, tuple[str, float]] = field(default_factory=dict)  # a router's failed discoveries
    config: str = ""  # a Prometheus pod's configuration as last written
    started: float = field(default_factory=time.monotonic)
    prober: probes.Prober | None = None  # engines and routers
    kill_at: float | None = None  # terminating: SIGKILL at this monotonic time


class DataPlane:
    """Watches pods and keeps one local process per engine / router pod."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.paths = p.LabPaths(lab)
        self.kube = k.Kube(self.paths.kubeconfig)
        self.core = client.CoreV1Api(self.kube.api_client)
        self.pods: dict[str, k.Obj] = {}
        self.runtimes: dict[str, Runtime] = {}
        self.forwards: set[tuple[str, str]] = set()
        self.events: queue.Queue[tuple[str, k.Obj]] = queue.Queue()
        self.stop = threading.Event()
        self.http = httpx.Client(timeout=1.0)
        self._targets_written: str | None = None
        self.python = sys.executable
        # The pods' port-forwards close as a kubelet's do when their client goes away
        # (manifests.port_forward); Lab.preflight makes sure socat is there.
        self.relay = shutil.which("socat")

    # ---- watching -------------------------------------------------------------------
    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                listing = self.core.list_pod_for_all_namespaces()
                current = {}
                for pod in listing.items:
                    obj = self.kube.api_client.sanitize_for_serialization(pod)
                    current[obj["metadata"]["uid"]] = obj
                self.events.put(("SYNC", {"pods": current}))
                stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces,
                                              resource_version=listing.metadata.resource_version,
                                              timeout_seconds=60)
                for event in stream:
                    obj = self.kube.api_client.sanitize_for_serialization(event["object"])
                    self.events.put((event["type"], obj))
                    if self.stop.is_set():
                        break
            except (ApiException, OSError, ValueError) as exc:  # API restarts, 410 Gone: relist
                log.warning("pod watch interrupted (%s); relisting", exc)
                self.stop.wait(1)

    def _drain(self, timeout: float) -> bool:
        changed = False
        try:
            kind, obj = self.events.get(timeout=timeout)
        except queue.Empty:
            return False
        while True:
            changed = True
            if kind == "SYNC":
                self.pods = obj["pods"]
            elif kind == "DELETED":
                self.pods.pop(obj["metadata"]["uid"], None)
            else:
                self.pods[obj["metadata"]["uid"]] = obj
            try:
                kind, obj = self.events.get_nowait()
            except queue.Empty:
                return changed

    # ---- processes ------------------------------------------------------------------
    def _log_file(self, namespace: str, pod: str, container: str) -> Path:
        path = self.paths.logs / "pods" / f"{namespace}_{pod}_{container}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, pod: k.Obj, kind: str, argv: list[str], env: dict[str, str], port: int,
               container: str | None = None) -> Runtime:
        meta = pod["metadata"]
        container = container or pod["spec"]["containers"][0]["name"]
        cri_log = self._log_file(meta["namespace"], meta["name"], container)
        name = f"pod-{meta['namespace']}-{meta['name']}"
        spec = ProcessSpec(name=name, log=self.paths.log(name), env=env,
                           argv=[self.python, "-m", "vllm_stack_e2e.lab.crilog", "--out", str(cri_log), "--", *argv])
        process = ManagedProcess(spec, self.paths.pidfile(name))
        process.start()
        address = p.pod_loopback(pod["status"]["podIP"])
        log.info("started %s for %s/%s on %s:%d: %s", kind, meta["namespace"], meta["name"], address,
                 port, shlex.join(a for a in redact_argv(argv) if "key-file" not in a))
        runtime = Runtime(uid=meta["uid"], kind=kind, namespace=meta["namespace"], pod=meta["name"],
                          address=address, process=process, port=port)
        if kind in PROBED_KINDS:
            runtime.prober = probes.Prober(probes.probes_of(pod), time.monotonic())
            log.info("probes of %s/%s: %s", meta["namespace"], meta["name"],
                     "; ".join(pr.describe() for pr in runtime.prober.probes) or "none (Ready once started)")
        self._guard(f"logs/port-forward of {meta['name']}", self.kube.apply_all, [
            manifests.pod_logs(self.lab, meta["namespace"], meta["name"], container, str(cri_log)),
            manifests.port_forward(self.lab, meta["namespace"], meta["name"], [(port, address, port)],
                                   relay=self.relay),
        ])
        return runtime

    def _start_operator(self, pod: k.Obj) -> Runtime:
        address = p.pod_loopback(pod["status"]["podIP"])
        binary = build.ensure("prometheus-operator", echo=log.info)["prometheus-operator"]
        argv = [str(binary), *monitoring.api_credentials(self.paths.kubeconfig, self.paths.root / "operator-credentials"),
                f"--web.listen-address={address}:{monitoring.OPERATOR_PORT}", *monitoring.operator_args(pod)]
        return self._spawn(pod, "prometheus-operator", argv, {}, port=monitoring.OPERATOR_PORT)

    def _prometheus_dir(self, namespace: str, pod: str) -> Path:
        return self.paths.root / "prometheus-pods" / f"{namespace}_{pod}"

    def _prometheus_config(self, pod: k.Obj) -> str | None:
        """The operator's configuration for this pod as the lab runs it; None until the operator wrote it."""
        name = monitoring.config_secret(pod)
        secret = self.kube.get("v1", "Secret", name, pod["metadata"]["namespace"]) if name else None
        if not secret or monitoring.CONFIG_KEY not in (secret.get("data") or {}):
            return None
        env = {"POD_NAME": pod["metadata"]["name"], "SHARD": "0", "NODE_NAME": pod["spec"].get("nodeName", "")}
        return monitoring.lab_config(secret, self.paths.kubeconfig, env)

    def _start_prometheus_pod(self, pod: k.Obj) -> Runtime | None:
        config = self._prometheus_config(pod)
        if config is None:
            return None  # the init container waits for it too
        folder = self._prometheus_dir(pod["metadata"]["namespace"], pod["metadata"]["name"])
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "prometheus.yaml").write_text(config)
        address = p.pod_loopback(pod["status"]["podIP"])
        argv = [str(prometheus_binary()), f"--config.file={folder / 'prometheus.yaml'}",
                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}:{monitoring.PROMETHEUS_PORT}",
                "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d"]
        runtime = self._spawn(pod, "prometheus", argv, {}, port=monitoring.PROMETHEUS_PORT, container="prometheus")
        runtime.config = config
        return runtime

    def _check_monitoring(self, uid: str, runtime: Runtime) -> None:
        """Restart an exited process (restartPolicy Always); for Prometheus, do the config-reloader's
        job: rewrite and reload when the operator's Secret changes."""
        if not runtime.process.alive():
            log.warning("%s for %s/%s exited; restarting (log %s)", runtime.kind, runtime.namespace, runtime.pod,
                        runtime.process.spec.log)
            runtime.process.stop()
            runtime.process.start()
            return
        if runtime.kind == "prometheus":
            try:  # its readiness probe: GET /-/ready
                ready = self.http.get(f"http://{runtime.address}:{monitoring.PROMETHEUS_PORT}/-/ready").status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready != runtime.ready:
                self._mark_ready(runtime, self.pods[uid], ready)
            config = self._prometheus_config(self.pods[uid])
            if config is not None and runtime.config != config:
                (self._prometheus_dir(runtime.namespace, runtime.pod) / "prometheus.yaml").write_text(config)
                self.http.post(f"http://{runtime.address}:{monitoring.PROMETHEUS_PORT}/-/reload").raise_for_status()
                runtime.config = config
                log.info("prometheus %s/%s: configuration changed, reloaded", runtime.namespace, runtime.pod)

    def _lookup(self, kind: str, namespace: str, name: str) -> k.Obj | None:
        return self.kube.get("v1", kind, name, namespace)

    def _start_engine(self, pod: k.Obj) -> Runtime | None:
        argv = podspec.argv(pod)
        if not argv or Path(argv[0]).name != "vllm" or "serve" not in argv:
            log.warning("engine pod %s/%s runs %r, not `vllm serve …`: nothing to simulate",
                        pod["metadata"]["namespace"], pod["metadata"]["name"], argv[:3])
            return None
        env = self._env(pod)
        if env is None:
            return None
        env = {**self._preset_env(pod["metadata"]["namespace"]), **env, "VLLM_SIM_ENGINE_ID": "0"}
        # The pod's `vllm serve …` (or `/opt/venv/bin/vllm serve …`) runs the simulator with the same
        # arguments; no program named `vllm` is installed or called (a test tool never takes over
        # the name of the tool it tests).
        serve = argv.index("serve")
        return self._spawn(pod, "engine", [self.python, "-m", "vllm_stack_e2e.sim", *argv[serve:]], env,
                           port=podspec.listen_port(argv))

    def _preset_env(self, namespace: str) -> dict[str, str]:
        """The simulated GPU of the namespace's engines: the engine preset its run chose (annotation
        sim.presets.ANNOTATION); none (the lab's defaults) when it names none."""
        ns = self.kube.get("v1", "Namespace", namespace) or {}
        name = ((ns.get("metadata") or {}).get("annotations") or {}).get(presets.ANNOTATION)
        if not name:
            return {}
        try:
            preset = presets.get(name)
        except KeyError as exc:
            log.warning("namespace %s: %s; its engines get the lab's defaults", namespace, exc.args[0])
            return {}
        log.info("namespace %s: engine preset %s (%s)", namespace, preset.name, preset.derivation())
        return preset.env()

    def _env(self, pod: k.Obj) -> dict[str, str] | None:
        """The container's environment as the kubelet would give it, and the simulator's bind address
        (the pod's twin); None (logged) while a reference cannot be resolved — the kubelet retries
        too. A key in the lab's own environment never reaches a pod that does not set one."""
        try:
            return {"VLLM_API_KEY": "", **podspec.env(pod, self._lookup),
                    "VLLM_SIM_HOST": p.pod_loopback(pod["status"]["podIP"])}
        except podspec.EnvError as exc:
            log.warning("pod %s/%s: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], exc)
            return None

    def _start_router(self, pod: k.Obj) -> Runtime | None:
        args = router_args(pod)
        env = self._env(pod)
        if env is None:
            return None
        port = podspec.listen_port(args, ROUTER_DEFAULT_PORT)
        return self._spawn(pod, "router", [self.python, "-m", "vllm_stack_e2e.sim", "gateway", *args], env, port=port)

    def _stop(self, runtime: Runtime, kill: bool = False) -> None:
        runtime.process.stop(timeout=0.0 if kill else 10.0)
        if runtime.kind == "prometheus":  # its data is an emptyDir: gone with the pod
            shutil.rmtree(self._prometheus_dir(runtime.namespace, runtime.pod), ignore_errors=True)
        for kind in ("Logs", "PortForward"):
            self._guard(f"delete {kind} {runtime.pod}", self.kube.delete, "kwok.x-k8s.io/v1alpha1", kind,
                        runtime.pod, runtime.namespace)
        log.info("stopped %s for %s/%s", runtime.kind, runtime.namespace, runtime.pod)

    # ---- reconciling ----------------------------------------------------------------
    @staticmethod
    def _runnable(pod: k.Obj) -> bool:
        status = pod.get("status") or {}
        return (status.get("phase") == "Running" and bool(status.get("podIP"))
                and not pod["metadata"].get("deletionTimestamp"))

    def _mark_ready(self, runtime: Runtime, pod: k.Obj, ready: bool) -> None:
        status = pod.get("status") or {}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        value = "True" if ready else "False"
        conditions = []
        for cond in status.get("conditions") or []:
            cond = dict(cond)
            if cond.get("type") in ("Ready", "ContainersReady") and cond.get("status") != value:
                cond.update({"status": value, "lastTransitionTime": now})
            conditions.append(cond)
        containers = [dict(c, ready=ready) for c in status.get("containerStatuses") or []]
        self.kube.patch_status("v1", "Pod", runtime.pod, runtime.namespace,
                               {"status": {"conditions": conditions, "containerStatuses": containers}})
        runtime.ready = ready
        log.info("pod %s/%s Ready=%s", runtime.namespace, runtime.pod, value)

    def reconcile(self) -> None:
        """Bring the local processes in line with the pods. Each pod is its own unit of work:
        one that fails (e.g. its namespace is terminating) never stops the others."""
        wanted: dict[str, k.Obj] = {}
        for uid, pod in self.pods.items():
            if (is_engine(pod) or is_router(pod) or monitoring.is_operator(pod) or monitoring.is_prometheus(pod)) \
                    and self._runnable(pod):
                wanted[uid] = pod
            elif uid in self.runtimes and self.runtimes[uid].kind in PROBED_KINDS and self._terminating(pod):
                wanted[uid] = pod  # stopped by _terminate, within its grace period
        self._guard("deleted pods", self._delete_finished)
        if any(uid not in wanted for uid in self.runtimes):
            # Like the router's pod watch: a leaving engine is out of rotation before it stops.
            self._guard("gateways", self._sync_gateways)
        for uid in list(self.runtimes):
            if uid not in wanted:
                self._guard(f"stop {self.runtimes[uid].pod}", self._stop, self.runtimes.pop(uid))
        self._stop_orphans(wanted)
        for uid, pod in wanted.items():
            if not self._terminating(pod):
                self._guard(f"start {pod['metadata']['name']}", self._ensure_runtime, uid, pod)
        for uid, runtime in list(self.runtimes.items()):
            if runtime.kind in ("prometheus", "prometheus-operator") and uid in self.pods:
                self._guard(f"check {runtime.pod}", self._check_monitoring, uid, runtime)
        self._guard("gateways", self._sync_gateways)
        self._guard("port-forwards", self._sync_faces)
        self._guard("prometheus targets", self._write_targets)
        if self.paths.keda_certs.exists():  # the kubelet's job for KEDA's pods: keep its secret volume in sync
            self._guard("KEDA certificates", self._sync_keda_certs)

    def _sync_keda_certs(self) -> None:
        from .keda import project_cert_secret

        if project_cert_secret(self.kube, self.paths.keda_certs):
            log.info("KEDA certificate secret changed: projected into %s", self.paths.keda_certs)

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except (ApiException, httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            log.warning("%s failed (%s: %s); will retry", what, type(exc).__name__, str(exc).splitlines()[0][:200])

    def _ensure_runtime(self, uid: str, pod: k.Obj) -> None:
        if uid in self.runtimes:
            return
        self._free_address(pod)
        if is_router(pod):
            started = self._start_router(pod)
        elif monitoring.is_operator(pod):
            started = self._start_operator(pod)
        elif monitoring.is_prometheus(pod):
            started = self._start_prometheus_pod(pod)
        else:
            started = self._start_engine(pod)
        if started:
            self.runtimes[uid] = started

    def _free_address(self, pod: k.Obj) -> None:
        """KWOK reuses a deleted pod's IP at once: stop whatever still listens on its twin."""
        address = p.pod_loopback(pod["status"]["podIP"])
        for uid, runtime in list(self.runtimes.items()):
            if runtime.address == address and uid != pod["metadata"]["uid"]:
                self._stop(self.runtimes.pop(uid))

    def _stop_orphans(self, wanted: dict[str, k.Obj]) -> None:
        """Processes with a PID file but no runtime (a failed start, a restarted supervisor)."""
        known = {r.process.pidfile for r in self.runtimes.values()}
        names = {f"pod-{pod['metadata']['namespace']}-{pod['metadata']['name']}" for pod in wanted.values()}
        for pidfile in self.paths.pids.glob("pod-*.json") if self.paths.pids.exists() else []:
            if pidfile not in known and pidfile.stem not in names:
                orphan = ManagedProcess.from_pidfile(pidfile)
                log.info("stopping orphaned %s", orphan.spec.name)
                orphan.stop()

    @staticmethod
    def _terminating(pod: k.Obj) -> bool:
        return bool(pod["metadata"].get("deletionTimestamp")) and (is_engine(pod) or is_router(pod))

    def probe_all(self) -> None:
        """The kubelet's turn for every engine and router: terminate the deleted, restart the
        exited and the failed, run the probes that are due, and publish readiness."""
        for uid, runtime in list(self.runtimes.items()):
            pod = self.pods.get(uid)
            if runtime.kind not in PROBED_KINDS or pod is None or runtime.prober is None:
                continue
            if self._terminating(pod):
                self._guard(f"terminate {runtime.pod}", self._terminate, uid, runtime, pod)
            else:
                self._guard(f"probe {runtime.pod}", self._probe, uid, runtime, pod)

    def _probe(self, uid: str, runtime: Runtime, pod: k.Obj) -> None:
        prober, now = runtime.prober, time.monotonic()
        assert prober is not None
        if not runtime.process.alive():
            self._restart(runtime, pod, f"exited (code {runtime.process.exit_code()}; log {runtime.process.spec.log})")
            return
        for probe in prober.due(now):
            ok, seen = probes.check(probe, runtime.address, self.http)
            prober.record(probe, ok)
            if not ok:
                log.info("%s probe of %s/%s failed: %s", probe.kind, runtime.namespace, runtime.pod, seen)
        if prober.restart_reason:
            self._restart(runtime, pod, prober.restart_reason)
            return
        if prober.ready != runtime.ready:
            self._mark_ready(runtime, pod, prober.ready)

    def _restart(self, runtime: Runtime, pod: k.Obj, why: str) -> None:
        """restartPolicy Always: stop what is left (SIGTERM, then SIGKILL after the grace period,
        capped so one pod never holds the loop long) and start the container again."""
        assert runtime.prober is not None
        log.warning("%s for %s/%s: %s; restarting the container", runtime.kind, runtime.namespace, runtime.pod, why)
        runtime.process.stop(timeout=min(grace_seconds(pod), 10.0))
        runtime.process.start()
        runtime.prober.restarted(time.monotonic())
        runtime.engines.clear()  # a restarted router knows nothing
        runtime.tried.clear()
        if runtime.ready:
            self._mark_ready(runtime, pod, False)
        restarts = runtime.prober.restarts
        statuses = [dict(c, restartCount=restarts) for c in (pod.get("status") or {}).get("containerStatuses") or []]
        self.kube.patch_status("v1", "Pod", runtime.pod, runtime.namespace, {"status": {"containerStatuses": statuses}})

    def _terminate(self, uid: str, runtime: Runtime, pod: k.Obj) -> None:
        """SIGTERM once; the process has the pod's grace period to finish; then SIGKILL, and the pod
        object goes (grace 0), as the kubelet's last word."""
        now = time.monotonic()
        if runtime.kill_at is None:
            grace = grace_seconds(pod)
            runtime.kill_at = now + grace
            runtime.process.terminate()
            log.info("pod %s/%s deleted: SIGTERM, grace period %gs", runtime.namespace, runtime.pod, grace)
        if runtime.process.alive() and now < runtime.kill_at:
            return
        if runtime.process.alive():
            log.warning("pod %s/%s: still running after its grace period: SIGKILL", runtime.namespace, runtime.pod)
        self._stop(self.runtimes.pop(uid), kill=True)
        self.kube.delete_now("v1", "Pod", runtime.pod, runtime.namespace)
        self.pods.pop(uid, None)

    def _delete_finished(self) -> None:
        """A deleted engine or router pod with no process (never started, or a restarted supervisor):
        delete the object (grace 0) at once. KWOK leaves these pods to the data plane."""
        for uid, pod in list(self.pods.items()):
            if self._terminating(pod) and uid not in self.runtimes:
                meta = pod["metadata"]
                self.kube.delete_now("v1", "Pod", meta["name"], meta["namespace"])
                self.pods.pop(uid, None)

    def _sync_gateways(self) -> None:
        """The router's pod watch: put the pods it would discover in rotation, take out the others."""
        pods = list(self.pods.values())
        now = time.monotonic()
        for runtime in self.runtimes.values():
            if runtime.kind != "router" or not runtime.process.alive() or runtime.uid not in self.pods:
                continue
            try:
                settings = router_settings(self.pods[runtime.uid])
            except ValueError:
                continue  # the gateway refuses these arguments too, and says why in its log
            desired = discovered(settings, pods)
            base = f"http://{runtime.address}:{runtime.port}/admin/engines"
            try:
                for name in [n for n in runtime.engines if desired.get(n) != runtime.engines[n]]:
                    self.http.request("DELETE", base, json={"name": name})
                    del runtime.engines[name]
                for name, url in desired.items():
                    if runtime.engines.get(name) == url:
                        continue
                    last = runtime.tried.get(name)
                    if last and last[0] == url and now - last[1] < REDISCOVER_SECONDS:
                        continue
                    reply = self.http.post(base, json={"name": name, "url": url}, timeout=15)
                    if reply.status_code in (200, 201):
                        runtime.engines[name] = url
                        runtime.tried.pop(name, None)
                    else:
                        runtime.tried[name] = (url, now)
            except httpx.HTTPError:
                continue  # the gateway is still starting; next tick

    def _sync_faces(self) -> None:
        current: set[tuple[str, str]] = set()
        for pod in self.pods.values():
            face = _labels(pod).get(manifests.PROCESS_LABEL)
            if face in FACE_FORWARDS and self._runnable(pod):
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
                current.add(key)
                if key not in self.forwards:
                    forwards = [(port, addr, tport) for port, (addr, tport) in FACE_FORWARDS[face].items()]
                    self.kube.apply(manifests.port_forward(self.lab, key[0], key[1], forwards))
        for namespace, name in self.forwards - current:
            self.kube.delete("kwok.x-k8s.io/v1alpha1", "PortForward", name, namespace)
        self.forwards = current

    def _write_targets(self) -> None:
        services: dict[str, list[k.Obj]] = {}
        groups: list[dict[str, Any]] = []
        for runtime in self.runtimes.values():
            pod = self.pods.get(runtime.uid)
            if pod is None or not runtime.process.alive():
                continue
            if runtime.namespace not in services:
                services[runtime.namespace] = self.kube.list(*k.SERVICE, namespace=runtime.namespace)
            for svc in services[runtime.namespace]:
                svc_labels = _labels(svc)
                if not all(svc_labels.get(key) in values for key, values in MONITOR_SELECTOR.items()):
                    continue
                if not service_selects(svc["spec"].get("selector"), _labels(pod)):
                    continue
                for port in svc["spec"].get("ports") or []:
                    target = podspec.port_number(pod, port.get("targetPort", port.get("port")))
                    if port.get("name") not in MONITOR_PORTS or target is None:
                        continue
                    groups.append({
                        "targets": [f"{runtime.address}:{target}"],
                        "labels": {"job": svc["metadata"]["name"], "namespace": runtime.namespace,
                                   "service": svc["metadata"]["name"], "pod": runtime.pod,
                                   "endpoint": port["name"], "container": pod["spec"]["containers"][0]["name"],
                                   "instance": f"{pod['status']['podIP']}:{target}"},
                    })
        text = json.dumps(sorted(groups, key=lambda g: g["targets"][0]), indent=1)
        if text != self._targets_written:
            tmp = self.paths.prometheus_targets.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.paths.prometheus_targets)
            self._targets_written = text
            log.info("prometheus targets: %s", ", ".join(g["labels"]["pod"] for g in groups) or "none")

    # ---- main loop --------------------------------------------------------------------
    def run(self) -> None:
        watcher = threading.Thread(target=self._watch, name="pod-watch", daemon=True)
        watcher.start()
        last = 0.0
        while not self.stop.is_set():
            changed = self._drain(timeout=0.25)
            self.probe_all()  # the probes keep their own periods; 0.25 s is the resolution
            waiting = any(r.kind == "prometheus" and not r.ready for r in self.runtimes.values())
            since = time.monotonic() - last
            if changed or (waiting and since >= 0.25) or since >= 5:  # 5 s: periodic resync and health
                try:
                    self.reconcile()
                except (ApiException, httpx.HTTPError, OSError, KeyError) as exc:
                    log.warning("reconcile failed (%s); retrying", exc)
                last = time.monotonic()
        for runtime in list(self.runtimes.values()):
            self._stop(runtime)
        self.runtimes.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The lab's data plane supervisor.")
    parser.add_argument("--lab", default=p.lab_name())
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LAB_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # health checks every 0.25 s are not news
    plane = DataPlane(args.lab)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: plane.stop.set())
    plane.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
