"""The Kubernetes objects the lab creates: KWOK stages, GPU and system nodes, the `nvidia`
RuntimeClass and the in-cluster faces of local processes.

No API server here: the objects are checked for shape (apiVersion, kind, metadata, the lab
label), and the pod stages' selectors are evaluated with a small model of KWOK's rules."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from vllm_stack_e2e.lab import manifests

LAB = "vse-unit"
Obj = dict[str, Any]


def assert_lab_object(obj: Obj, api_version: str, kind: str, namespaced: bool) -> None:
    """apiVersion/kind as expected, a DNS-1123 name, a namespace iff namespaced, the lab label."""
    assert obj["apiVersion"] == api_version and obj["kind"] == kind, obj
    meta = obj["metadata"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", meta["name"]), f"{meta['name']!r} is not a DNS-1123 name"
    assert ("namespace" in meta) is namespaced, f"{kind} {meta['name']}: namespace {meta.get('namespace')!r}"
    assert meta["labels"][manifests.LAB_LABEL] == LAB, f"{kind} {meta['name']} lacks the lab label"
    for key, value in meta["labels"].items():
        assert isinstance(value, str), f"label {key} must be a string, got {value!r}"


# ---- a model of KWOK's stage selectors (sigs.k8s.io/kwok pkg/utils/expression/selector.go) ----
# A jq path that finds nothing yields null: In/Exists do not match it, NotIn/DoesNotExist do.
def _query(obj: Obj, key: str) -> Any:
    value: Any = obj
    for part in re.findall(r'\."([^"]+)"|\.([A-Za-z0-9_]+)', key):
        name = part[0] or part[1]
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _matches(obj: Obj, expression: Obj) -> bool:
    value = _query(obj, expression["key"])
    operator = expression["operator"]
    if operator == "In":
        return value in expression["values"]
    if operator == "NotIn":
        return value not in expression["values"]
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    raise AssertionError(f"operator {operator} not modelled")


def matching_stages(pod: Obj) -> list[str]:
    return [stage["metadata"]["name"] for stage in manifests.stages(LAB)
            if stage["spec"]["resourceRef"]["kind"] == "Pod"
            and all(_matches(pod, e) for e in stage["spec"]["selector"]["matchExpressions"])]


def pod(labels: dict[str, str], phase: str = "Pending", deleting: bool = False) -> Obj:
    meta: Obj = {"name": "p", "namespace": "default", "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


ENGINE = {"app.kubernetes.io/component": "serving-engine", "environment": "test"}


# ---- stages -----------------------------------------------------------------------------------
def test_six_stages_one_for_nodes_five_for_pods() -> None:
    stages = manifests.stages(LAB)
    assert [s["metadata"]["name"] for s in stages] == [
        "lab-node-up", "lab-pod-ready", "lab-prometheus-pod-running", "lab-router-pod-running",
        "lab-engine-pod-running", "lab-pod-delete"]
    for stage in stages:
        assert_lab_object(stage, "kwok.x-k8s.io/v1alpha1", "Stage", namespaced=False)
        assert stage["spec"]["resourceRef"]["apiGroup"] == "v1"
        for expression in stage["spec"]["selector"]["matchExpressions"]:
            assert expression["operator"] in ("In", "NotIn", "Exists", "DoesNotExist")
            # KWOK rejects In/NotIn without values and Exists/DoesNotExist with values.
            assert bool(expression.get("values")) == (expression["operator"] in ("In", "NotIn")), expression
    assert [s["spec"]["resourceRef"]["kind"] for s in stages] == ["Node", "Pod", "Pod", "Pod", "Pod", "Pod"]


def test_the_operators_prometheus_pods_start_running_but_not_ready() -> None:
    """Ready once Prometheus answers /-/ready (the data plane's probe), as its readiness probe would."""
    assert matching_stages(pod({"app.kubernetes.io/managed-by": "prometheus-operator",
                                "app.kubernetes.io/name": "prometheus"})) == ["lab-prometheus-pod-running"]


def test_engine_pods_start_running_but_not_ready() -> None:
    assert matching_stages(pod(ENGINE)) == ["lab-engine-pod-running"]
    template = {s["metadata"]["name"]: s for s in manifests.stages(LAB)}[
        "lab-engine-pod-running"]["spec"]["next"]["statusTemplate"]
    assert 'type: Ready, status: "False"' in template and 'type: ContainersReady, status: "False"' in template
    assert "ready: false" in template and "phase: Running" in template


def test_router_pods_start_running_but_not_ready() -> None:
    """Ready once the gateway answers /health, as the router's readiness probe would."""
    assert matching_stages(pod({"environment": "router", "release": "router"})) == ["lab-router-pod-running"]


@pytest.mark.parametrize("labels", [{}, {"environment": "test"}, {"app.kubernetes.io/component": "router"},
                                    {manifests.PROCESS_LABEL: "prometheus"}], ids=["unlabelled", "other-environment",
                                                                                   "other-component", "face"])
def test_other_pods_are_ready_at_once(labels: dict[str, str]) -> None:
    assert matching_stages(pod(labels)) == ["lab-pod-ready"]
    template = {s["metadata"]["name"]: s for s in manifests.stages(LAB)}["lab-pod-ready"]["spec"]["next"]["statusTemplate"]
    assert 'type: Ready, status: "True"' in template and "ready: true" in template


def test_running_pods_match_no_start_stage_and_deleted_pods_are_deleted() -> None:
    assert matching_stages(pod(ENGINE, phase="Running")) == [], "a Running engine pod must be left to the data plane"
    assert matching_stages(pod({}, phase="Running")) == []
    assert matching_stages(pod(ENGINE, phase="Running", deleting=True)) == [], \
        "a deleted engine pod is the data plane's to end (SIGTERM, grace period, then delete)"
    assert matching_stages(pod({"environment": "router"}, phase="Running", deleting=True)) == []
    assert matching_stages(pod({}, phase="Running", deleting=True)) == ["lab-pod-delete"]
    delete = manifests.stages(LAB)[-1]
    assert delete["spec"]["next"] == {"delete": True}


def test_pod_status_templates_are_fully_formatted() -> None:
    for stage in manifests.stages(LAB)[1:3]:
        template = stage["spec"]["next"]["statusTemplate"]
        assert "%(" not in template and "%%" not in template, "a Python format placeholder was left in"
        assert 'printf "simulated://%s" .image' in template


def skeleton(template: str) -> Any:
    """The template as YAML once its Go-template actions are taken out (lines that are only an
    action dropped, inline actions replaced by a string)."""
    lines = [ln for ln in template.splitlines() if not re.fullmatch(r"\s*\{\{[^{}]*\}\}\s*", ln)]
    text = re.sub(r"\{\{[^{}]*\}\}", '"x"', "\n".join(lines))
    assert not re.search(r"\{\{[ -]", text), f"unbalanced action in {template!r}"
    return yaml.safe_load(text)


@pytest.mark.parametrize("name", ["lab-node-up", "lab-pod-ready", "lab-engine-pod-running"])
def test_status_templates_are_yaml_around_their_actions(name: str) -> None:
    stage = {s["metadata"]["name"]: s for s in manifests.stages(LAB)}[name]
    status = skeleton(stage["spec"]["next"]["statusTemplate"])
    assert status["phase"] == "Running"
    types = [c["type"] for c in status["conditions"]]
    if name == "lab-node-up":
        assert set(status) >= {"addresses", "allocatable", "capacity", "nodeInfo", "daemonEndpoints"}
    else:
        # the last condition is the body of `range .spec.readinessGates` (type from the pod)
        assert types == ["PodScheduled", "Initialized", "ContainersReady", "Ready", "x"]
        want = "True" if name == "lab-pod-ready" else "False"
        assert [c["status"] for c in status["conditions"]] == ["True", "True", want, want, want], \
            "readiness gates follow Ready, so a gated pod is not Ready before the data plane says so"
        assert status["containerStatuses"][0]["ready"] is (want == "True")
        assert status["containerStatuses"][0]["state"] == {"running": {"startedAt": "x"}}


# ---- nodes and RuntimeClass ------------------------------------------------------------------------
def test_gpu_node_advertises_gpus_and_is_managed_by_kwok() -> None:
    node = manifests.gpu_node(LAB, 2, gpus=4)
    assert_lab_object(node, "v1", "Node", namespaced=False)
    assert node["metadata"]["name"] == f"{LAB}-gpu-2"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
    assert labels["nvidia.com/gpu.present"] == "true" and labels["type"] == "kwok"
    for field in ("allocatable", "capacity"):
        resources = node["status"][field]
        assert resources["nvidia.com/gpu"] == "4", f"{field} must carry nvidia.com/gpu as a quantity string"
        assert resources["cpu"] == "48" and resources["memory"] == "384Gi" and resources["pods"] == "110"
    assert node["status"]["allocatable"] is not node["status"]["capacity"], "the two must not alias one dict"


def test_system_node_has_no_gpus() -> None:
    node = manifests.system_node(LAB)
    assert_lab_object(node, "v1", "Node", namespaced=False)
    assert node["metadata"]["name"] == f"{LAB}-system-0"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert "nvidia.com/gpu" not in node["status"]["allocatable"]
    assert "nvidia.com/gpu" not in node["status"]["capacity"]
    assert not any(key.startswith("nvidia.com/") for key in node["metadata"]["labels"])


def test_runtime_class_nvidia() -> None:
    rc = manifests.runtime_class(LAB)
    assert_lab_object(rc, "node.k8s.io/v1", "RuntimeClass", namespaced=False)
    assert rc["metadata"]["name"] == "nvidia" and rc["handler"] == "nvidia"


def test_namespace() -> None:
    assert_lab_object(manifests.namespace(LAB, "monitoring"), "v1", "Namespace", namespaced=False)


# ---- faces of local processes ---------------------------------------------------------------------
def test_process_face_is_a_one_replica_deployment_on_the_system_node() -> None:
    dep = manifests.process_face(LAB, "monitoring", "prometheus", "quay.io/prometheus/prometheus:v3.16.0",
                                 {"app.kubernetes.io/name": "prometheus"}, [9090, 8080])
    assert_lab_object(dep, "apps/v1", "Deployment", namespaced=True)
    assert dep["metadata"]["namespace"] == "monitoring"
    spec = dep["spec"]
    assert spec["replicas"] == 1
    template_labels = spec["template"]["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    assert selector == {manifests.PROCESS_LABEL: "prometheus"}
    assert selector.items() <= template_labels.items(), "the selector must select the template's pods"
    assert template_labels[manifests.LAB_LABEL] == LAB and template_labels["app.kubernetes.io/name"] == "prometheus"
    pod_spec = spec["template"]["spec"]
    assert pod_spec["nodeSelector"] == {"kubernetes.io/hostname": manifests.system_node(LAB)["metadata"]["name"]}
    (container,) = pod_spec["containers"]
    assert container["name"] == "prometheus" and container["image"].endswith(":v3.16.0")
    assert container["ports"] == [{"containerPort": 9090}, {"containerPort": 8080}]


def test_cluster_ip_service_selects_pods() -> None:
    svc = manifests.service(LAB, "monitoring", "prometheus-operated", [("web", 9090, 9091)],
                            selector={manifests.PROCESS_LABEL: "prometheus"}, labels={"operated-prometheus": "true"})
    assert_lab_object(svc, "v1", "Service", namespaced=True)
    assert svc["metadata"]["labels"]["operated-prometheus"] == "true"
    assert svc["spec"] == {"ports": [{"name": "web", "port": 9090, "targetPort": 9091, "protocol": "TCP"}],
                           "selector": {manifests.PROCESS_LABEL: "prometheus"}}


def test_external_name_service_points_at_an_address_without_selector() -> None:
    svc = manifests.service(LAB, "keda", "keda-operator", [("metricsservice", 9666, 9666)],
                            external_name="127.0.91.1")
    assert_lab_object(svc, "v1", "Service", namespaced=True)
    assert svc["spec"]["type"] == "ExternalName" and svc["spec"]["externalName"] == "127.0.91.1"
    assert "selector" not in svc["spec"], "an ExternalName Service has no selector"


def test_port_forward_routes_each_pod_port_to_a_local_address() -> None:
    pf = manifests.port_forward(LAB, "default", "vllm-llama3-abc", [(8000, "127.244.0.5", 8000), (9090, "127.0.90.1", 9091)])
    assert_lab_object(pf, "kwok.x-k8s.io/v1alpha1", "PortForward", namespaced=True)
    assert pf["metadata"]["name"] == "vllm-llama3-abc", "KWOK finds a pod's PortForward by the pod's name"
    assert pf["spec"]["forwards"] == [
        {"ports": [8000], "target": {"address": "127.244.0.5", "port": 8000}},
        {"ports": [9090], "target": {"address": "127.0.90.1", "port": 9091}},
    ]


def test_pod_logs_follow_one_file_per_container() -> None:
    logs = manifests.pod_logs(LAB, "default", "vllm-router-xyz", "router", "/tmp/x/default_vllm-router-xyz_router.log")
    assert_lab_object(logs, "kwok.x-k8s.io/v1alpha1", "Logs", namespaced=True)
    assert logs["spec"]["logs"] == [{"containers": ["router"], "logsFile": "/tmp/x/default_vllm-router-xyz_router.log",
                                     "follow": True}]


# ---- KEDA's in-cluster objects (built from these helpers) -------------------------------------------
def test_keda_objects_route_the_metrics_api_to_the_local_adapter() -> None:
    from vllm_stack_e2e.lab import keda
    from vllm_stack_e2e.lab import paths as p

    objects = keda._objects(LAB)
    for obj in objects:
        assert obj["metadata"]["labels"][manifests.LAB_LABEL] == LAB, f"{obj['kind']} {obj['metadata']['name']}"
    by_kind: dict[str, list[Obj]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert [o["metadata"]["name"] for o in by_kind["Namespace"]] == ["keda"]
    services = {s["metadata"]["name"]: s["spec"] for s in by_kind["Service"]}
    assert services[keda.ADAPTER] == {"type": "ExternalName", "externalName": p.KEDA_ADAPTER_ADDR, "ports": [
        {"name": "https", "port": p.KEDA_ADAPTER_PORT, "targetPort": p.KEDA_ADAPTER_PORT, "protocol": "TCP"}]}
    (apiservice,) = by_kind["APIService"]
    assert apiservice["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert apiservice["spec"]["service"] == {"name": keda.ADAPTER, "namespace": "keda", "port": p.KEDA_ADAPTER_PORT}
    (webhook,) = by_kind["ValidatingWebhookConfiguration"]
    assert webhook["webhooks"][0]["clientConfig"]["service"]["name"] in services
    assert webhook["webhooks"][0]["failurePolicy"] == "Ignore"
    faces = {d["metadata"]["name"] for d in by_kind["Deployment"]}
    assert faces == {keda.OPERATOR, keda.ADAPTER, keda.WEBHOOKS}


def test_a_relayed_port_forward_closes_like_a_kubelets() -> None:
    """With socat as the relay, each connection is `socat -t 1 STDIO TCP:…`: when the client's
    stream ends, the pod's side is half-closed and closed a second later (containerd's behaviour),
    where KWOK's own tunnel would keep it open until the pod's reply ends."""
    pf = manifests.port_forward(LAB, "ns", "router-x", [(8000, "127.244.0.7", 8000)], relay="/usr/bin/socat")
    assert pf["spec"]["forwards"] == [{"ports": [8000], "command": [
        "/usr/bin/socat", "-t", str(manifests.PORT_FORWARD_CLOSE_SECONDS), "STDIO", "TCP:127.244.0.7:8000"]}]
    assert manifests.PORT_FORWARD_CLOSE_SECONDS == 1
