"""The data plane's pure helpers (which pods are engines or routers, what they serve, how the
router selects engines) and the Prometheus target file it writes.

The target-file test uses a fake API client (`FakeKube`) and stand-in processes, because unit
tests run without an API server; everything else here is pure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.lab import paths as p
from vllm_stack_e2e.lab.dataplane import (
    DataPlane,
    Runtime,
    discovered,
    is_engine,
    is_router,
    router_settings,
    service_selects,
)
from vllm_stack_e2e.lab.podspec import argv as container_argv

Obj = dict[str, Any]
ENGINE_LABELS = {"app.kubernetes.io/component": "serving-engine", "environment": "test", "release": "test",
                 "model": "llama3"}
ROUTER_LABELS = {"environment": "router", "release": "router"}


def pod_with(command: list[str] | None = None, args: list[str] | None = None, labels: dict[str, str] | None = None,
             name: str = "p", namespace: str = "default", pod_ip: str = "10.244.0.5") -> Obj:
    container: Obj = {"name": "c", "image": "vllm/vllm-openai:latest"}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}},
            "spec": {"containers": [container, {"name": "sidecar", "command": ["ignored"]}]},
            "status": {"phase": "Running", "podIP": pod_ip}}


# ---- selectors and pod kinds ---------------------------------------------------------------------
def test_a_service_selects_by_its_map_and_an_empty_one_selects_nothing() -> None:
    assert service_selects({"environment": "test", "release": "test"}, ENGINE_LABELS)
    assert not service_selects({"environment": "test", "release": "prod"}, ENGINE_LABELS)
    assert not service_selects({}, {"anything": "x"})
    assert not service_selects(None, ENGINE_LABELS)


def test_container_argv_is_command_then_args_of_the_first_container() -> None:
    assert container_argv(pod_with(["vllm", "serve"], ["m", "--port", "8000"])) == ["vllm", "serve", "m", "--port", "8000"]
    assert container_argv(pod_with(None, ["--host", "0.0.0.0"])) == ["--host", "0.0.0.0"]
    assert container_argv(pod_with()) == []


def test_engine_and_router_pods_are_told_apart_by_their_labels() -> None:
    engine, router, other = pod_with(labels=ENGINE_LABELS), pod_with(labels=ROUTER_LABELS), pod_with(labels={"app": "x"})
    assert is_engine(engine) and not is_router(engine)
    assert is_router(router) and not is_engine(router)
    assert not is_engine(other) and not is_router(other)
    no_labels = pod_with()
    no_labels["metadata"]["labels"] = None
    assert not is_engine(no_labels) and not is_router(no_labels)


# ---- router settings and discovery -------------------------------------------------------------------
CHART_ROUTER_ARGS = ["--host", "0.0.0.0", "--port", "8000", "--service-discovery", "k8s", "--k8s-namespace", "ns",
                     "--k8s-service-discovery-type", "pod-ip", "--k8s-label-selector", "environment=test,release=test",
                     "--routing-logic", "roundrobin"]


def test_router_settings_come_from_the_router_containers_arguments() -> None:
    settings = router_settings(pod_with(None, CHART_ROUTER_ARGS, labels=ROUTER_LABELS))
    assert (settings.port, settings.namespace, settings.label_selector, settings.k8s_port, settings.routing_logic) \
        == (8000, "ns", "environment=test,release=test", 8000, "roundrobin")
    by_command = router_settings(pod_with(["vllm-router", *CHART_ROUTER_ARGS], labels=ROUTER_LABELS))
    assert by_command == settings, "a command's first word is the entrypoint, the rest its arguments"


def test_router_defaults_are_the_routers_own() -> None:
    settings = router_settings(pod_with(None, ["--service-discovery", "k8s", "--routing-logic", "roundrobin"]))
    assert (settings.port, settings.namespace, settings.label_selector, settings.k8s_port) == (8001, "default", "", 8000)


def _ready(pod: Obj, ready: bool = True) -> Obj:
    pod["status"]["containerStatuses"] = [{"name": "c", "ready": ready}]
    return pod


def test_discovery_takes_ready_selected_pods_of_the_routers_namespace() -> None:
    settings = router_settings(pod_with(None, CHART_ROUTER_ARGS))
    pods = [
        _ready(pod_with(labels=ENGINE_LABELS, name="ready", namespace="ns", pod_ip="10.244.0.7")),
        _ready(pod_with(labels=ENGINE_LABELS, name="starting", namespace="ns", pod_ip="10.244.0.8"), ready=False),
        _ready(pod_with(labels=ENGINE_LABELS, name="elsewhere", namespace="other", pod_ip="10.244.0.9")),
        _ready(pod_with(labels={"environment": "prod", "release": "test"}, name="unselected", namespace="ns")),
        _ready(pod_with(labels=ENGINE_LABELS, name="leaving", namespace="ns", pod_ip="10.244.0.10")),
        pod_with(labels=ENGINE_LABELS, name="no-status", namespace="ns", pod_ip="10.244.0.11"),
    ]
    pods[4]["metadata"]["deletionTimestamp"] = "2026-11-30T10:00:00Z"
    assert discovered(settings, pods) == {"ready": "http://127.244.0.7:8000"}


def test_discovery_with_no_selector_takes_every_ready_pod_and_uses_k8s_port() -> None:
    settings = router_settings(pod_with(None, ["--service-discovery", "k8s", "--routing-logic", "roundrobin",
                                               "--k8s-namespace", "ns", "--k8s-port", "9000"]))
    pods = [_ready(pod_with(labels={"app": "anything"}, name="a", namespace="ns", pod_ip="10.244.0.7")),
            _ready(pod_with(labels={}, name="b", namespace="ns", pod_ip="10.244.0.8"))]
    assert discovered(settings, pods) == {"a": "http://127.244.0.7:9000", "b": "http://127.244.0.8:9000"}


def test_set_based_selector_in_discovery() -> None:
    settings = router_settings(pod_with(None, ["--service-discovery", "k8s", "--routing-logic", "roundrobin",
                                               "--k8s-namespace", "ns", "--k8s-label-selector",
                                               "environment in (test,canary),!excluded"]))
    pods = [_ready(pod_with(labels={"environment": "canary"}, name="a", namespace="ns", pod_ip="10.244.0.7")),
            _ready(pod_with(labels={"environment": "test", "excluded": ""}, name="b", namespace="ns", pod_ip="10.244.0.8"))]
    assert list(discovered(settings, pods)) == ["a"]


def test_static_discovery_feeds_nothing_from_pods() -> None:
    settings = router_settings(pod_with(None, ["--service-discovery", "static", "--routing-logic", "roundrobin",
                                               "--static-backends", "http://10.244.0.7:8000", "--static-models", "m"]))
    assert discovered(settings, [_ready(pod_with(labels=ENGINE_LABELS, namespace="default"))]) == {}


@pytest.mark.parametrize(("args", "complaint"), [
    (["--routing-logic", "roundrobin"], "--service-discovery must be provided"),
    (["--service-discovery", "k8s"], "--routing-logic must be provided"),
    (["--service-discovery", "k8s", "--routing-logic", "session"], "Session key must be provided"),
    (["--service-discovery", "static", "--routing-logic", "roundrobin"], "Static backends must be provided"),
    (["--service-discovery", "static", "--routing-logic", "roundrobin", "--static-backends", "http://a,http://b",
      "--static-models", "m"], "one model per backend"),
])
def test_router_arguments_the_router_refuses(args: list[str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        router_settings(pod_with(None, args))


# ---- Prometheus targets ------------------------------------------------------------------------------
class FakeKube:
    """Stands in for kube.Kube (no API server in unit tests): list() answers from a dict, and
    records what was asked."""

    def __init__(self, services: dict[str, list[Obj]]) -> None:
        self.services = services
        self.calls: list[tuple[str, str, str | None]] = []

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        self.calls.append((api_version, kind, namespace))
        assert (api_version, kind) == k.SERVICE, f"the target writer only lists Services, not {kind}"
        return self.services.get(namespace or "", [])


class StandIn:
    """Stands in for a ManagedProcess: only alive() is used here."""

    def __init__(self, alive: bool = True) -> None:
        self.running = alive

    def alive(self) -> bool:
        return self.running


HELM = {"app.kubernetes.io/managed-by": "Helm"}


def service(name: str, labels: dict[str, str], selector: dict[str, str], port_names: list[str]) -> Obj:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"selector": selector, "ports": [{"name": n, "port": 80, "targetPort": 8000} for n in port_names]}}


def plane_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services: dict[str, list[Obj]],
               pods: list[tuple[Obj, str, bool]]) -> DataPlane:
    """A DataPlane without its constructor (which would connect to the lab's API server)."""
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path))
    plane = object.__new__(DataPlane)
    plane.lab = "vse-unit"
    plane.paths = p.LabPaths("vse-unit")
    plane.paths.ensure()
    plane.kube = FakeKube(services)  # type: ignore[assignment]
    plane._targets_written = None
    plane.pods = {}
    plane.runtimes = {}
    for pod, kind, alive in pods:
        meta = pod["metadata"]
        plane.pods[meta["uid"]] = pod
        plane.runtimes[meta["uid"]] = Runtime(uid=meta["uid"], kind=kind, namespace=meta["namespace"], pod=meta["name"],
                                              address=p.pod_loopback(pod["status"]["podIP"]),
                                              process=StandIn(alive))  # type: ignore[arg-type]
    return plane


def targets(plane: DataPlane) -> list[Obj]:
    return json.loads(plane.paths.prometheus_targets.read_text())


ENGINE_SVC = service("vllm-llama3-engine-service", {**HELM, "environment": "test", "release": "test"},
                     {"environment": "test", "release": "test", "model": "llama3"},
                     ["service-port", "zmq-port", "ucx-port"])
ROUTER_SVC = service("vllm-router-service", {**HELM, "environment": "router", "release": "router"},
                     ROUTER_LABELS, ["router-sport"])


def test_targets_follow_the_service_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine0 = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-0", pod_ip="10.244.0.7")
    engine1 = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-1", pod_ip="10.244.0.6")
    router = pod_with(labels=ROUTER_LABELS, name="vllm-router-0", pod_ip="10.244.1.2")
    plane = plane_with(tmp_path, monkeypatch, {"default": [ENGINE_SVC, ROUTER_SVC]},
                       [(engine0, "engine", True), (engine1, "engine", True), (router, "router", True)])
    plane._write_targets()
    assert targets(plane) == [
        {"targets": ["127.244.0.6:8000"],
         "labels": {"job": "vllm-llama3-engine-service", "namespace": "default", "service": "vllm-llama3-engine-service",
                    "pod": "vllm-llama3-1", "endpoint": "service-port", "container": "c", "instance": "10.244.0.6:8000"}},
        {"targets": ["127.244.0.7:8000"],
         "labels": {"job": "vllm-llama3-engine-service", "namespace": "default", "service": "vllm-llama3-engine-service",
                    "pod": "vllm-llama3-0", "endpoint": "service-port", "container": "c", "instance": "10.244.0.7:8000"}},
        {"targets": ["127.244.1.2:8000"],
         "labels": {"job": "vllm-router-service", "namespace": "default", "service": "vllm-router-service",
                    "pod": "vllm-router-0", "endpoint": "router-sport", "container": "c", "instance": "10.244.1.2:8000"}},
    ]
    assert plane.kube.calls == [("v1", "Service", "default")], "Services are listed once per namespace"  # type: ignore[attr-defined]


@pytest.mark.parametrize("svc", [
    service("not-helm", {"environment": "test", "release": "test"}, {"environment": "test"}, ["service-port"]),
    service("other-env", {**HELM, "environment": "prod", "release": "test"}, {"environment": "test"}, ["service-port"]),
    service("other-port", {**HELM, "environment": "test", "release": "test"}, {"environment": "test"}, ["http"]),
    service("other-pods", {**HELM, "environment": "test", "release": "test"}, {"model": "mistral"}, ["service-port"]),
    service("no-selector", {**HELM, "environment": "test", "release": "test"}, {}, ["service-port"]),
], ids=lambda svc: svc["metadata"]["name"])
def test_services_the_monitor_would_not_scrape_give_no_target(svc: Obj, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    plane = plane_with(tmp_path, monkeypatch, {"default": [svc]},
                       [(pod_with(labels=ENGINE_LABELS, name="vllm-llama3-0"), "engine", True)])
    plane._write_targets()
    assert targets(plane) == []


def test_dead_processes_and_vanished_pods_give_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-dead", pod_ip="10.244.0.8")
    gone = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-gone", pod_ip="10.244.0.9")
    live = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-live", pod_ip="10.244.0.10")
    plane = plane_with(tmp_path, monkeypatch, {"default": [ENGINE_SVC]},
                       [(dead, "engine", False), (gone, "engine", True), (live, "engine", True)])
    del plane.pods[gone["metadata"]["uid"]]
    plane._write_targets()
    assert [t["labels"]["pod"] for t in targets(plane)] == ["vllm-llama3-live"]


def test_services_are_matched_per_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = pod_with(labels=ENGINE_LABELS, name="engine-a", namespace="team-a", pod_ip="10.244.2.1")
    b = pod_with(labels=ENGINE_LABELS, name="engine-b", namespace="team-b", pod_ip="10.244.2.2")
    plane = plane_with(tmp_path, monkeypatch, {"team-a": [ENGINE_SVC], "team-b": []},
                       [(a, "engine", True), (b, "engine", True)])
    plane._write_targets()
    assert [(t["labels"]["namespace"], t["labels"]["pod"]) for t in targets(plane)] == [("team-a", "engine-a")]
    assert sorted(ns for _, _, ns in plane.kube.calls) == ["team-a", "team-b"]  # type: ignore[attr-defined]


def test_the_file_is_rewritten_only_when_targets_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = pod_with(labels=ENGINE_LABELS, name="vllm-llama3-0")
    plane = plane_with(tmp_path, monkeypatch, {"default": [ENGINE_SVC]}, [(engine, "engine", True)])
    plane._write_targets()
    first = targets(plane)
    plane.paths.prometheus_targets.write_text("sentinel")
    plane._write_targets()
    assert plane.paths.prometheus_targets.read_text() == "sentinel", "unchanged targets must not be rewritten"

    plane.runtimes[engine["metadata"]["uid"]].process.running = False  # type: ignore[attr-defined]
    plane._write_targets()
    assert first and targets(plane) == []
    assert not plane.paths.prometheus_targets.with_suffix(".tmp").exists(), "written atomically via a temp file"


# ---- termination: SIGTERM, the grace period, SIGKILL, then the pod object --------------------------
class Terminable:
    """Stands in for a ManagedProcess that records the signals the data plane sends."""

    def __init__(self, exits_on_term: bool) -> None:
        self.running, self.exits_on_term, self.calls = True, exits_on_term, []

    def alive(self) -> bool:
        return self.running

    def terminate(self) -> None:
        self.calls.append("SIGTERM")

    def stop(self, timeout: float = 10.0) -> None:
        self.calls.append("SIGKILL" if self.running and timeout == 0.0 else "stop")
        self.running = False


class DeletingKube:
    def __init__(self) -> None:
        self.deleted_now: list[str] = []

    def delete(self, *args: Any) -> bool:
        return True

    def delete_now(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self.deleted_now.append(name)
        return True


def _terminating_plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exits_on_term: bool, grace: int):
    engine = _ready(pod_with(labels=ENGINE_LABELS, name="engine-0", namespace="ns", pod_ip="10.244.0.7"))
    engine["metadata"].update(deletionTimestamp="2026-11-30T10:00:00Z", deletionGracePeriodSeconds=grace)
    plane = plane_with(tmp_path, monkeypatch, {}, [(engine, "engine", True)])
    plane.kube = DeletingKube()  # type: ignore[assignment]
    process = Terminable(exits_on_term)
    runtime = plane.runtimes[engine["metadata"]["uid"]]
    runtime.process = process  # type: ignore[assignment]
    return plane, runtime, process, engine


def test_a_deleted_engine_gets_sigterm_and_its_grace_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plane, runtime, process, engine = _terminating_plane(tmp_path, monkeypatch, exits_on_term=False, grace=30)
    plane._terminate(engine["metadata"]["uid"], runtime, engine)
    assert process.calls == ["SIGTERM"] and runtime.kill_at is not None
    plane._terminate(engine["metadata"]["uid"], runtime, engine)
    assert process.calls == ["SIGTERM"], "one SIGTERM only, and no SIGKILL within the grace period"
    plane._delete_finished()
    assert plane.kube.deleted_now == [], "the pod object stays while its process runs"
    process.running = False  # the engine finished its requests and exited
    plane._terminate(engine["metadata"]["uid"], runtime, engine)
    plane._delete_finished()
    assert engine["metadata"]["uid"] not in plane.runtimes and plane.kube.deleted_now == ["engine-0"]


def test_a_process_that_outlives_its_grace_period_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plane, runtime, process, engine = _terminating_plane(tmp_path, monkeypatch, exits_on_term=False, grace=0)
    plane._terminate(engine["metadata"]["uid"], runtime, engine)
    assert process.calls == ["SIGTERM", "SIGKILL"]
    plane._delete_finished()
    assert plane.kube.deleted_now == ["engine-0"]


def test_the_grace_period_comes_from_the_deletion_then_the_spec() -> None:
    from vllm_stack_e2e.lab.dataplane import grace_seconds

    pod = pod_with()
    assert grace_seconds(pod) == 30.0
    pod["spec"]["terminationGracePeriodSeconds"] = 60
    assert grace_seconds(pod) == 60.0
    pod["metadata"]["deletionGracePeriodSeconds"] = 5
    assert grace_seconds(pod) == 5.0
