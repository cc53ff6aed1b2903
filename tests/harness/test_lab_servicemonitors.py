"""Prometheus-Operator semantics on the lab (lab/monitoring.py): the real operator turns a
Prometheus object and the ServiceMonitors its selector picks into Prometheus's configuration, and
a ServiceMonitor picks Services by labels and scrapes their named port. So a ServiceMonitor that
selects no Service yields no scrape target, and one the Prometheus does not select yields no job —
on the lab exactly as on a cluster, with no list of targets written by the harness."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import kubectl as kubectl_cli
from vllm_stack_e2e import tools, waits
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.lab import build
from vllm_stack_e2e.lab.manifests import LAB_LABEL
from vllm_stack_e2e.prom import Prometheus, Target

pytestmark = [pytest.mark.e2e, pytest.mark.lab]
MONITORING = "monitoring.coreos.com/v1"


def _objects(ns: str) -> list[dict[str, Any]]:
    def deployment(name: str, labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}

    def monitor(name: str, team: str, app: str) -> dict[str, Any]:
        return {"apiVersion": MONITORING, "kind": "ServiceMonitor",
                "metadata": {"name": name, "namespace": ns, "labels": {"team": team}},
                "spec": {"selector": {"matchLabels": {"app": app}},
                         "endpoints": [{"port": "metrics", "interval": "2s", "scrapeTimeout": "1s"}]}}

    return [
        # Scoped to this namespace, so an operator elsewhere on the lab is not contradicted.
        deployment("operator", {"app": "operator"}, {
            "name": "operator", "image": f"quay.io/prometheus-operator/prometheus-operator:v{build.PROMETHEUS_OPERATOR_VERSION}",
            "args": [f"--namespaces={ns}"]}),
        # The data plane runs the simulator for pods labelled as the chart labels its engines.
        deployment("engine", {"app": "engine", "app.kubernetes.io/component": "serving-engine"}, {
            "name": "vllm", "image": "simulated/vllm:probe",
            "command": ["vllm", "serve", "probe/model", "--host", "0.0.0.0", "--port", "8000"]}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "engine", "namespace": ns, "labels": {"app": "engine"}},
         "spec": {"selector": {"app": "engine"}, "ports": [{"name": "metrics", "port": 80, "targetPort": 8000}]}},
        {"apiVersion": MONITORING, "kind": "Prometheus", "metadata": {"name": "probe", "namespace": ns},
         "spec": {"replicas": 1, "serviceMonitorSelector": {"matchLabels": {"team": "probe"}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe-prometheus", "namespace": ns},
         "spec": {"selector": {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "probe"},
                  "ports": [{"name": "web", "port": 9090}]}},
        monitor("selects-engine", "probe", "engine"),
        monitor("selects-nothing", "probe", "nobody"),
        monitor("not-selected", "other", "engine"),
    ]


@pytest.fixture(scope="module")
def targets(backend: Any, run_config: Any) -> Iterator[dict[str, list[Target]]]:
    """The Prometheus's active targets by scrape pool, once the selected engine's is up (or the
    budget is spent; the tests judge what was seen)."""
    if not isinstance(backend, LabBackend):
        pytest.skip("Prometheus-Operator semantics are the lab's (CLUSTER=lab)")
    kube, ns = backend.kube, f"vse-sm-{run_config.run_id.lower()}"[:63]
    created_crds = backend.ensure_monitoring_crds()
    try:
        kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "sm"}}})
        for obj in _objects(ns):
            kube.apply(obj)
        kube.wait_for_list(*k.POD, ns, "app.kubernetes.io/name=prometheus", lambda pods: any(k.pod_ready(p) for p in pods),
                           90, "the operator's Prometheus pod Ready")
        with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/probe-prometheus", 9090, budget=60) as port:
            prom = Prometheus(f"http://127.0.0.1:{port}")

            def by_pool() -> dict[str, list[Target]]:
                pools: dict[str, list[Target]] = {}
                for target in prom.targets():
                    pools.setdefault(target.scrape_pool, []).append(target)
                return pools

            seen = waits.until(waits.polling(by_pool, 1.0),
                               lambda pools: any(t.up for t in pools.get(f"serviceMonitor/{ns}/selects-engine/0", [])),
                               90, "the selected ServiceMonitor's engine target up",
                               show=lambda pools: str({p: [f"{t.health} {t.scrape_url} {t.last_error}".strip() for t in ts]
                                                       for p, ts in pools.items()}))
            yield {"ns": ns, "pools": seen.state if isinstance(seen.state, dict) else {}, "seen": seen}
    finally:
        if kube.delete(*k.NAMESPACE, ns):
            kube.wait_gone(*k.NAMESPACE, ns, None, budget=120)
        for name in created_crds:
            kube.delete(*k.CRD, name)


def test_a_selected_servicemonitor_scrapes_the_services_named_port(targets: dict[str, Any]) -> None:
    pool = targets["pools"].get(f"serviceMonitor/{targets['ns']}/selects-engine/0", [])
    assert [t for t in pool if t.up], targets["seen"].explain()
    labels = pool[0].labels
    assert (labels.get("namespace"), labels.get("service"), labels.get("endpoint")) == (targets["ns"], "engine", "metrics"), labels
    assert labels.get("pod", "").startswith("engine-"), labels


def test_a_servicemonitor_that_selects_nothing_yields_no_target(targets: dict[str, Any]) -> None:
    pools = targets["pools"]
    assert pools, targets["seen"].explain()
    assert pools.get(f"serviceMonitor/{targets['ns']}/selects-nothing/0", []) == [], pools


def test_a_servicemonitor_the_prometheus_does_not_select_gets_no_job(targets: dict[str, Any]) -> None:
    pools = targets["pools"]
    assert pools, targets["seen"].explain()
    assert not any("/not-selected/" in pool for pool in pools), sorted(pools)
