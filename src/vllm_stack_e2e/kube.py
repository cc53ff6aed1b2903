"""Kubernetes API access: the one module that speaks to the API server (through the official
`kubernetes` client), its watches as sources for the wait engine (`waits`), and the small
vocabulary the tests use for the objects they read (conditions, replicas, summaries)."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from . import waits

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
SERVICEMONITOR = ("monitoring.coreos.com/v1", "ServiceMonitor")
PROMETHEUS = ("monitoring.coreos.com/v1", "Prometheus")

def hpa_reads_external_metric(obj: Obj | None) -> bool:
    """An HPA holding a value for an external metric. A failed fetch leaves an entry in
    status.currentMetrics too (type "", no value), so a non-empty list is not a reading."""
    metrics = ((obj or {}).get("status") or {}).get("currentMetrics") or []
    return any(((m.get("external") or {}).get("current")) for m in metrics)


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
            return res.get(namespace=namespace, label_selector=label_selector,
                           field_selector=field_selector).to_dict()["items"]
        except (ResourceNotFoundError, NotFoundError):  # no such kind (a CRD absent, or removed since discovery)
            return []

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

    def scale(self, api_version: str, kind: str, name: str, namespace: str | None, replicas: int) -> None:
        """Set spec.replicas through the scale subresource (as `kubectl scale` and the HPA do)."""
        res = self.resource(api_version, kind).subresources["scale"]
        res.patch(body={"spec": {"replicas": replicas}}, name=name, namespace=namespace,
                  content_type="application/merge-patch+json")

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object; False when it was already gone."""
        try:
            self.resource(api_version, kind).delete(name=name, namespace=namespace)
            return True
        except (NotFoundError, ResourceNotFoundError):
            return False

    def annotate(self, api_version: str, kind: str, name: str, namespace: str | None,
                 annotations: dict[str, str | None]) -> Obj:
        """`kubectl annotate` (a merge patch): each key set to its value, or removed when None."""
        body = {"metadata": {"annotations": annotations}}
        return self.resource(api_version, kind).patch(name=name, namespace=namespace, body=body,
                                                      content_type="application/merge-patch+json").to_dict()

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: Obj) -> Obj:
        """A JSON merge patch (`kubectl patch --type merge`): keys set, or removed when None."""
        return self.resource(api_version, kind).patch(name=name, namespace=namespace, body=body,
                                                      content_type="application/merge-patch+json").to_dict()

    def delete_now(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete with grace period 0 (what a kubelet does once a pod's containers are gone)."""
        try:
            self.resource(api_version, kind).delete(name=name, namespace=namespace,
                                                    body={"apiVersion": "v1", "kind": "DeleteOptions",
                                                          "gracePeriodSeconds": 0})
            return True
        except (NotFoundError, ResourceNotFoundError):
            return False

    def raw(self, path: str) -> Obj:
        """GET an API path (e.g. /apis/external.metrics.k8s.io/v1beta1) and parse the JSON."""
        result = self.dynamic.request("GET", path)
        return result.to_dict() if hasattr(result, "to_dict") else dict(result)

    def wait_answers(self, path: str, budget: float, description: str) -> Obj:
        """GET `path` until it answers 200 (the aggregator can lag behind APIService Available)."""
        seen = waits.until(waits.polling(lambda: self.raw(path)), lambda _answer: True, budget, description,
                           show=lambda _answer: "answered")
        seen.shown = f"GET {path}: {seen.shown}"
        return seen.expect()  # type: ignore[return-value]

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        """GET `path` on a pod's port through the API server's pod proxy; the body as text."""
        return str(client.CoreV1Api(self.api_client).connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}", namespace, path.lstrip("/"), _request_timeout=5))

    def events(self, namespace: str, involved_name: str | None = None) -> list[Obj]:
        selector = f"involvedObject.name={involved_name}" if involved_name else None
        return self.list(*EVENT, namespace=namespace, field_selector=selector)

    def pod_logs(self, namespace: str, pod: str, container: str | None = None, tail: int = 200) -> str:
        try:
            return client.CoreV1Api(self.api_client).read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            return f"<logs unavailable: {getattr(exc, 'reason', exc)}>"

    # ---- waits (through the one wait engine, vllm_stack_e2e.waits) ----------------------
    def states(self, api_version: str, kind: str, name: str, namespace: str | None,
               since: Obj | None = None) -> waits.Source[Obj | None]:
        """A watch on one object as a wait source: its state now, then every change (None when absent).
        `since` (a state read earlier): start from it instead, and replay every change the API server
        wrote after it, in its order — what happened while the caller was busy is not lost."""
        res = self.resource(api_version, kind)

        def follow(deadline: float) -> Iterator[Obj | None]:
            current = since if since is not None else self.get(api_version, kind, name, namespace)
            yield current
            while (remaining := deadline - time.monotonic()) > 0:
                rv = (current or {}).get("metadata", {}).get("resourceVersion")
                try:
                    for event in self.dynamic.watch(res, namespace=namespace, field_selector=f"metadata.name={name}",
                                                    resource_version=rv, timeout=max(1, int(min(remaining, 30)))):
                        current = None if event["type"] == "DELETED" else event["raw_object"]
                        yield current
                        if time.monotonic() >= deadline:
                            return
                except ApiException as exc:
                    if exc.status != 410:  # 410: resourceVersion too old — read again and watch on
                        raise
                    current = self.get(api_version, kind, name, namespace)
                    yield current

        return follow

    def list_states(self, api_version: str, kind: str, namespace: str | None,
                    label_selector: str | None) -> waits.Source[list[Obj]]:
        """A watch on a labelled set of objects as a wait source: the items now, then after every change."""
        res = self.resource(api_version, kind)

        def follow(deadline: float) -> Iterator[list[Obj]]:
            while True:
                listing = res.get(namespace=namespace, label_selector=label_selector)
                items = {o["metadata"]["name"]: o for o in listing.to_dict()["items"]}
                yield list(items.values())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    for event in self.dynamic.watch(res, namespace=namespace, label_selector=label_selector,
                                                    resource_version=listing.metadata.resourceVersion,
                                                    timeout=max(1, int(min(remaining, 30)))):
                        obj = event["raw_object"]
                        if event["type"] == "DELETED":
                            items.pop(obj["metadata"]["name"], None)
                        else:
                            items[obj["metadata"]["name"]] = obj
                        yield list(items.values())
                        if time.monotonic() >= deadline:
                            return
                    if time.monotonic() >= deadline:
                        return
                except ApiException as exc:
                    if exc.status != 410:
                        raise

        return follow

    def reach(self, api_version: str, kind: str, name: str, namespace: str | None,
              predicate: Predicate, budget: float, description: str = "",
              hint: str = "", context: Callable[[], str] | None = None) -> waits.Seen[Obj | None]:
        """Watch one object until `predicate(obj)` holds, within `budget` seconds: the observation.
        Without a description, a `waits.Check` predicate's words make one (`Deployment d spec.replicas ≥ 2`)."""
        where = f"{kind} {namespace + '/' if namespace else ''}{name}"
        description = description or f"{kind} {name} {predicate}"
        seen = waits.until(self.states(api_version, kind, name, namespace), predicate, budget, description,
                           show=brief, hint=hint, context=context)
        seen.shown = f"{where}: {summarize(seen.state)}"
        return seen

    def wait_for(self, api_version: str, kind: str, name: str, namespace: str | None,
                 predicate: Predicate, budget: float, description: str = "",
                 hint: str = "", context: Callable[[], str] | None = None) -> Obj | None:
        """`reach`, for a state the caller needs before it can act: WaitTimeout after `budget`
        seconds, naming what was seen last."""
        return self.reach(api_version, kind, name, namespace, predicate, budget, description, hint, context).expect()

    def reach_list(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None,
                   predicate: Callable[[list[Obj]], bool], budget: float, description: str,
                   hint: str = "") -> waits.Seen[list[Obj]]:
        """Watch a labelled set of objects until `predicate(items)` holds: the observation."""
        def show(items: list[Obj]) -> str:
            return "; ".join(f"{o['metadata']['name']}: {summarize(o)}" for o in items) or f"no {kind}s"

        seen = waits.until(self.list_states(api_version, kind, namespace, label_selector), predicate, budget,
                           description, show=show, hint=hint)
        seen.shown = f"{kind}s ({label_selector}): {seen.shown}"
        return seen

    def wait_for_list(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None,
                      predicate: Callable[[list[Obj]], bool], budget: float, description: str,
                      hint: str = "") -> list[Obj]:
        """`reach_list` for a state the caller needs to act: WaitTimeout otherwise."""
        return self.reach_list(api_version, kind, namespace, label_selector, predicate, budget, description,
                               hint).expect()

    def hold(self, api_version: str, kind: str, name: str, namespace: str | None,
             predicate: Predicate, window: float, description: str = "", since: Obj | None = None
             ) -> waits.Held[Obj | None]:
        """Watch one object for `window` seconds: whether `predicate` held all along, and every state
        (from `since`, a state read earlier, when given: see `states`)."""
        held = waits.holds(self.states(api_version, kind, name, namespace, since), predicate, window,
                           description or f"{kind} {name} {predicate}", show=brief)
        if not held.held:
            held.breaking = summarize(held.history[-1][1]) if held.history else held.breaking
        return held

    def wait_not_terminating(self, name: str, budget: float = 120) -> None:
        """Before (re)creating a namespace: one that is still being deleted refuses new objects."""
        self.wait_for(*NAMESPACE, name, None,
                      lambda o: o is None or not (o.get("metadata") or {}).get("deletionTimestamp"), budget,
                      f"Namespace {name} not terminating")

    def wait_gone(self, api_version: str, kind: str, name: str, namespace: str | None, budget: float) -> None:
        self.wait_for(api_version, kind, name, namespace, GONE, budget)


# ---- typed views over the objects the tutorial talks about ----------------------------------
def api_time(stamp: Any) -> float:
    """An API server timestamp (RFC 3339, `…Z`) as seconds since the epoch."""
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class View:
    """A read-only view of one API object as the watch last gave it (None: absent)."""

    obj: Obj | None

    @property
    def exists(self) -> bool:
        return self.obj is not None

    @property
    def spec(self) -> Obj:
        return (self.obj or {}).get("spec") or {}

    @property
    def status(self) -> Obj:
        return (self.obj or {}).get("status") or {}

    def age(self) -> float:
        """Seconds since metadata.creationTimestamp (0 without one)."""
        stamp = ((self.obj or {}).get("metadata") or {}).get("creationTimestamp")
        return max(time.time() - api_time(stamp), 0.0) if stamp else 0.0

    @property
    def generation(self) -> int | None:
        """metadata.generation: raised by the API server with every change of the spec it writes."""
        value = ((self.obj or {}).get("metadata") or {}).get("generation")
        return int(value) if value is not None else None

    def condition(self, ctype: str) -> Obj | None:
        return condition(self.obj, ctype)

    def condition_is(self, ctype: str, status: str = "True") -> bool:
        return condition_is(self.obj, ctype, status)

    def __str__(self) -> str:
        return summarize(self.obj)


class Deployment(View):
    @property
    def spec_replicas(self) -> int:
        """spec.replicas (0 when absent: a deleted Deployment runs nothing)."""
        return int(self.spec.get("replicas") or 0)

    @property
    def ready_replicas(self) -> int:
        return int(self.status.get("readyReplicas") or 0)

    def flag(self, name: str) -> str | None:
        """A flag's value in the first container's command and args (`--name V` or `--name=V`)."""
        containers = ((self.spec.get("template") or {}).get("spec") or {}).get("containers") or []
        words = [str(w) for c in containers[:1] for w in (c.get("command") or []) + (c.get("args") or [])]
        for i, word in enumerate(words):
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
        return None


class ScaledObject(View):
    @property
    def ready(self) -> bool:
        return self.condition_is("Ready")

    @property
    def triggers(self) -> list[Obj]:
        return list(self.spec.get("triggers") or [])

    @property
    def polling_interval(self) -> float:
        return float(self.spec.get("pollingInterval", 30))  # KEDA's default (docs/keda.md)

    @property
    def cooldown_period(self) -> float:
        return float(self.spec.get("cooldownPeriod", 300))  # KEDA's default (docs/keda.md)

    @property
    def fallback(self) -> Obj | None:
        return self.spec.get("fallback")

    @property
    def max_replicas(self) -> int:
        return int(self.spec.get("maxReplicaCount", 100))  # KEDA's default (docs/keda.md)


    @property
    def min_replica_count(self) -> int:
        return int(self.spec.get("minReplicaCount", 1))  # KEDA's default (docs/keda.md)

    @property
    def threshold(self) -> float:
        """The first trigger's threshold (the page's queue trigger)."""
        return float(self.triggers[0]["metadata"]["threshold"])

    @property
    def query(self) -> str:
        """The first trigger's Prometheus query."""
        return str(self.triggers[0]["metadata"]["query"])


class Hpa(View):
    @property
    def min_replicas(self) -> int | None:
        return self.spec.get("minReplicas")

    @property
    def behavior(self) -> Obj:
        return self.spec.get("behavior") or {}

    @property
    def scale_down_window(self) -> float:
        """The scale-down stabilization window: the behavior's, else Kubernetes' default 300 s."""
        return float((self.behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", 300))

    @property
    def desired_replicas(self) -> int:
        """status.desiredReplicas: what its last sync decided (after stabilization and policies)."""
        return int(self.status.get("desiredReplicas") or 0)

    @property
    def remembers_more_than(self) -> int:
        """The most replicas kube-controller-manager may still hold among this HPA's recent
        recommendations. Its last decision bounds them: a scale-down takes the maximum of the
        recommendations within the stabilization window, and no policy goes below that maximum, so
        an HPA that last decided N replicas holds no recommendation above N in the window that ended
        then (a scale-up decision is at least its recommendation). 0 for an HPA that never synced."""
        return self.desired_replicas

    def recommends_since(self) -> float | None:
        """Since when (wall clock) it has stopped recording recommendations, or None while it
        records one every sync. kube-controller-manager stores a recommendation only on a sync that
        computed one: a sync whose metric failed, or whose target sits at zero, returns before it —
        and sets ScalingActive=False, so that condition's transition time bounds the last one."""
        cond = self.condition("ScalingActive")
        if cond is None or cond.get("status") != "False" or not cond.get("lastTransitionTime"):
            return None
        return api_time(cond["lastTransitionTime"])


V = TypeVar("V", bound=View)


@dataclass(frozen=True)
class Handle(Generic[V]):
    """One named object of the stack (the engine Deployment, its ScaledObject, its HPA): the kube
    calls with its kind, name and namespace filled in, and its reads as a typed view (`view`)."""

    kube: Kube
    kind: tuple[str, str]  # api_version, kind
    name: str
    namespace: str | None
    view: type[V]

    def get(self) -> V:
        """The object now, as its typed view (`.exists` False when absent; `.obj` the raw object)."""
        return self.view(self.kube.get(*self.kind, self.name, self.namespace))

    def reach(self, predicate: Predicate, budget: float, description: str = "", hint: str = "",
              context: Callable[[], str] | None = None) -> waits.Seen[Obj | None]:
        """`Kube.reach` on this object: the observation."""
        return self.kube.reach(*self.kind, self.name, self.namespace, predicate, budget, description, hint, context)

    def wait_for(self, predicate: Predicate, budget: float, description: str = "", hint: str = "") -> Obj | None:
        """`Kube.wait_for` on this object: WaitTimeout after `budget` seconds."""
        return self.kube.wait_for(*self.kind, self.name, self.namespace, predicate, budget, description, hint)

    def hold(self, predicate: Predicate, window: float, description: str = "", since: Obj | None = None
             ) -> waits.Held[Obj | None]:
        """`Kube.hold` on this object: whether `predicate` held for `window` seconds."""
        return self.kube.hold(*self.kind, self.name, self.namespace, predicate, window, description, since)

    def scale(self, replicas: int) -> None:
        self.kube.scale(*self.kind, self.name, self.namespace, replicas)

    def annotate(self, annotations: dict[str, str | None]) -> Obj:
        return self.kube.annotate(*self.kind, self.name, self.namespace, annotations)

    def delete(self) -> bool:
        return self.kube.delete(*self.kind, self.name, self.namespace)


# ---- predicates with words, for waits on these objects ------------------------------------------
_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "≥": lambda a, b: a >= b, "≤": lambda a, b: a <= b}


def field_owners(obj: Obj | None, path: tuple[str, ...]) -> list[str]:
    """Who owns a field, from the object's managedFields (server-side apply's record): each
    manager as `name` (+ `/subresource`) and its operation, e.g. `kube-controller-manager/scale Update`."""
    owners = []
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for part in path:
            node = node.get(f"f:{part}") if isinstance(node, dict) else None
        if node is not None:
            sub = f"/{entry['subresource']}" if entry.get("subresource") else ""
            owners.append(f"{entry.get('manager', '?')}{sub} {entry.get('operation', '')}".strip())
    return owners


def spec_replicas(op: str, count: int) -> waits.Check[Obj | None]:
    """A Deployment's spec.replicas compared with `count` (`op`: ==, ≥, ≤)."""
    return waits.Check(lambda d: _OPS[op](Deployment(d).spec_replicas, count), f"spec.replicas {op} {count}")


def ready_replicas_at_least(count: int) -> waits.Check[Obj | None]:
    return waits.Check(lambda d: Deployment(d).ready_replicas >= count, f"{count}+ ready replicas")


def has_condition(ctype: str, status: str = "True") -> waits.Check[Obj | None]:
    return waits.Check(lambda o: condition_is(o, ctype, status), f"{ctype}={status}")


GONE: waits.Check[Obj | None] = waits.Check(lambda o: o is None, "deleted")


# ---- named waits used across steps -----------------------------------------------------
def deployment_available(obj: Obj | None) -> bool:
    return condition_is(obj, "Available")


def ready_replicas(obj: Obj | None) -> int:
    return int(((obj or {}).get("status") or {}).get("readyReplicas") or 0)


def pod_ready(obj: Obj) -> bool:
    return condition_is(obj, "Ready") and obj.get("metadata", {}).get("deletionTimestamp") is None
