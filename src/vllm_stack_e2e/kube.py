"""Kubernetes API access and the named, watch-based waits the tests use.

This is the one module that speaks to the API server (through the official `kubernetes`
client) and that runs `kubectl port-forward`. Every wait has a budget and, when it runs
out, raises `WaitTimeout` with what it last saw.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from . import waits
from .errors import CommandError, HarnessError, WaitTimeout

Obj = dict[str, Any]
Predicate = Callable[[Obj | None], bool]
FIELD_MANAGER = "vllm-stack-e2e"

# api_version, kind for the objects the harness talks about most.
DEPLOYMENT = ("apps/v1", "Deployment")
POD = ("v1", "Pod")
SERVICE = ("v1", "Service")
NAMESPACE = ("v1", "Namespace")
SERVICEACCOUNT = ("v1", "ServiceAccount")
NODE = ("v1", "Node")
EVENT = ("v1", "Event")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
SCALEDOBJECT = ("keda.sh/v1alpha1", "ScaledObject")
APISERVICE = ("apiregistration.k8s.io/v1", "APIService")
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")

WaitObserver = Callable[[str, str, float, float], None]  # description, brief state, elapsed, budget
_observers: list[WaitObserver] = []


def add_wait_observer(observer: WaitObserver) -> None:
    """Register a callback (description, last-seen summary, elapsed s, budget s) for live progress."""
    _observers.append(observer)


def _notify(description: str, seen: str, elapsed: float, budget: float) -> None:
    for observer in _observers:
        observer(description, seen, elapsed, budget)


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    """The status condition of `ctype` on an object, or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def condition_is(obj: Obj | None, ctype: str, status: str = "True") -> bool:
    cond = condition(obj, ctype)
    return cond is not None and cond.get("status") == status


def brief(obj: Obj | None) -> str:
    """The shortest account of an object's state, for live progress lines."""
    if obj is not None and obj.get("kind") == "Deployment":
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return f"now {spec.get('replicas')} (ready {status.get('readyReplicas', 0)})"
    return summarize(obj)


def summarize(obj: Obj | None) -> str:
    """A one-line account of an object's state, for wait messages and timelines."""
    if obj is None:
        return "absent"
    kind = obj.get("kind", "")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conds = ", ".join(
        f"{c.get('type')}={c.get('status')}" + (f" {c.get('reason')}" if c.get("reason") else "")
        + (f" \"{c.get('message')}\"" if c.get("message") and c.get("status") != "True" else "")
        for c in status.get("conditions") or []
    )
    if kind == "Deployment":
        return (f"spec.replicas={spec.get('replicas')} ready={status.get('readyReplicas', 0)} "
                f"available={status.get('availableReplicas', 0)}" + (f" [{conds}]" if conds else ""))
    if kind == "HorizontalPodAutoscaler":
        metrics = []
        for m in status.get("currentMetrics") or []:
            ext = m.get("external") or {}
            cur = ext.get("current") or {}
            metrics.append(f"{(ext.get('metric') or {}).get('name')}={cur.get('averageValue', cur.get('value'))}")
        return (f"current={status.get('currentReplicas')} desired={status.get('desiredReplicas')} "
                f"min={spec.get('minReplicas')} max={spec.get('maxReplicas')} metrics=[{' '.join(metrics)}]"
                + (f" [{conds}]" if conds else ""))
    if kind == "Namespace":
        return f"phase={status.get('phase')}"
    if kind == "Pod":
        return f"phase={status.get('phase')} podIP={status.get('podIP')}" + (f" [{conds}]" if conds else "")
    return f"[{conds}]" if conds else json.dumps(status)[:200]


@dataclass
class Kube:
    """A connection to one cluster, from a kubeconfig file (never logged)."""

    kubeconfig: Path
    context: str | None = None

    def __post_init__(self) -> None:
        self.api_client = config.new_client_from_config(str(self.kubeconfig), context=self.context)
        self.dynamic = DynamicClient(self.api_client)

    # ---- plain access -------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def server_version(self) -> str:
        return client.VersionApi(self.api_client).get_code().git_version

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]:
        try:
            res = self.resource(api_version, kind)
        except ResourceNotFoundError:
            return []
        return res.get(namespace=namespace, label_selector=label_selector, field_selector=field_selector).to_dict()["items"]

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply of one object (create or update)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace") if res.namespaced else None
        return res.server_side_apply(body=obj, name=obj["metadata"]["name"], namespace=namespace,
                                     field_manager=FIELD_MANAGER, force_conflicts=True).to_dict()

    def create_namespace(self, obj: Obj, budget: float = 60) -> Obj:
        """Apply a Namespace and return once its `default` ServiceAccount exists.

        The controller-manager creates that ServiceAccount a moment after the namespace; until it
        does, the API refuses a pod that names none (403 "serviceaccount default not found").
        Controllers retry such a refusal; a pod the harness creates itself would fail."""
        created = self.apply(obj)
        name = obj["metadata"]["name"]
        self.wait_for(*SERVICEACCOUNT, "default", name, lambda sa: sa is not None, budget,
                      f"Namespace {name}'s default ServiceAccount",
                      hint="kube-controller-manager's serviceaccount controller creates it: is it running?")
        return created

    def apply_all(self, objs: list[Obj]) -> None:
        for obj in objs:
            self.apply(obj)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Obj) -> None:
        res = self.resource(api_version, kind).subresources["status"]
        res.patch(body=patch, name=name, namespace=namespace, content_type="application/merge-patch+json")

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object; False when it was already gone."""
        try:
            self.resource(api_version, kind).delete(name=name, namespace=namespace)
            return True
        except (NotFoundError, ResourceNotFoundError):
            return False

    def raw(self, path: str) -> Obj:
        """GET an API path (e.g. /apis/external.metrics.k8s.io/v1beta1) and parse the JSON."""
        result = self.dynamic.request("GET", path)
        return result.to_dict() if hasattr(result, "to_dict") else dict(result)

    @waits.timed
    def wait_answers(self, path: str, budget: float, description: str) -> Obj:
        """GET `path` until it answers 200 (the aggregator can lag behind APIService Available)."""
        last: list[str] = []

        def attempt() -> Obj:
            try:
                return self.raw(path)
            except Exception as exc:
                last[:] = [f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]
                raise

        try:
            for retry in Retrying(stop=stop_after_delay(budget), wait=wait_fixed(0.5), reraise=True):
                with retry:
                    return attempt()
        except Exception:
            pass
        raise WaitTimeout(f"{description}: GET {path} did not answer within {budget:.0f}s; last: {last[0] if last else '?'}")

    def events(self, namespace: str, involved_name: str | None = None) -> list[Obj]:
        selector = f"involvedObject.name={involved_name}" if involved_name else None
        return self.list(*EVENT, namespace=namespace, field_selector=selector)

    def pod_logs(self, namespace: str, pod: str, container: str | None = None, tail: int = 200) -> str:
        try:
            return client.CoreV1Api(self.api_client).read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            return f"<logs unavailable: {getattr(exc, 'reason', exc)}>"

    # ---- waits --------------------------------------------------------------------
    @waits.timed
    def wait_for(self, api_version: str, kind: str, name: str, namespace: str | None,
                 predicate: Predicate, budget: float, description: str,
                 hint: str = "", context: Callable[[], str] | None = None) -> Obj | None:
        """Watch one object until `predicate(obj)` holds; WaitTimeout after `budget` seconds.
        `context` adds a fact to the live progress line (e.g. the queue length)."""
        res = self.resource(api_version, kind)
        start = time.monotonic()
        last: Obj | None = None

        def progress(obj: Obj | None) -> str:
            extra = ""
            if context is not None:
                try:
                    extra = f", {context()}"
                except Exception:  # noqa: BLE001 — progress is best effort
                    extra = ""
            return brief(obj) + extra
        while True:
            last = self.get(api_version, kind, name, namespace)
            if predicate(last):
                return last
            elapsed = time.monotonic() - start
            _notify(description, progress(last), elapsed, budget)
            remaining = budget - elapsed
            if remaining <= 0:
                break
            rv = (last or {}).get("metadata", {}).get("resourceVersion")
            try:
                for event in self.dynamic.watch(res, namespace=namespace, field_selector=f"metadata.name={name}",
                                                resource_version=rv, timeout=max(1, int(min(remaining, 30)))):
                    last = None if event["type"] == "DELETED" else event["raw_object"]
                    if predicate(last):
                        return last
                    _notify(description, progress(last), time.monotonic() - start, budget)
                    if time.monotonic() - start >= budget:
                        break
            except ApiException as exc:
                if exc.status != 410:  # 410: resourceVersion too old — re-list and watch again
                    raise
        raise WaitTimeout(
            f"{description}: not reached after {budget:.0f}s; last seen {kind} "
            f"{namespace + '/' if namespace else ''}{name}: {summarize(last)}" + (f" — {hint}" if hint else "")
        )

    @waits.timed
    def wait_for_list(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None,
                      predicate: Callable[[list[Obj]], bool], budget: float, description: str,
                      hint: str = "") -> list[Obj]:
        """Watch a labelled set of objects until `predicate(items)` holds."""
        res = self.resource(api_version, kind)
        start = time.monotonic()
        while True:
            listing = res.get(namespace=namespace, label_selector=label_selector)
            items = {o["metadata"]["name"]: o for o in listing.to_dict()["items"]}
            if predicate(list(items.values())):
                return list(items.values())
            remaining = budget - (time.monotonic() - start)
            if remaining <= 0:
                break
            try:
                for event in self.dynamic.watch(res, namespace=namespace, label_selector=label_selector,
                                                resource_version=listing.metadata.resourceVersion,
                                                timeout=max(1, int(min(remaining, 30)))):
                    obj = event["raw_object"]
                    if event["type"] == "DELETED":
                        items.pop(obj["metadata"]["name"], None)
                    else:
                        items[obj["metadata"]["name"]] = obj
                    if predicate(list(items.values())):
                        return list(items.values())
                    _notify(description, f"{len(items)} {kind}(s)", time.monotonic() - start, budget)
                    if time.monotonic() - start >= budget:
                        break
            except ApiException as exc:
                if exc.status != 410:
                    raise
        seen = "; ".join(f"{n}: {summarize(o)}" for n, o in items.items()) or "none"
        raise WaitTimeout(f"{description}: not reached after {budget:.0f}s; last seen {kind}s ({label_selector}): {seen}"
                          + (f" — {hint}" if hint else ""))

    @waits.timed
    def hold(self, api_version: str, kind: str, name: str, namespace: str | None,
             predicate: Predicate, window: float, description: str) -> list[tuple[float, Obj | None]]:
        """Watch for `window` seconds and fail as soon as `predicate` stops holding.

        "It did not change" is a claim too: returns every state seen, with its time offset.
        """
        res = self.resource(api_version, kind)
        start = time.monotonic()
        current = self.get(api_version, kind, name, namespace)
        seen: list[tuple[float, Obj | None]] = [(0.0, current)]
        if not predicate(current):
            raise AssertionError(f"{description}: false at the start of the {window:.0f}s window: {summarize(current)}")
        while (remaining := window - (time.monotonic() - start)) > 0:
            rv = (current or {}).get("metadata", {}).get("resourceVersion")
            try:
                for event in self.dynamic.watch(res, namespace=namespace, field_selector=f"metadata.name={name}",
                                                resource_version=rv, timeout=max(1, int(min(remaining, 30)))):
                    current = None if event["type"] == "DELETED" else event["raw_object"]
                    offset = time.monotonic() - start
                    if offset > window:
                        break
                    seen.append((offset, current))
                    _notify(description, brief(current), offset, window)
                    if not predicate(current):
                        raise AssertionError(
                            f"{description}: broke after {offset:.0f}s of the {window:.0f}s window: {summarize(current)}")
            except ApiException as exc:
                if exc.status != 410:
                    raise
                current = self.get(api_version, kind, name, namespace)
        return seen

    def wait_gone(self, api_version: str, kind: str, name: str, namespace: str | None, budget: float) -> None:
        self.wait_for(api_version, kind, name, namespace, lambda o: o is None, budget,
                      f"{kind} {name} deleted")


# ---- named waits used across steps -----------------------------------------------------
def deployment_available(obj: Obj | None) -> bool:
    return condition_is(obj, "Available")


def ready_replicas(obj: Obj | None) -> int:
    return int(((obj or {}).get("status") or {}).get("readyReplicas") or 0)


def pod_ready(obj: Obj) -> bool:
    return condition_is(obj, "Ready") and obj.get("metadata", {}).get("deletionTimestamp") is None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PodNotRunning(OSError):
    """kubectl port-forward found no Running pod behind its target (yet)."""


class PortForward:
    """`kubectl port-forward -n NS TARGET LOCAL:REMOTE` on 127.0.0.1, as the tutorial does.

    kubectl forwards to one pod and exits when that pod goes away; `alive()` tells, and the
    caller opens a new one."""

    def __init__(self, kubectl: Path, kubeconfig: Path, namespace: str, target: str, remote_port: int,
                 local_port: int | None = None) -> None:
        self.namespace, self.target, self.remote_port = namespace, target, remote_port
        self.port = local_port or free_port()
        self._cmd = [str(kubectl), "--kubeconfig", str(kubeconfig), "port-forward", "--address", "127.0.0.1",
                     "-n", namespace, target, f"{self.port}:{remote_port}"]
        self._proc: subprocess.Popen[str] | None = None

    def open(self, budget: float = 30.0) -> "PortForward":
        """Start kubectl and wait until it listens. kubectl exits at once when the target's pod
        is not Running yet (just created, or a restarted scheduler has not placed it); that is
        retried within the budget, any other exit is not."""
        self._launch()

        def listening() -> None:
            if self._proc is not None and self._proc.poll() is not None:
                message = self._proc.stderr.read() if self._proc.stderr else "exited"
                if "pod is not running" in message or "not found" in message:
                    self._launch()
                    raise PodNotRunning(message)
                raise HarnessError(message)
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass

        try:
            for attempt in Retrying(stop=stop_after_delay(budget), wait=wait_fixed(0.2),
                                    retry=retry_if_exception_type(OSError), reraise=True):
                with attempt:
                    listening()
        except (OSError, HarnessError) as exc:
            self.close()
            raise CommandError(
                f"kubectl port-forward -n {self.namespace} {self.target} {self.port}:{self.remote_port} did not "
                f"listen within {budget:.0f}s: {str(exc).strip()[-300:]} — check that {self.target} has a Running pod"
            ) from exc
        return self

    def _launch(self) -> None:
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@contextlib.contextmanager
def port_forward(kubectl: Path, kubeconfig: Path, namespace: str, target: str, remote_port: int,
                 local_port: int | None = None, budget: float = 30.0) -> Iterator[int]:
    """A PortForward for the duration of a block; yields the local port."""
    forward = PortForward(kubectl, kubeconfig, namespace, target, remote_port, local_port).open(budget)
    try:
        yield forward.port
    finally:
        forward.close()

def describe(kubectl: Path, kubeconfig: Path, kind: str, name: str, namespace: str | None = None) -> str:
    """`kubectl describe KIND NAME` text, for failure evidence (errors become the text)."""
    cmd = [str(kubectl), "--kubeconfig", str(kubeconfig), "describe", kind, name]
    if namespace:
        cmd += ["-n", namespace]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout if proc.returncode == 0 else f"<kubectl describe {kind} {name} failed: {proc.stderr.strip()}>"
