"""The defect registry: one record per upstream defect, and the detectors that decide from a
deployed ScaledObject whether a defect is present (the plugin's strict xfail rests on them)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import defects


def scaledobject(*queries: str, maximum: int | None = 3) -> dict[str, Any]:
    spec: dict[str, Any] = {"triggers": [{"type": "prometheus", "metadata": {"query": q, "threshold": "5"}}
                                         for q in queries]}
    if maximum is not None:
        spec["maxReplicaCount"] = maximum
    return {"kind": "ScaledObject", "spec": spec}


@pytest.mark.parametrize(("query", "aggregated"), [
    ("vllm:num_requests_waiting", False),
    ('vllm:num_requests_waiting{model_name="m"}', False),
    ("sum(vllm:num_requests_waiting)", True),
    ("sum by (namespace) (vllm:num_requests_waiting)", True),
    ("sum by (pod) (vllm:num_requests_waiting)", False),
    ("sum(vllm:num_requests_waiting) by (instance)", False),
    ("max without (pod) (vllm:num_requests_waiting)", True),
    ("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)", True),
    ("avg(vllm:kv_cache_usage_perc) * 100", True),
    ("scalar(vllm:num_requests_waiting)", True),
    ("rate(vllm:num_incoming_requests_total[1m])", False),
])
def test_is_aggregated(query: str, aggregated: bool) -> None:
    assert defects.is_aggregated(query) is aggregated


def test_defect_3_is_present_for_the_tutorials_query_and_absent_with_the_fix() -> None:
    detect = defects.get(3).present
    assert detect is not None
    assert "'vllm:num_requests_waiting' (not aggregated)" in (detect(scaledobject("vllm:num_requests_waiting")) or "")
    assert detect(scaledobject("sum(vllm:num_requests_waiting)")) is None
    # One replica at most: a per-pod query still returns one series.
    assert detect(scaledobject("vllm:num_requests_waiting", maximum=1)) is None
    # KEDA's default maximum is 100.
    assert detect(scaledobject("vllm:num_requests_waiting", maximum=None)) is not None
    # Any trigger counts: the scale-to-zero block's queue trigger beside an aggregated keepalive.
    assert detect(scaledobject("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)",
                               "vllm:num_requests_waiting")) is not None


def test_defect_2_is_present_when_an_engine_metric_is_selected_by_model() -> None:
    detect = defects.get(2).present
    assert detect is not None
    assert detect(scaledobject('vllm:num_requests_waiting{model="llama3"}')) is not None
    assert detect(scaledobject('sum(vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct"})')) is None
    # The router's counter does carry `model`.
    assert detect(scaledobject('sum(rate(vllm:num_incoming_requests_total{model="m"}[1m]))')) is None


def test_every_defect_has_its_words_and_a_doc_anchor() -> None:
    assert sorted(defects.DEFECTS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    for number, defect in defects.DEFECTS.items():
        assert defect.title and defect.explanation and defect.fix and defect.detected_by and defect.shown_by
        assert defect.doc == f"docs/upstream-defects.md#defect-{number}"
    reason = defects.get(3).reason("seen")
    assert reason.startswith("upstream defect 3: ") and "(seen)" in reason and "sum(" in reason
    assert defects.get(3).fix_trigger is not None and defects.get(6).fix_values is not None
    assert sorted(n for n, d in defects.DEFECTS.items() if d.fixable) == [3, 6, 7, 9, 10, 11, 12, 13]


def test_an_unknown_defect_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"no upstream defect 99 is registered \(known: \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13\]\)"):
        defects.get(99)
    assert "not a registered defect" in defects.title(99)


def test_defect_9_is_present_while_a_query_selects_no_namespace_and_its_fix_selects_the_runs() -> None:
    detect = defects.get(9).present
    assert detect is not None
    assert detect(scaledobject("vllm:num_requests_waiting")) is not None
    assert detect(scaledobject('sum(rate(vllm:num_incoming_requests_total{model="m"}[1m]) > bool 0)')) is not None
    assert detect(scaledobject('sum(vllm:num_requests_waiting{namespace="vse-run"})')) is None
    assert detect(scaledobject("vector(1)")) is None, "no vLLM series, nothing to scope"
    assert defects.scope_to_namespace("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)", "ns") == \
        'sum(rate(vllm:num_incoming_requests_total{namespace="ns"}[1m]) > bool 0)'
    assert defects.scope_to_namespace('vllm:num_requests_waiting{model_name="m"}', "ns") == \
        'vllm:num_requests_waiting{model_name="m",namespace="ns"}'
    assert defects.scope_to_namespace('vllm_num_requests_waiting{namespace="ns"}', "other") == \
        'vllm_num_requests_waiting{namespace="ns"}', "a query already scoped stays as it is"


def test_defect_8_is_present_where_the_release_brings_its_own_prometheus() -> None:
    detect = defects.get(8).present
    assert detect is not None
    subchart = {"kind": "Prometheus", "metadata": {"name": "vllm-kube-prometheus-stack-prometheus",
                                                   "labels": {"app.kubernetes.io/managed-by": "Helm"}}}
    assert detect(scaledobject("x"), lambda kind: [subchart] if kind == "Prometheus" else []) is not None
    assert detect(scaledobject("x"), lambda _kind: []) is None, "first edition: no Prometheus in the namespace"


def with_address(address: str, namespace: str = "vse-run") -> dict[str, Any]:
    so = scaledobject("sum(vllm:num_requests_waiting)")
    so["metadata"] = {"name": "vllm-llama3-scaledobject", "namespace": namespace}
    so["spec"]["triggers"][0]["metadata"]["serverAddress"] = address
    return so


@pytest.mark.parametrize(("address", "present"), [
    ("http://vllm-kube-prometheus-stack-prometheus:9090", True),
    ("http://vllm-kube-prometheus-stack-prometheus.vse-run:9090", False),
    ("http://vllm-kube-prometheus-stack-prometheus.vse-run.svc:9090", False),
    ("http://prometheus-operated.monitoring.svc:9090", False),
    ("http://127.0.0.1:9090", False),
    ("http://localhost:9090", False),
    ("vllm-kube-prometheus-stack-prometheus:9090", True),
])
def test_defect_7_is_a_single_label_server_name_outside_kedas_namespace(address: str, present: bool) -> None:
    detect = defects.get(7).present
    assert detect is not None
    assert (detect(with_address(address)) is not None) is present
    # In KEDA's own namespace the short name resolves: no defect there.
    assert detect(with_address(address, namespace="keda")) is None


def test_defect_6_needs_a_subchart_prometheus_and_no_engine_servicemonitor() -> None:
    detect = defects.get(6).present
    assert detect is not None
    prometheus = {"kind": "Prometheus", "metadata": {"name": "vllm-kube-prometheus-stack-prometheus"},
                  "spec": {"serviceMonitorSelector": {"matchLabels": {"app.kubernetes.io/part-of": "vllm-stack"}}}}
    engine_monitor = {"kind": "ServiceMonitor", "spec": {"selector": {"matchLabels": {
        "app.kubernetes.io/component": "serving-engine"}}}}
    router_monitor = {"kind": "ServiceMonitor", "spec": {"selector": {"matchLabels": {
        "app.kubernetes.io/component": "router"}}}}

    def lookup(*objs: dict[str, Any]) -> defects.Lookup:
        return lambda kind: [o for o in objs if o["kind"] == kind]

    so = with_address("http://x.vse-run.svc:9090")
    evidence = detect(so, lookup(prometheus, router_monitor))
    assert evidence and "vllm-kube-prometheus-stack-prometheus" in evidence
    assert detect(so, lookup(prometheus, router_monitor, engine_monitor)) is None
    evidence = detect(so, lookup(router_monitor))
    assert evidence and "none selects the engine Services" in evidence, \
        "no subchart, but the chart's ServiceMonitors are the monitoring (an existing Prometheus): still defect 6"
    assert detect(so, lookup()) is None, "neither a subchart nor ServiceMonitors: monitoring is not the chart's"
    assert detect(so) is None, "undecidable from the ScaledObject alone"


def _monitor(name: str, labels: dict[str, str], picks: str) -> dict[str, Any]:
    return {"kind": "ServiceMonitor", "metadata": {"name": name, "labels": {
        "app.kubernetes.io/part-of": "vllm-stack", **labels}},
        "spec": {"selector": {"matchLabels": {"release": picks}}}}


def test_defect_12_the_charts_servicemonitors_carry_the_workloads_release_label() -> None:
    """Found when the release has no Prometheus of its own and a chart ServiceMonitor's `release` is
    the workload label it selects by (what a stock kube-prometheus-stack never selects); gone once
    additionalLabels name the stack's release, or when the subchart's Prometheus is there."""
    detect = defects.get(12).present
    assert detect is not None
    so = {"kind": "ScaledObject", "metadata": {"namespace": "ns"}}
    plain = _monitor("vllm-engine-servicemonitor", {"release": "test"}, "test")
    labelled = _monitor("vllm-engine-servicemonitor", {"release": "kube-prometheus-stack"}, "test")
    prometheus = {"kind": "Prometheus", "metadata": {"name": "vllm-kube-prometheus-stack-prometheus"}}

    def lookup(*objs: dict[str, Any]) -> defects.Lookup:
        return lambda kind: [o for o in objs if o["kind"] == kind]

    evidence = detect(so, lookup(plain))
    assert evidence and "release=test" in evidence and "vllm-engine-servicemonitor" in evidence, evidence
    assert detect(so, lookup(labelled)) is None
    assert detect(so, lookup(plain, prometheus)) is None, "the subchart's Prometheus selects by part-of"
    assert detect(so, lookup()) is None


def test_defect_13_a_trigger_naming_the_subchart_prometheus_when_it_is_off() -> None:
    detect = defects.get(13).present
    assert detect is not None
    so = with_address("http://vllm-kube-prometheus-stack-prometheus:9090")
    none: defects.Lookup = lambda kind: []
    prometheus: defects.Lookup = lambda kind: [{"kind": "Prometheus"}] if kind == "Prometheus" else []
    evidence = detect(so, none)
    assert evidence and "vllm-kube-prometheus-stack-prometheus" in evidence, evidence
    assert detect(so, prometheus) is None, "the subchart is on: its Service exists (defect 7's case)"
    assert detect(with_address("http://kube-prometheus-stack-prometheus.prometheus.svc:9090"), none) is None


def _engine_deployment(args: list[str], name: str = "vllm-llama3-deployment-vllm", grace: int | None = None) -> dict:
    pod = {"containers": [{"name": "vllm", "command": ["/opt/venv/bin/vllm", "serve", "m", *args]}]}
    if grace is not None:
        pod["terminationGracePeriodSeconds"] = grace
    return {"kind": "Deployment", "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "serving-engine"}},
            "spec": {"template": {"spec": pod}}}


def test_defect_10_is_present_while_the_engine_runs_without_a_shutdown_timeout() -> None:
    detect = defects.get(10).present
    assert detect is not None
    so = {"kind": "ScaledObject", "spec": {"scaleTargetRef": {"name": "vllm-llama3-deployment-vllm"}}}
    found = detect(so, lambda kind: [_engine_deployment(["--port", "8000"])] if kind == "Deployment" else [])
    assert found is not None and "without --shutdown-timeout" in found and "grace period 30s" in found, found
    for args in (["--shutdown-timeout", "25"], ["--shutdown-timeout=25"]):
        assert detect(so, lambda kind, a=args: [_engine_deployment(a)] if kind == "Deployment" else []) is None, args
    other = _engine_deployment([], name="someone-else")
    assert detect(so, lambda kind: [other] if kind == "Deployment" else []) is None, "only the scaled Deployment"
    keda_off = {"kind": "ScaledObject", "metadata": {}}  # fixes.found's stand-in when KEDA is off
    assert detect(keda_off, lambda kind: [other] if kind == "Deployment" else []) is not None, \
        "with KEDA off every serving-engine Deployment counts: the fix must hold then too"


def test_defect_11_is_present_while_a_prometheus_trigger_reads_no_series_as_zero() -> None:
    detect = defects.get(11).present
    assert detect is not None
    page = scaledobject("vllm:num_requests_waiting")
    assert "sets no ignoreNullValues" in (detect(page) or ""), "the page's trigger keeps KEDA's default"
    fixed = {**page, "spec": {"triggers": [{"type": "prometheus", "metadata": {"query": "q", "ignoreNullValues": "false"}}]}}
    assert detect(fixed) is None
    assert detect({"spec": {"triggers": [{"type": "cpu", "metadata": {}}]}}) is None, "only Prometheus triggers"
