"""The lab's data plane: a kubelet-like supervisor that runs a local process for each lab pod
that needs one, and wires it in the way a real cluster would.

- An engine pod (chart label `app.kubernetes.io/component=serving-engine`) that KWOK has
  started gets the simulator, run with the pod's own container command (`vllm serve …`,
  also `/opt/venv/bin/vllm serve …`) and env, bound to the pod's loopback twin
  (10.244.b.c → 127.244.b.c:8000). The pod is marked Ready when the engine answers
  /health, like a readiness probe.
- A router pod (label `environment=router`) gets the gateway, which routes to the Ready
  engine pods its `--k8s-label-selector` (default `environment=test,release=test`) selects
  in its namespace, and knows the models of the engine Deployments there.
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
from . import build, manifests, monitoring
from . import paths as p
from .kubeproxy import FACE_FORWARDS
from .observability import prometheus_binary
from .processes import ManagedProcess, ProcessSpec

log = logging.getLogger("vllm_stack_e2e.lab.dataplane")
ENGINE_PORT = 8000
ROUTER_PORT = 8000
DEFAULT_ENGINE_SELECTOR = "environment=test,release=test"
# The observability install's ServiceMonitor (docs/observability.md).
MONITOR_SELECTOR = {"app.kubernetes.io/managed-by": {"Helm"}, "environment": {"test", "router"},
                    "release": {"test", "router"}}
MONITOR_PORTS = {"service-port", "router-sport"}


def _labels(obj: k.Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def selector_matches(selector: str | dict[str, str], labels: dict[str, str]) -> bool:
    """Equality-based label selector (`a=b,c==d`, spaces allowed, as Kubernetes takes it)."""
    if isinstance(selector, dict):
        pairs = selector
    else:
        pairs = {}
        for part in selector.split(","):
            key, sep, value = part.replace("==", "=").partition("=")
            if sep:
                pairs[key.strip()] = value.strip()
    return bool(pairs) and all(labels.get(key) == value for key, value in pairs.items())


def container_argv(pod: k.Obj) -> list[str]:
    container = pod["spec"]["containers"][0]
    return list(container.get("command") or []) + list(container.get("args") or [])


def _flag(argv: list[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` in argv."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def served_model(argv: list[str]) -> str | None:
    """The model name a `vllm serve` command line answers to."""
    named = _flag(argv, "--served-model-name")
    if named:
        return named
    if "--served-model-name" in argv:
        i = argv.index("--served-model-name")
        if i + 1 < len(argv):
            return argv[i + 1]
    if "serve" in argv:
        i = argv.index("serve")
        if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            return argv[i + 1]
    return _flag(argv, "--model")


def is_engine(pod: k.Obj) -> bool:
    return _labels(pod).get("app.kubernetes.io/component") == manifests.ENGINE_COMPONENT


def is_router(pod: k.Obj) -> bool:
    return _labels(pod).get("environment") == "router"


def router_settings(pod: k.Obj) -> tuple[str, str]:
    """(engine label selector, routing) from the router container's arguments."""
    argv = container_argv(pod)
    selector, routing = DEFAULT_ENGINE_SELECTOR, "round-robin"
    for i, arg in enumerate(argv):
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if arg.startswith("--k8s-label-selector"):
            selector = arg.split("=", 1)[1] if "=" in arg else value
        if arg.startswith("--routing-logic"):
            logic = arg.split("=", 1)[1] if "=" in arg else value
            routing = "least-loaded" if logic in ("least-loaded", "leastloaded", "session") else "round-robin"
    return selector, routing


@dataclass
class Runtime:
    """The local process of one pod."""

    uid: str
    kind: str  # engine | router
    namespace: str
    pod: str
    address: str
    process: ManagedProcess
    ready: bool = False
    engines: set[str] = field(default_factory=set)
    models: tuple[str, ...] = ()
    config: str = ""  # a Prometheus pod's configuration as last written
    started: float = field(default_factory=time.monotonic)


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

    def _spawn(self, pod: k.Obj, kind: str, argv: list[str], env: dict[str, str], port: int = ENGINE_PORT,
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
                 port, shlex.join(a for a in argv if "key-file" not in a))
        runtime = Runtime(uid=meta["uid"], kind=kind, namespace=meta["namespace"], pod=meta["name"],
                          address=address, process=process)
        self._guard(f"logs/port-forward of {meta['name']}", self.kube.apply_all, [
            manifests.pod_logs(self.lab, meta["namespace"], meta["name"], container, str(cri_log)),
            manifests.port_forward(self.lab, meta["namespace"], meta["name"], [(port, address, port)]),
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

    def _start_engine(self, pod: k.Obj) -> Runtime | None:
        argv = container_argv(pod)
        if not argv or Path(argv[0]).name != "vllm" or "serve" not in argv:
            log.warning("engine pod %s/%s runs %r, not `vllm serve …`: nothing to simulate",
                        pod["metadata"]["namespace"], pod["metadata"]["name"], argv[:3])
            return None
        env = {e["name"]: str(e.get("value", "")) for e in pod["spec"]["containers"][0].get("env") or []
               if "value" in e}
        env.update({"VLLM_SIM_HOST": p.pod_loopback(pod["status"]["podIP"]), "VLLM_SIM_PORT": str(ENGINE_PORT),
                    "VLLM_SIM_ENGINE_ID": "0"})
        # The pod's `vllm serve …` (or `/opt/venv/bin/vllm serve …`) runs the simulator with the same
        # arguments; no program named `vllm` is installed or called (a test tool never takes over
        # the name of the tool it tests).
        serve = argv.index("serve")
        return self._spawn(pod, "engine", [self.python, "-m", "vllm_stack_e2e.sim", *argv[serve:]], env)

    def _start_router(self, pod: k.Obj, models: tuple[str, ...]) -> Runtime:
        _, routing = router_settings(pod)
        argv = [self.python, "-m", "vllm_stack_e2e.sim", "gateway", "--host", p.pod_loopback(pod["status"]["podIP"]),
                "--port", str(ROUTER_PORT), "--routing", routing]
        for model in models:
            argv += ["--model", model]
        runtime = self._spawn(pod, "router", argv, {})
        runtime.models = models
        return runtime

    def _stop(self, runtime: Runtime) -> None:
        runtime.process.stop()
        if runtime.kind == "prometheus":  # its data is an emptyDir: gone with the pod
            shutil.rmtree(self._prometheus_dir(runtime.namespace, runtime.pod), ignore_errors=True)
        for kind in ("Logs", "PortForward"):
            self._guard(f"delete {kind} {runtime.pod}", self.kube.delete, "kwok.x-k8s.io/v1alpha1", kind,
                        runtime.pod, runtime.namespace)
        log.info("stopped %s for %s/%s", runtime.kind, runtime.namespace, runtime.pod)

    # ---- reconciling ----------------------------------------------------------------
    def _models(self, namespace: str) -> tuple[str, ...]:
        deployments = self.kube.list(*k.DEPLOYMENT, namespace=namespace,
                                     label_selector=f"app.kubernetes.io/component={manifests.ENGINE_COMPONENT}")
        models = set()
        for dep in deployments:
            template = {"spec": dep["spec"]["template"]["spec"]}
            model = served_model(container_argv(template))
            if model:
                models.add(model)
        return tuple(sorted(models))

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

    def _healthy(self, runtime: Runtime) -> bool:
        try:
            return self.http.get(f"http://{runtime.address}:{ENGINE_PORT}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def reconcile(self) -> None:
        """Bring the local processes in line with the pods. Each pod is its own unit of work:
        one that fails (e.g. its namespace is terminating) never stops the others."""
        wanted: dict[str, k.Obj] = {}
        for uid, pod in self.pods.items():
            if (is_engine(pod) or is_router(pod) or monitoring.is_operator(pod) or monitoring.is_prometheus(pod)) \
                    and self._runnable(pod):
                wanted[uid] = pod
        if any(uid not in wanted for uid in self.runtimes):
            # Like the router's pod watch: a leaving engine is out of rotation before it stops.
            self._guard("gateways", self._sync_gateways)
        for uid in list(self.runtimes):
            if uid not in wanted:
                self._guard(f"stop {self.runtimes[uid].pod}", self._stop, self.runtimes.pop(uid))
        self._stop_orphans(wanted)
        models_by_ns: dict[str, tuple[str, ...]] = {}
        for uid, pod in wanted.items():
            self._guard(f"start {pod['metadata']['name']}", self._ensure_runtime, uid, pod, models_by_ns)
        for uid, runtime in list(self.runtimes.items()):
            if runtime.kind == "engine" and uid in self.pods:
                self._guard(f"check {runtime.pod}", self._check_engine, uid, runtime)
            elif runtime.kind in ("prometheus", "prometheus-operator") and uid in self.pods:
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

    def _ensure_runtime(self, uid: str, pod: k.Obj, models_by_ns: dict[str, tuple[str, ...]]) -> None:
        ns = pod["metadata"]["namespace"]
        runtime = self.runtimes.get(uid)
        if is_router(pod):
            models = models_by_ns.setdefault(ns, self._models(ns))
            if runtime is not None and runtime.models != models:
                self._stop(self.runtimes.pop(uid))  # the gateway learns models at start
                runtime = None
            if runtime is None:
                self._free_address(pod)
                self.runtimes[uid] = self._start_router(pod, models)
        elif runtime is None:
            self._free_address(pod)
            if monitoring.is_operator(pod):
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

    def _check_engine(self, uid: str, runtime: Runtime) -> None:
        alive = runtime.process.alive()
        if not alive:
            log.warning("engine for %s/%s exited; restarting (log %s)", runtime.namespace, runtime.pod,
                        runtime.process.spec.log)
            runtime.process.stop()  # whatever is left of its group still holds the port
            runtime.process.start()
        healthy = alive and self._healthy(runtime)
        if healthy != runtime.ready:
            self._mark_ready(runtime, self.pods[uid], healthy)

    def _sync_gateways(self) -> None:
        for runtime in self.runtimes.values():
            if runtime.kind != "router" or not runtime.process.alive():
                continue
            selector, _ = router_settings(self.pods[runtime.uid])
            desired: dict[str, str | None] = {}
            for uid, engine in self.runtimes.items():
                pod = self.pods.get(uid)
                if (engine.kind == "engine" and engine.ready and engine.namespace == runtime.namespace and pod
                        and self._runnable(pod) and selector_matches(selector, _labels(pod))):
                    desired[f"http://{engine.address}:{ENGINE_PORT}"] = served_model(container_argv(pod))
            base = f"http://{runtime.address}:{ROUTER_PORT}/admin/engines"
            try:
                for url in runtime.engines - set(desired):
                    self.http.request("DELETE", base, json={"url": url})
                for url in set(desired) - runtime.engines:
                    self.http.post(base, json={"url": url, "model": desired[url]}).raise_for_status()
                runtime.engines = set(desired)
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
                if not selector_matches(svc["spec"].get("selector") or {}, _labels(pod)):
                    continue
                for port in svc["spec"].get("ports") or []:
                    if port.get("name") not in MONITOR_PORTS:
                        continue
                    groups.append({
                        "targets": [f"{runtime.address}:{ENGINE_PORT}"],
                        "labels": {"job": svc["metadata"]["name"], "namespace": runtime.namespace,
                                   "service": svc["metadata"]["name"], "pod": runtime.pod,
                                   "endpoint": port["name"], "container": pod["spec"]["containers"][0]["name"],
                                   "instance": f"{pod['status']['podIP']}:{ENGINE_PORT}"},
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
            waiting = any(r.kind in ("engine", "prometheus") and not r.ready for r in self.runtimes.values())
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
