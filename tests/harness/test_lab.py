"""The lab's smoke test: with no GPU and no container runtime, a Deployment asking for
`nvidia.com/gpu: 1` is scaled by real KEDA and the real HPA controller from a real
Prometheus reading of simulated vLLM engines — up to 3 under load, back to 1 after it.

It stands alone (its own namespace and objects, no chart); the tutorial suite is step 1–8.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _lab import with_observability_and_keda

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import kubectl as kubectl_cli
from vllm_stack_e2e import load, tools
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.lab.manifests import LAB_LABEL
from vllm_stack_e2e.lab.processes import ManagedProcess
from vllm_stack_e2e.observed import assert_reached
from vllm_stack_e2e.prom import Prometheus

pytestmark = [pytest.mark.e2e, pytest.mark.lab]

MODEL = "smoke/model"
POLLING = 2
THRESHOLD = 5


def _objects(ns: str) -> list[dict[str, Any]]:
    monitored = {"app.kubernetes.io/managed-by": "Helm", "environment": "test", "release": "test"}
    engine_labels = {"app": "smoke-engine", "app.kubernetes.io/component": "serving-engine",
                     "environment": "test", "release": "test", "model": "smoke"}
    router_labels = {"app": "smoke-router", "environment": "router", "release": "router"}

    def deployment(name: str, labels: dict[str, str], container: dict[str, Any], replicas: int = 1) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": labels["app"]}},
                         "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}

    def service(name: str, selector: dict[str, str], port_name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"selector": selector, "ports": [{"name": port_name, "port": 80, "targetPort": 8000}]}}

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "smoke"}}},
        deployment("smoke-engine", engine_labels, {
            "name": "vllm", "image": "simulated/vllm:smoke",
            "command": ["vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", "8000", "--max-num-seqs", "4"],
            "env": [{"name": "VLLM_SIM_KV_CACHE_TOKENS", "value": "65536"},
                    {"name": "VLLM_SIM_STARTUP_DELAY", "value": "1"}],
            "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}),
        deployment("smoke-router", router_labels, {
            "name": "router", "image": "simulated/router:smoke",
            # The router's own flags, as the chart writes them: the gateway refuses what the router
            # refuses (no discovery or routing logic), and listens on --port (the router's default 8001).
            "args": ["--host", "0.0.0.0", "--port", "8000", "--service-discovery", "k8s", "--k8s-namespace", ns,
                     "--k8s-label-selector", "environment=test,release=test", "--routing-logic", "roundrobin"]}),
        service("smoke-engine-service", {"app": "smoke-engine"}, "service-port", monitored),
        service("smoke-router-service", {"app": "smoke-router"}, "router-sport",
                {**monitored, "environment": "router", "release": "router"}),
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
         "metadata": {"name": "smoke-scaledobject", "namespace": ns},
         "spec": {"scaleTargetRef": {"name": "smoke-engine"}, "minReplicaCount": 1, "maxReplicaCount": 3,
                  "pollingInterval": POLLING, "cooldownPeriod": 10,
                  "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                      "scaleDown": {"stabilizationWindowSeconds": 5,
                                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]},
                      "scaleUp": {"stabilizationWindowSeconds": 0}}}},
                  "triggers": [{"type": "prometheus", "metadata": {
                      "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                      "query": f'sum(vllm:num_requests_waiting{{namespace="{ns}"}})',
                      "threshold": str(THRESHOLD)}}]}},
    ]


@pytest.fixture(scope="module")
def smoke(backend: Any, run_config: Any) -> Iterator[dict[str, Any]]:
    """The lab with Prometheus and KEDA (installed here if absent, removed after) and the smoke objects."""
    if not isinstance(backend, LabBackend):
        pytest.skip("the lab smoke test runs on the lab backend only (CLUSTER=lab)")
    ns = f"vse-smoke-{run_config.run_id.lower()}"[:63]
    kube = backend.kube
    with with_observability_and_keda(backend):
        try:
            for obj in _objects(ns):
                kube.apply(obj)
            with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, "monitoring", "svc/prometheus-operated",
                                          9090) as pport, \
                    kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/smoke-router-service", 80,
                                             budget=60) as rport:
                yield {"ns": ns, "kube": kube, "prom": Prometheus(f"http://127.0.0.1:{pport}"),
                       "router": f"http://127.0.0.1:{rport}/v1"}
        finally:
            if kube.delete(*k.NAMESPACE, ns):
                kube.wait_gone(*k.NAMESPACE, ns, None, budget=120)


def _replicas(dep: dict[str, Any] | None) -> int:
    return int(((dep or {}).get("spec") or {}).get("replicas") or 0)


def test_external_metrics_api_answers(smoke: dict[str, Any]) -> None:
    listing = smoke["kube"].raw("/apis/external.metrics.k8s.io/v1beta1")
    assert listing.get("groupVersion") == "external.metrics.k8s.io/v1beta1", listing
    assert "externalmetrics" in [r["name"] for r in listing["resources"]], listing


def test_gpu_engine_pod_becomes_ready(smoke: dict[str, Any]) -> None:
    pods = smoke["kube"].wait_for_list(*k.POD, smoke["ns"], "app=smoke-engine",
                                      lambda items: any(k.pod_ready(p) for p in items), 60,
                                      "smoke engine pod Ready (its simulator answers /health)")
    pod = next(p for p in pods if k.pod_ready(p))
    assert pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    node = smoke["kube"].get("v1", "Node", pod["spec"]["nodeName"])
    assert node is not None and int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= 1, node


def test_scaledobject_ready_and_hpa_bounds(smoke: dict[str, Any]) -> None:
    kube, ns = smoke["kube"], smoke["ns"]
    kube.wait_for(*k.SCALEDOBJECT, "smoke-scaledobject", ns, k.has_condition("Ready"), 60,
                  "ScaledObject smoke-scaledobject Ready")
    hpa = kube.wait_for(*k.HPA, "keda-hpa-smoke-scaledobject", ns, lambda o: o is not None, 60,
                        "HPA keda-hpa-smoke-scaledobject created by KEDA")
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3), hpa["spec"]


def test_scales_up_to_three_under_load_and_back_to_one(smoke: dict[str, Any]) -> None:
    kube, ns, prom = smoke["kube"], smoke["ns"], smoke["prom"]
    query = f'sum(vllm:num_requests_waiting{{namespace="{ns}"}})'
    prom.wait_for_value(f'count(vllm:num_requests_waiting{{namespace="{ns}"}})', lambda v: (v or 0) >= 1, 60,
                        "Prometheus scrapes the smoke engine")
    config = load.LoadConfig(base_url=smoke["router"], model=MODEL, num_requests=10_000, prompt_len=400,
                             max_tokens=32, stream=False, timeout=120)
    import threading

    stop = threading.Event()
    result: dict[str, Any] = {}

    def drive() -> None:
        result["run"] = load.drive(config, lambda: prom.scalar(query), target=THRESHOLD * 3, hold=150,
                                   start_concurrency=4, step=4, max_concurrency=64, max_requests=20_000,
                                   budget=150, probe_interval=1.0, stop=stop)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        up = kube.wait_for(*k.DEPLOYMENT, "smoke-engine", ns, lambda d: _replicas(d) >= 3, 120,
                           "smoke-engine spec.replicas = 3 under load")
        scaled_up_after = time.monotonic() - started
        assert _replicas(up) == 3
    finally:
        stop.set()
        thread.join(timeout=60)
    assert_reached(result.get("run"), "the load's drive of the queue")
    down = kube.wait_for(*k.DEPLOYMENT, "smoke-engine", ns, lambda d: _replicas(d) == 1, 120,
                         "smoke-engine back to spec.replicas = 1 after the load")
    assert _replicas(down) == 1
    print(f"smoke: 1→3 replicas {scaled_up_after:.0f}s after load started; back to 1 "
          f"{time.monotonic() - started - scaled_up_after:.0f}s after it stopped")


def test_installed_components_come_back_after_their_processes_die(smoke: dict[str, Any], backend: Any) -> None:
    """Prometheus or KEDA dying under a running cluster (a crash, an OOM kill) must not leave
    them marked installed and absent: the next session's start brings them back. A marker
    without its process once made every tutorial test of a CI run fail with Prometheus
    unreachable."""
    lab = backend.lab
    for pidfile in [lab.paths.pidfile("prometheus"), *(lab.paths.pidfile(name) for name in lab.keda.processes())]:
        ManagedProcess.from_pidfile(pidfile).stop()
    assert lab.observability.installed() and lab.keda.installed()
    assert not lab.observability.running() and not lab.keda.running()

    lab.up(["cluster"])  # what the next session's backend.start() does with a lab it finds running

    assert lab.observability.running(), lab.status()
    assert lab.keda.running(), lab.status()
    kube, ns = smoke["kube"], smoke["ns"]
    kube.wait_for(*k.APISERVICE, "v1beta1.external.metrics.k8s.io", None, k.has_condition("Available"),
                  60, "APIService v1beta1.external.metrics.k8s.io Available again")
    with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, "monitoring", "svc/prometheus-operated", 9090) as port:
        prom = Prometheus(f"http://127.0.0.1:{port}")
        try:
            prom.wait_for_value(f'count(vllm:num_requests_waiting{{namespace="{ns}"}})', lambda v: (v or 0) >= 1,
                                60, "the restarted Prometheus scrapes the smoke engine")
        finally:
            prom.close()
    kube.wait_for(*k.SCALEDOBJECT, "smoke-scaledobject", ns, k.has_condition("Ready"), 60,
                  "ScaledObject smoke-scaledobject Ready with the restarted KEDA")
