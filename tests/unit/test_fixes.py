"""The harness fixes written per run (vllm_stack_e2e.fixes): found from what the run's values
render, changing only what each defect needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vllm_stack_e2e import fixes, values
from vllm_stack_e2e.helm import STANDIN_CHART, Helm

CURRENT = "integrated-monitoring"
RUN = fixes.FixContext("vse-run", "vllm")


@pytest.fixture(scope="module")
def helm() -> Helm:
    try:
        return Helm()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"helm not available here: {exc}")


def render(helm: Helm, plan: values.ValuesPlan, namespace: str = "vse-run") -> list[dict[str, Any]]:
    return helm.template(STANDIN_CHART, release="vllm", files=plan.files, sets=plan.sets, namespace=namespace)


def test_the_current_editions_step4_has_defects_6_and_7_and_the_first_editions_neither(helm: Helm) -> None:
    current = render(helm, values.plan_for(4, "fast", "lab", edition=CURRENT))
    assert set(fixes.found(current, (3, 6, 7), "vse-run")) == {3, 6, 7}
    first = render(helm, values.plan_for(4, "fast", "lab", edition="observability-script"))
    assert set(fixes.found(first, (3, 6, 7), "vse-run")) == {3}


def test_the_fix_overlay_changes_only_what_each_defect_needs(helm: Helm, tmp_path: Path) -> None:
    plan = values.plan_for(4, "fast", "lab", "scale-to-zero", edition=CURRENT)
    path, seen = fixes.overlay(plan, (6, 7), chart=str(STANDIN_CHART), run=RUN,
                               folder=tmp_path, name="scale-to-zero", helm=helm)
    assert path is not None and set(seen) == {6, 7}
    text = path.read_text()
    assert "NOT part of the tutorial" in text and "defect-7" in text and "defect-6" in text
    data = yaml.safe_load(text)
    assert data["servingEngineSpec"]["serviceMonitor"] == {"enabled": True}
    triggers = data["servingEngineSpec"]["modelSpec"][0]["keda"]["triggers"]
    assert [t["metadata"]["serverAddress"] for t in triggers] == [
        "http://vllm-kube-prometheus-stack-prometheus.vse-run.svc:9090"] * 2
    assert [t["metadata"]["query"] for t in triggers] == [
        "vllm:num_requests_waiting", "sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)"], "3 was not asked for"
    assert [t["metadata"]["threshold"] for t in triggers] == ["5", "1"]


def test_with_the_fix_applied_the_defects_are_gone(helm: Helm, tmp_path: Path) -> None:
    plan = values.plan_for(4, "fast", "lab", edition=CURRENT)
    path, _ = fixes.overlay(plan, (3, 6, 7), chart=str(STANDIN_CHART), run=RUN,
                            folder=tmp_path, name="step4", helm=helm)
    assert path is not None
    fixed = values.plan_for(4, "fast", "lab", extra=(str(path),), edition=CURRENT)
    assert fixes.found(render(helm, fixed), (3, 6, 7), "vse-run") == {}


def test_no_overlay_when_no_asked_defect_is_there(helm: Helm, tmp_path: Path) -> None:
    plan = values.plan_for(4, "fast", "lab", edition="observability-script")
    assert fixes.overlay(plan, (6, 7), chart=str(STANDIN_CHART), run=RUN,
                         folder=tmp_path, name="step4", helm=helm) == (None, {})
    assert not list(tmp_path.iterdir())


def test_the_fix_is_derived_from_the_profiles_variant_too(helm: Helm, tmp_path: Path) -> None:
    """The fix overlay comes last and replaces the trigger list: it must carry the variant's
    numbers (the fast keepalive's 8 s window), not the page's."""
    variant = values.with_variant("fast", "scale-to-zero", (), CURRENT)
    plan = values.plan_for(4, "fast", "lab", "scale-to-zero", variant, edition=CURRENT)
    path, _ = fixes.overlay(plan, (7,), chart=str(STANDIN_CHART), run=RUN,
                            folder=tmp_path, name="scale-to-zero", helm=helm)
    assert path is not None
    triggers = yaml.safe_load(path.read_text())["servingEngineSpec"]["modelSpec"][0]["keda"]["triggers"]
    assert triggers[1]["metadata"]["query"] == "sum(rate(vllm:num_incoming_requests_total[8s]) > bool 0)"


def test_with_keda_off_defect_6_is_still_found_and_fixed(helm: Helm, tmp_path: Path) -> None:
    """An upgrade that turns KEDA off renders no ScaledObject; it must keep the engines'
    ServiceMonitor all the same (a removed job's series linger without staleness markers)."""
    plan = values.plan_for(4, "fast", "lab", "keda-disabled", edition=CURRENT)
    path, seen = fixes.overlay(plan, (3, 6, 7), chart=str(STANDIN_CHART), run=RUN,
                               folder=tmp_path, name="keda-disabled", helm=helm)
    assert set(seen) == {6}
    assert path is not None and yaml.safe_load(path.read_text()) == {"servingEngineSpec": {"serviceMonitor": {"enabled": True}}}


def test_the_fix_of_defect_11_sets_ignore_null_values_false_on_every_prometheus_trigger() -> None:
    from vllm_stack_e2e import fixes as F

    trigger = {"type": "prometheus", "metadata": {"serverAddress": "http://p:9090", "query": "q", "threshold": "5"}}
    fixed = F.fixed_trigger(trigger, {11}, F.FixContext("ns"))
    assert fixed["metadata"] == {**trigger["metadata"], "ignoreNullValues": "false"}, fixed
    assert "ignoreNullValues" not in F.fixed_trigger(trigger, {3}, F.FixContext("ns"))["metadata"]


def test_a_new_defect_with_a_fix_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trigger fix that needs the run's Prometheus, and a values fix of both ServiceMonitors' labels."""
    from vllm_stack_e2e import defects

    def to_prometheus(meta: dict[str, Any], run: defects.FixContext) -> dict[str, Any]:
        assert run.prometheus is not None
        return {**meta, "serverAddress": f"http://{run.prometheus[1]}.{run.prometheus[0]}.svc:9090"}

    def labels(docs: list[Any], run: defects.FixContext) -> dict[str, Any]:
        return {"servingEngineSpec": {"serviceMonitor": {"additionalLabels": {"release": run.release}}},
                "routerSpec": {"serviceMonitor": {"additionalLabels": {"release": run.release}}}}

    monkeypatch.setitem(defects.DEFECTS, 98, defects.Defect(98, "t", "e", "f", fix_trigger=to_prometheus))
    monkeypatch.setitem(defects.DEFECTS, 99, defects.Defect(99, "t", "e", "f", fix_values=labels))
    so = {"kind": "ScaledObject", "spec": {"triggers": [
        {"type": "prometheus", "metadata": {"serverAddress": "http://p:9090", "query": "q", "threshold": "5"}}]}}
    run = fixes.FixContext("ns", "vllm", ("monitoring", "prometheus-operated"))
    assert fixes.overlay_values([so], {6, 98, 99}, run) == {
        "servingEngineSpec": {"modelSpec": [{"keda": {"triggers": [{"type": "prometheus", "metadata": {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090", "query": "q", "threshold": "5"}}]}}],
            "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "vllm"}}},
        "routerSpec": {"serviceMonitor": {"additionalLabels": {"release": "vllm"}}}}


EXISTING = "existing-prometheus"
EXISTING_RUN = fixes.FixContext("vse-run", "vllm", ("prometheus", "kube-prometheus-stack-prometheus"),
                                "kube-prometheus-stack")


def test_the_existing_prometheus_note_renders_defects_6_7_12_and_13(helm: Helm) -> None:
    """The page's note (subchart off, ServiceMonitors on) keeps the page's step-4 values: the engine's
    ServiceMonitor dropped (6), the short name (7) of a Service that is not there (13), and
    ServiceMonitors labelled release=test/router that a stock kube-prometheus-stack passes by (12)."""
    step2 = render(helm, values.plan_for(2, "fast", "lab", edition=EXISTING))
    assert set(fixes.found(step2, (6, 12), "vse-run")) == {12}, "step 2 has both ServiceMonitors"
    step4 = render(helm, values.plan_for(4, "fast", "lab", edition=EXISTING))
    assert set(fixes.found(step4, (3, 6, 7, 12, 13), "vse-run")) == {3, 6, 7, 12, 13}


def test_the_existing_prometheus_fixes_label_the_monitors_and_name_the_stacks_service(
        helm: Helm, tmp_path: Path) -> None:
    plan = values.plan_for(4, "fast", "lab", edition=EXISTING)
    path, seen = fixes.overlay(plan, (6, 7, 12, 13), chart=str(STANDIN_CHART), run=EXISTING_RUN,
                               folder=tmp_path, name="step4", helm=helm)
    assert path is not None and set(seen) == {6, 7, 12, 13}
    data = yaml.safe_load(path.read_text())
    assert data["servingEngineSpec"]["serviceMonitor"] == {
        "enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}}
    assert data["routerSpec"]["serviceMonitor"] == {"additionalLabels": {"release": "kube-prometheus-stack"}}
    triggers = data["servingEngineSpec"]["modelSpec"][0]["keda"]["triggers"]
    assert [t["metadata"]["serverAddress"] for t in triggers] == [
        "http://kube-prometheus-stack-prometheus.prometheus.svc:9090"]
    fixed = render(helm, values.plan_for(4, "fast", "lab", extra=(str(path),), edition=EXISTING))
    assert fixes.found(fixed, (6, 7, 12, 13), "vse-run") == {}
    monitors = {d["metadata"]["name"]: d["metadata"]["labels"] for d in fixed if d and d["kind"] == "ServiceMonitor"}
    assert {labels["release"] for labels in monitors.values()} == {"kube-prometheus-stack"}, monitors
