"""Step 5 — "Verify KEDA ScaledObject creation": `kubectl get scaledobjects` shows
vllm-llama3-scaledobject on apps/v1.Deployment vllm-llama3-deployment-vllm, MIN 1, MAX 3,
TRIGGERS prometheus, READY True; `kubectl get hpa` shows keda-hpa-vllm-llama3-scaledobject,
TARGETS 0/5 (avg), MINPODS 1, MAXPODS 3, REPLICAS 1."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import floors, waits
from vllm_stack_e2e import kube as k
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scaledobject(keda_enabled: Stack) -> dict[str, Any]:
    obj = keda_enabled.scaledobject.get().obj
    assert obj is not None, f"ScaledObject {keda_enabled.config.scaledobject} not found"
    return obj


@pytest.fixture(scope="module")
def hpa_reading(keda_enabled: Stack) -> waits.Seen[k.Obj | None]:
    """The HPA, watched until it holds a reading of its external metric (the tutorial's TARGETS
    0/5). A failed fetch also leaves an entry in status.currentMetrics, one with no value: only
    an `external.current` counts. Budget: two HPA syncs and the margin (floors.first_hpa_reading)."""
    budget = floors.first_hpa_reading(keda_enabled.config.profile_settings.hpa_sync_seconds)
    left = budget.seconds - keda_enabled.hpa.get().age()  # counted from the HPA's creation: its syncs are
    return keda_enabled.hpa.reach(
        k.hpa_reads_external_metric, max(left, 1.0),
        f"HPA {keda_enabled.config.hpa} reads its external metric (budget {budget}, from its creation)")


@pytest.fixture(scope="module")
def hpa(hpa_reading: waits.Seen[k.Obj | None]) -> dict[str, Any]:
    if hpa_reading.state is None:
        pytest.fail(f"no HPA to read: {hpa_reading.explain()}")
    return hpa_reading.state


def test_scaledobject_targets_engine_deployment(keda_enabled: Stack, scaledobject: dict[str, Any]) -> None:
    ref = scaledobject["spec"]["scaleTargetRef"]
    assert ref["name"] == keda_enabled.config.engine_deployment
    assert ref.get("kind", "Deployment") == "Deployment" and ref.get("apiVersion", "apps/v1") == "apps/v1"


def test_scaledobject_min_max(scaledobject: dict[str, Any], tutorial_keda: dict[str, Any]) -> None:
    spec = scaledobject["spec"]
    got = (spec["minReplicaCount"], spec["maxReplicaCount"])
    want = (tutorial_keda["minReplicaCount"], tutorial_keda["maxReplicaCount"])
    assert got == want, f"ScaledObject (minReplicaCount, maxReplicaCount) = {got}, the page's values: {want}"


def test_scaledobject_has_one_prometheus_trigger(scaledobject: dict[str, Any], tutorial_keda: dict[str, Any]) -> None:
    triggers = scaledobject["spec"]["triggers"]
    assert [t["type"] for t in triggers] == ["prometheus"]
    assert triggers[0]["metadata"]["query"] == tutorial_keda["triggers"][0]["metadata"]["query"]
    assert triggers[0]["metadata"]["threshold"] == "5"


@pytest.fixture(scope="module")
def ready_held(keda_enabled: Stack, scaledobject: dict[str, Any]) -> waits.Held[k.Obj | None]:
    """The ScaledObject watched for two polling intervals (+ 5 s): READY True is a steady state,
    not the moment after the upgrade — KEDA turns it False (TriggerError) once its polls fail."""
    window = 2 * k.ScaledObject(scaledobject).polling_interval + 5
    return keda_enabled.scaledobject.hold(k.has_condition("Ready"), window, "ScaledObject Ready=True")


@pytest.mark.upstream_defect(7)
@pytest.mark.upstream_defect(13)
def test_scaledobject_ready(ready_held: waits.Held[k.Obj | None]) -> None:
    assert_reached(ready_held)


def test_hpa_min_max_and_replicas(hpa: dict[str, Any]) -> None:
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["status"]["currentReplicas"] == 1, k.summarize(hpa)


def test_hpa_targets_queue_length(hpa: dict[str, Any]) -> None:
    metrics = hpa["spec"]["metrics"]
    assert len(metrics) == 1 and metrics[0]["type"] == "External", metrics
    external = metrics[0]["external"]
    assert external["metric"]["name"] == "s0-prometheus"
    assert external["target"] == {"type": "AverageValue", "averageValue": "5"}


@pytest.mark.upstream_defect(7)
@pytest.mark.upstream_defect(13)
def test_hpa_reads_its_external_metric(hpa_reading: waits.Seen[k.Obj | None]) -> None:
    assert_reached(hpa_reading)


def test_hpa_metric_reading_is_zero_at_idle(hpa_reading: waits.Seen[k.Obj | None], hpa: dict[str, Any]) -> None:
    requires(hpa_reading)
    current = hpa["status"]["currentMetrics"][0]["external"]["current"]
    assert current.get("averageValue") == "0", current


@pytest.fixture(scope="module")
def trigger_metric_findings(keda_enabled: Stack, scaledobject: dict[str, Any], scraped: waits.Seen[float | None]
                            ) -> tuple[waits.Seen[float | None], list[Any]]:
    """Preflight, once Prometheus holds the engine's metrics (the premise: step 1's claims, the
    engine scraped and its series stored): what it finds in each trigger query of the deployed
    ScaledObject, added to the run's preflight report and printed."""
    from vllm_stack_e2e import preflight
    from vllm_stack_e2e.scaledobject import scaledobjects_from_manifest

    if not scraped.reached:
        return scraped, []
    prom = keda_enabled.prometheus()
    stored = prom.reach_value(f'count(vllm:num_requests_waiting{{namespace="{keda_enabled.namespace}"}}) or '
                              f'count(vllm_num_requests_waiting{{namespace="{keda_enabled.namespace}"}})',
                              lambda v: (v or 0) >= 1, 90, "engine metrics stored in Prometheus")
    if not stored.reached:
        return stored, []
    findings = preflight.check_trigger_metrics(prom, scaledobjects_from_manifest([scaledobject]))
    if keda_enabled.preflight is not None:
        keda_enabled.preflight.extend(findings)
    for line in findings:
        keda_enabled.echo(f"preflight {line}")
    return stored, findings


def test_trigger_queries_name_metrics_prometheus_stores(
        trigger_metric_findings: tuple[waits.Seen[float | None], list[Any]]) -> None:
    """Each trigger query names the metric in the form this Prometheus stores (colons on 3.x,
    underscores on 2.x — docs/metrics.md) and selects labels the series carry
    (docs/upstream-defects.md#defect-2). Its premise — the engine's metrics stored — is step 1's
    test_queue_metric_has_series_for_the_engine."""
    stored, findings = trigger_metric_findings
    requires(stored)
    errors = [str(f) for f in findings if f.severity == "error"]
    assert not errors, errors
