"""The cluster DNS a KEDA pod gets on the lab (lab/dns.py) and the ClusterIP routing table
(lab/kubeproxy.py), from their inputs; the lab self-test (tests/harness/test_lab_cluster_dns.py)
resolves through them for real."""

from __future__ import annotations

from pathlib import Path

from vllm_stack_e2e.lab import dns, kubeproxy
from vllm_stack_e2e.lab import paths as p


def test_resolv_conf_is_a_cluster_first_pods_in_its_namespace() -> None:
    assert dns.resolv_conf("keda").splitlines() == [
        "search keda.svc.cluster.local svc.cluster.local cluster.local",
        f"nameserver {p.DNS_ADDR}",
        "options ndots:5",
    ]


def test_corefile_serves_the_cluster_zones_from_the_api_and_nxdomain_for_the_rest() -> None:
    text = dns.corefile(Path("/lab/kubeconfig"))
    cluster, root = text.split(".:53 {")
    assert cluster.startswith("cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {")
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in cluster and "kubeconfig /lab/kubeconfig" in cluster
    assert "cache" not in text, "no cache: a Service created at run time resolves at once"
    assert "rcode NXDOMAIN" in root and "kubernetes" not in root


def _service(name: str, ns: str, ip: str, ports: list[dict], kind: str = "ClusterIP") -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"type": kind, "clusterIP": ip, "ports": ports}}


def _slice(service: str, ns: str, port_name: str, port: int, endpoints: list[dict]) -> dict:
    return {"metadata": {"namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": port_name, "port": port}], "endpoints": endpoints}


def test_routes_follow_ready_endpoints_by_port_name_to_the_pods_loopback_twin() -> None:
    services = [_service("prom", "ns", "10.0.0.7", [{"name": "http-web", "port": 9090}]),
                _service("headless", "ns", "None", [{"name": "web", "port": 9090}]),
                _service("ext", "keda", "", [{"name": "x", "port": 1}], kind="ExternalName")]
    slices = [_slice("prom", "ns", "http-web", 9090, [
        {"addresses": ["10.244.0.9"], "conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": "prom-0"}},
        {"addresses": ["10.244.1.2"], "conditions": {"ready": False}, "targetRef": {"kind": "Pod", "name": "prom-1"}},
    ])]
    table = kubeproxy.routes(services, slices, faces={})
    assert table == {("10.0.0.7", 9090): [("127.244.0.9", 9090)]}, "not-ready endpoints, headless and ExternalName left out"


def test_a_local_process_face_routes_to_where_the_process_listens() -> None:
    services = [_service("prometheus-operated", "monitoring", "10.0.0.5", [{"name": "web", "port": 9090}])]
    slices = [_slice("prometheus-operated", "monitoring", "web", 9090, [
        {"addresses": ["10.244.0.3"], "targetRef": {"kind": "Pod", "name": "prometheus-abc"}}])]
    table = kubeproxy.routes(services, slices, faces={("monitoring", "prometheus-abc"): "prometheus"})
    assert table == {("10.0.0.5", 9090): [(p.PROMETHEUS_ADDR, p.PROMETHEUS_PORT)]}


def test_an_endpoint_outside_the_pod_cidr_is_dialled_as_is() -> None:
    services = [_service("kubernetes", "default", "10.0.0.1", [{"name": "https", "port": 443}])]
    slices = [_slice("kubernetes", "default", "https", 6443, [{"addresses": ["127.0.0.1"]}])]
    assert kubeproxy.routes(services, slices, faces={}) == {("10.0.0.1", 443): [("127.0.0.1", 6443)]}
