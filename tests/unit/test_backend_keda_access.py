"""How a cluster backend reaches KEDA for the scenarios beyond the page, without a cluster: the
operator's metrics through the API server's pod proxy, and a crash as the deletion of the
component's pods (their Deployment makes new ones). A fake Kube records the calls."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vllm_stack_e2e.backends.current import CurrentBackend


class FakeKube:
    def __init__(self, pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]] | None = None) -> None:
        self.pods, self.deleted, self.proxied = pods, [], []
        self.nodes = nodes or {}

    def get(self, _api: str, kind: str, name: str, _namespace: str | None = None) -> dict[str, Any] | None:
        assert kind == "Node"
        return self.nodes.get(name)

    def list(self, _api: str, _kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        app = label_selector.split("=", 1)[1]
        return [p for p in self.pods if p["metadata"]["namespace"] == namespace and p["metadata"]["labels"]["app"] == app]

    def delete(self, _api: str, _kind: str, name: str, namespace: str) -> bool:
        self.deleted.append((namespace, name))
        return True

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        self.proxied.append((namespace, pod, port, path))
        return "keda_build_info 1\n"


def pod(name: str, app: str, phase: str = "Running", node: str = "gpu-1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "keda", "labels": {"app": app}}, "spec": {"nodeName": node},
            "status": {"phase": phase, "podIP": "10.244.0.7"}}


@pytest.fixture
def cluster(tmp_path: Path):
    """The `current` backend on a kubeconfig file that is never dialled; its Kube is the fake."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")

    made: list[CurrentBackend] = []

    def make(kube: FakeKube) -> CurrentBackend:
        backend = CurrentBackend(SimpleNamespace(kubeconfig=kubeconfig), echo=lambda _line: None)
        backend._kube = kube  # type: ignore[assignment]
        made.append(backend)
        return backend
    yield make
    for backend in made:
        backend.stop()  # its private copy of the kubeconfig


def test_the_operator_metrics_come_through_the_pod_proxy_of_a_running_operator(cluster) -> None:
    kube = FakeKube([pod("keda-operator-old", "keda-operator", "Pending"), pod("keda-operator-1", "keda-operator")])
    assert cluster(kube).keda_metrics() == "keda_build_info 1\n"
    assert kube.proxied == [("keda", "keda-operator-1", 8080, "metrics")]


def test_no_running_operator_is_an_error_that_says_where_it_looked(cluster) -> None:
    with pytest.raises(RuntimeError, match="app=keda-operator in namespace keda"):
        cluster(FakeKube([pod("keda-operator-0", "keda-operator", "Pending")])).keda_metrics()


@pytest.mark.parametrize(("component", "app"), [("operator", "keda-operator"),
                                                ("metrics-apiserver", "keda-operator-metrics-apiserver")])
def test_a_crash_on_a_cluster_deletes_exactly_the_components_pods(cluster, component: str, app: str) -> None:
    kube = FakeKube([pod("keda-operator-1", "keda-operator"), pod("keda-operator-metrics-apiserver-1",
                                                                  "keda-operator-metrics-apiserver"),
                     pod("keda-admission-webhooks-1", "keda-admission-webhooks")])
    said = cluster(kube).disrupt_keda(component)
    assert kube.deleted == [("keda", f"{app}-1")] and f"{app}-1" in said


def test_on_a_kwok_node_the_pod_proxy_is_not_dialled_and_says_why(cluster) -> None:
    """The lab read as a cluster (CLUSTER=current with its kubeconfig): no kubelet serves a KWOK
    node's pods, so the API server would dial a simulated pod IP off loopback; the read is refused."""
    kwok = {"lab-0": {"metadata": {"name": "lab-0", "annotations": {"kwok.x-k8s.io/node": "fake"}}}}
    kube = FakeKube([pod("keda-operator-1", "keda-operator", node="lab-0")], kwok)
    with pytest.raises(RuntimeError, match="KWOK node lab-0: the API server's pod proxy would dial pod IP 10.244.0.7"):
        cluster(kube).keda_metrics()
    assert kube.proxied == []
