"""values/ and vllm_stack_e2e.values: the tutorial's files verbatim, the order a run applies
overlays in, what helm renders from them, and the checks that explain known defects."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_stack_e2e import checks as C
from vllm_stack_e2e import scaledobject as S
from vllm_stack_e2e import values as V
from vllm_stack_e2e.errors import ConfigError, ProvisionError
from vllm_stack_e2e.helm import Helm

VALUES = Path(__file__).resolve().parents[2] / "values"
STEP2, STEP4 = VALUES / "tutorial-step2.yaml", VALUES / "tutorial-step4.yaml"

# The tutorial's values blocks ("Autoscaling with KEDA", steps 2 and 4), as printed there.
TUTORIAL_STEP2 = """\
servingEngineSpec:
  enableEngine: true
  modelSpec:
    - name: "llama3"
      repository: "lmcache/vllm-openai"
      tag: "latest"
      modelURL: "meta-llama/Llama-3.1-8B-Instruct"
      replicaCount: 1
      requestCPU: 10
      requestMemory: "64Gi"
      requestGPU: 1
"""
TUTORIAL_STEP4 = TUTORIAL_STEP2 + """
      # Enable KEDA autoscaling
      keda:
        enabled: true
        minReplicaCount: 1
        maxReplicaCount: 3
        pollingInterval: 15
        cooldownPeriod: 360
        triggers:
          - type: prometheus
            metadata:
              serverAddress: http://prometheus-operated.monitoring.svc:9090
              metricName: vllm:num_requests_waiting
              query: vllm:num_requests_waiting
              threshold: '5'
"""




def body(path: Path) -> str:
    """A values file without its leading comment header."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


# -- the tutorial's files ------------------------------------------------------------------------


def test_step2_file_is_the_tutorials_text_verbatim() -> None:
    assert body(STEP2) == TUTORIAL_STEP2


def test_step4_file_is_the_tutorials_text_verbatim() -> None:
    assert body(STEP4) == TUTORIAL_STEP4


def test_step4_keeps_the_tutorials_key_order_and_types() -> None:
    spec = V.load_values(STEP4)["servingEngineSpec"]["modelSpec"][0]
    assert list(spec) == ["name", "repository", "tag", "modelURL", "replicaCount", "requestCPU",
                          "requestMemory", "requestGPU", "keda"]
    assert list(spec["keda"]) == ["enabled", "minReplicaCount", "maxReplicaCount", "pollingInterval",
                                  "cooldownPeriod", "triggers"]
    assert spec["keda"]["triggers"][0]["metadata"]["threshold"] == "5"  # a string, as KEDA wants


def test_every_overlay_says_why_it_exists() -> None:
    for path in sorted(VALUES.glob("*.yaml")):
        assert path.read_text().startswith("# "), f"{path.name} has no comment header"
        V.load_values(path)  # and parses


# -- loading -------------------------------------------------------------------------------------


def test_yaml_errors_name_file_line_column_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("servingEngineSpec:\n  modelSpec:\n    - name: a\n   keda: x\n")
    with pytest.raises(ConfigError) as info:
        V.load_values(bad)
    message = str(info.value)
    assert message.startswith("bad.yaml:4:4: not valid YAML")
    assert "\n" not in message and "fix the indentation" in message


def test_missing_file_and_non_mapping_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        V.load_values(tmp_path / "nope.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level is a list, helm needs a mapping"):
        V.load_values(listing)


def test_empty_and_comment_only_files_are_empty_values(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert V.load_values(empty) == {}
    assert V.load_values(VALUES / "backend-lab.yaml") == {}


# -- which files, in which order -----------------------------------------------------------------


def test_merge_order_is_step_profile_backend_scenario_extra() -> None:
    files = V.merge_order(4, profile="fast", backend="lab", scenario="fallback", extra=["cpu-engine.yaml"])
    assert [f.name for f in files] == [
        "tutorial-step4.yaml", "profile-fast.yaml", "backend-lab.yaml", "scenario-fallback.yaml", "cpu-engine.yaml",
    ]


def test_tutorial_profile_and_current_backend_add_nothing() -> None:
    assert V.merge_order(4, profile="tutorial", backend="current") == [STEP4]
    assert V.merge_order(2) == [STEP2]


def test_backend_may_name_a_plain_overlay_file() -> None:
    assert [f.name for f in V.merge_order(4, backend="cpu-engine")] == ["tutorial-step4.yaml", "cpu-engine.yaml"]


@pytest.mark.parametrize("kwargs, match", [
    ({"step": 3}, r"step 3 has no values file"),
    ({"step": 4, "scenario": "nope"}, r"no scenario 'nope'.*choose one of fallback, hpa-behavior, keda-disabled, scale-to-zero"),
    ({"step": 4, "profile": "slow"}, r"no profile 'slow'.*tutorial, fast"),
    ({"step": 2, "scenario": "fallback"}, r"which step 2 does not have"),
    ({"step": 4, "extra": ["missing.yaml"]}, r"overlay missing.yaml not found"),
])
def test_merge_order_rejects_unknown_choices(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        V.merge_order(**kwargs)


def test_available_lists_each_kind() -> None:
    assert V.available("scenario") == ["fallback", "hpa-behavior", "keda-disabled", "scale-to-zero",
                                       "upgrade-replica-count", "upgrade-unrelated"]
    assert V.available("profile") == ["tutorial", "fast"]
    assert V.available("backend") == ["current", "lab", "cpu-engine"]


# -- overlays as helm arguments ------------------------------------------------------------------


def test_overlays_patch_model_spec_entries_as_set_paths() -> None:
    assert V.overlay_sets(VALUES / "profile-fast.yaml") == [
        ("servingEngineSpec.modelSpec[0].keda.pollingInterval", 3),
        ("servingEngineSpec.modelSpec[0].keda.cooldownPeriod", 10),
        ("servingEngineSpec.modelSpec[0].keda.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds", 20),
        ("servingEngineSpec.serviceMonitor.interval", "3s"),
        ("servingEngineSpec.serviceMonitor.scrapeTimeout", "3s"),
        ("servingEngineSpec.startupProbe.initialDelaySeconds", 1),
        ("servingEngineSpec.startupProbe.periodSeconds", 1),
        ("servingEngineSpec.startupProbe.failureThreshold", 600),
        ("servingEngineSpec.readinessProbe.initialDelaySeconds", 1),
        ("servingEngineSpec.readinessProbe.periodSeconds", 1),
        ("servingEngineSpec.livenessProbe.initialDelaySeconds", 1),
        ("routerSpec.serviceMonitor.interval", "3s"),
        ("routerSpec.serviceMonitor.scrapeTimeout", "3s"),
        ("routerSpec.startupProbe.initialDelaySeconds", 0),
        ("routerSpec.startupProbe.periodSeconds", 1),
        ("routerSpec.startupProbe.failureThreshold", 30),
        ("routerSpec.readinessProbe.initialDelaySeconds", 0),
        ("routerSpec.readinessProbe.periodSeconds", 1),
        ("routerSpec.livenessProbe.initialDelaySeconds", 0),
    ]


def test_an_editions_own_files_win_over_the_shared_ones() -> None:
    files = V.merge_order(4, "fast", "lab", "scale-to-zero", edition="integrated-monitoring")
    assert files[0] == VALUES / "integrated-monitoring" / "tutorial-step4.yaml"
    assert files[-1] == VALUES / "integrated-monitoring" / "scenario-scale-to-zero.yaml"
    assert files[1] == VALUES / "profile-fast.yaml", "an overlay the edition does not pin is the shared one"
    assert V.merge_order(4, "fast", None, "monitoring-disabled", edition="integrated-monitoring")[-1] == (
        VALUES / "integrated-monitoring" / "scenario-monitoring-disabled.yaml")
    assert V.merge_order(4, edition="observability-script")[0] == VALUES / "tutorial-step4.yaml"


def test_lists_other_than_model_spec_replace_whole() -> None:
    sets = dict(V.overlay_sets(VALUES / "scenario-scale-to-zero.yaml"))
    triggers = sets["servingEngineSpec.modelSpec[0].keda.triggers"]
    assert [t["metadata"]["threshold"] for t in triggers] == ["5", "1"]


def test_keys_with_dots_are_escaped(tmp_path: Path) -> None:
    overlay = tmp_path / "labels.yaml"
    overlay.write_text("servingEngineSpec:\n  labels:\n    example.com/team: ml\n")
    assert V.overlay_sets(overlay) == [("servingEngineSpec.labels.example\\.com/team", "ml")]


def test_a_patch_beyond_the_bases_model_specs_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "two.yaml"
    overlay.write_text("servingEngineSpec:\n  modelSpec:\n    - {}\n    - keda: {enabled: true}\n")
    with pytest.raises(ConfigError, match=r"patches servingEngineSpec.modelSpec\[1\] but .* has 1 model spec"):
        V.plan_values([STEP4, overlay])


def test_a_patch_naming_another_model_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "other.yaml"
    overlay.write_text("servingEngineSpec:\n  modelSpec:\n    - name: mistral\n      replicaCount: 2\n")
    with pytest.raises(ConfigError, match="patches modelSpec\\[0\\] as 'mistral' but in .* it is 'llama3'"):
        V.plan_values([STEP4, overlay])


def test_plan_sends_the_base_as_a_file_and_overlays_as_sets_then_extras() -> None:
    plan = V.plan_for(4, profile="fast", sets={"servingEngineSpec.modelSpec[0].repository": "ghcr.io/x/sim"})
    assert plan.files == [STEP4]
    assert plan.sources == [STEP4, VALUES / "profile-fast.yaml"]
    assert plan.sets[0] == ("servingEngineSpec.modelSpec[0].keda.pollingInterval", 3)
    assert plan.sets[-1] == ("servingEngineSpec.modelSpec[0].repository", "ghcr.io/x/sim")


def test_describe_overlay_is_the_exact_line_a_run_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(VALUES.parent)
    plan = V.plan_for(4, profile="fast", scenario="keda-disabled")
    assert plan.describe() == (
        "applied overlay: tutorial-step4.yaml + profile-fast.yaml + scenario-keda-disabled.yaml "
        "(helm -f values/tutorial-step4.yaml"
        " --set-json 'servingEngineSpec.modelSpec[0].keda.pollingInterval=3'"
        " --set-json 'servingEngineSpec.modelSpec[0].keda.cooldownPeriod=10'"
        " --set-json 'servingEngineSpec.modelSpec[0].keda.advanced.horizontalPodAutoscalerConfig.behavior"
        ".scaleDown.stabilizationWindowSeconds=20'"
        " --set-json 'servingEngineSpec.serviceMonitor.interval=\"3s\"'"
        " --set-json 'servingEngineSpec.serviceMonitor.scrapeTimeout=\"3s\"'"
        " --set-json servingEngineSpec.startupProbe.initialDelaySeconds=1"
        " --set-json servingEngineSpec.startupProbe.periodSeconds=1"
        " --set-json servingEngineSpec.startupProbe.failureThreshold=600"
        " --set-json servingEngineSpec.readinessProbe.initialDelaySeconds=1"
        " --set-json servingEngineSpec.readinessProbe.periodSeconds=1"
        " --set-json servingEngineSpec.livenessProbe.initialDelaySeconds=1"
        " --set-json 'routerSpec.serviceMonitor.interval=\"3s\"'"
        " --set-json 'routerSpec.serviceMonitor.scrapeTimeout=\"3s\"'"
        " --set-json routerSpec.startupProbe.initialDelaySeconds=0"
        " --set-json routerSpec.startupProbe.periodSeconds=1"
        " --set-json routerSpec.startupProbe.failureThreshold=30"
        " --set-json routerSpec.readinessProbe.initialDelaySeconds=0"
        " --set-json routerSpec.readinessProbe.periodSeconds=1"
        " --set-json routerSpec.livenessProbe.initialDelaySeconds=0"
        " --set-json 'servingEngineSpec.modelSpec[0].keda.enabled=false')"
    )
    assert V.describe_overlay([STEP4]) == "applied overlay: tutorial-step4.yaml (helm -f values/tutorial-step4.yaml)"


def test_describe_overlay_masks_secrets() -> None:
    line = V.describe_overlay([STEP4], [("servingEngineSpec.modelSpec[0].hf_token", "hf_abc123")])
    assert "hf_abc123" not in line
    assert "servingEngineSpec.modelSpec[0].hf_token=***" in line


# -- what helm makes of them ---------------------------------------------------------------------


def test_effective_keda_of_the_tutorial(helm: Helm) -> None:
    [so] = S.effective_keda([STEP4], helm=helm)
    assert (so.name, so.target) == ("vllm-llama3-scaledobject", "vllm-llama3-deployment-vllm")
    assert (so.min_replica_count, so.max_replica_count, so.polling_interval, so.cooldown_period) == (1, 3, 15, 360)
    assert [(t.type, t.server_address, t.query, t.threshold) for t in so.triggers] == [
        ("prometheus", "http://prometheus-operated.monitoring.svc:9090", "vllm:num_requests_waiting", "5"),
    ]
    assert (so.hpa_name, so.hpa_min_replicas, so.hpa_metric_name(0)) == ("keda-hpa-vllm-llama3-scaledobject", 1, "s0-prometheus")


def test_effective_keda_applies_overlays_in_order(helm: Helm) -> None:
    [so] = S.effective_keda(V.merge_order(4, profile="fast", backend="lab", scenario="scale-to-zero"), helm=helm)
    assert (so.min_replica_count, so.max_replica_count, so.polling_interval, so.cooldown_period) == (0, 5, 3, 10)
    assert so.hpa_min_replicas == 1  # KEDA moves 0↔1 itself
    assert [t.threshold for t in so.triggers] == ["5", "1"]
    assert so.behavior == {"scaleDown": {"stabilizationWindowSeconds": 20}}


def test_effective_keda_with_keda_disabled_is_empty(helm: Helm) -> None:
    assert S.effective_keda(V.merge_order(4, scenario="keda-disabled"), helm=helm) == []
    assert S.effective_keda([STEP2], helm=helm) == []


def test_effective_defaults_are_kedas_when_the_chart_writes_nothing(helm: Helm, tmp_path: Path) -> None:
    overlay = tmp_path / "bare.yaml"
    overlay.write_text("servingEngineSpec:\n  modelSpec:\n    - keda: {enabled: true}\n")
    [so] = S.effective_keda([STEP2, overlay], helm=helm)
    assert (so.min_replica_count, so.polling_interval) == (None, None)
    assert (so.effective_min, so.effective_max, so.effective_polling_interval, so.effective_cooldown_period) == (0, 100, 30, 300)
    assert so.triggers[0].query == 'vllm:num_requests_waiting{model="llama3"}'


@pytest.mark.parametrize("values_text", [
    TUTORIAL_STEP4,
    TUTORIAL_STEP2 + "      keda: {enabled: true, fallback: {failureThreshold: 3, replicas: 2}}\n",
    TUTORIAL_STEP2 + "      keda: {enabled: true, advanced: {horizontalPodAutoscalerConfig: {name: my-hpa}}}\n",
    TUTORIAL_STEP2 + "      keda: {enabled: false}\n",
])
def test_keda_from_values_agrees_with_helm(helm: Helm, tmp_path: Path, values_text: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values_text)
    from_helm = [s.__class__(**{**s.__dict__, "namespace": None}) for s in S.effective_keda([path], helm=helm)]
    assert S.keda_from_values(V.load_values(path)) == from_helm


# -- checks --------------------------------------------------------------------------------------


def settings(query: str, *, maximum: int | None = 3, **metadata: str) -> S.KedaSettings:
    meta = {"serverAddress": S.CHART_DEFAULT_SERVER, "query": query, "threshold": "5", **metadata}
    return S.KedaSettings(name="vllm-llama3-scaledobject", target="t", max_replica_count=maximum,
                          triggers=(S.KedaTrigger(type="prometheus", metadata=meta),))


def test_the_tutorials_bare_query_is_flagged_as_defect_3() -> None:
    [finding] = C.check_keda(settings("vllm:num_requests_waiting"))
    assert (finding.severity, finding.defect) == ("warning", 3)
    assert "more than one element" in finding.message
    assert finding.fix == "aggregate it: sum(vllm:num_requests_waiting)"


def test_a_bare_query_is_fine_when_one_replica_is_the_most() -> None:
    assert C.check_keda(settings("vllm:num_requests_waiting", maximum=1)) == []


def test_an_aggregated_query_is_fine() -> None:
    assert C.check_keda(settings("sum(vllm:num_requests_waiting)")) == []


def test_the_charts_default_trigger_is_flagged_as_defect_2() -> None:
    so = S.KedaSettings(name="so", target="t", max_replica_count=1, triggers=(S.default_trigger("llama3"),))
    [finding] = C.check_keda(so, model_url="meta-llama/Llama-3.1-8B-Instruct")
    assert finding.defect == 2 and "model_name" in finding.message
    assert 'model_name="meta-llama/Llama-3.1-8B-Instruct"' in finding.fix


def test_a_model_selector_on_the_routers_counter_is_fine() -> None:
    # the router's vllm:num_incoming_requests_total does carry a model label
    assert C.check_keda(settings('sum(rate(vllm:num_incoming_requests_total{model="x"}[1m]))')) == []


def test_the_bundled_prometheus_with_the_standalone_address_is_defect_4() -> None:
    findings = C.check_keda(settings("sum(vllm:num_requests_waiting)"), bundled_prometheus_release="vllm")
    assert [f.defect for f in findings] == [4]
    assert "http://vllm-kube-prometheus-stack-prometheus.<release namespace>.svc:9090" in findings[0].fix, findings[0].fix


def test_missing_required_trigger_fields_and_inverted_bounds_are_errors() -> None:
    so = S.KedaSettings(name="so", target="t", min_replica_count=4, max_replica_count=2,
                        triggers=(S.KedaTrigger(type="prometheus", metadata={"query": "sum(x)"}),))
    errors = [f for f in C.check_keda(so) if f.severity == "error"]
    assert len(errors) == 2
    assert "minReplicaCount 4 > maxReplicaCount 2" in errors[0].message
    assert "lacks serverAddress, threshold" in errors[1].message


def test_check_values_of_the_tutorial_finds_only_defect_3() -> None:
    findings = C.check_values(V.load_values(STEP4), source="tutorial-step4.yaml")
    assert [(f.severity, f.defect) for f in findings] == [("warning", 3)]
    assert str(findings[0]).startswith("warning: ScaledObject vllm-llama3-scaledobject trigger 0")


def test_check_values_explains_triggers_written_as_a_map() -> None:
    values = V.load_values(STEP4)
    values["servingEngineSpec"]["modelSpec"][0]["keda"]["triggers"] = {"type": "prometheus"}
    findings = C.check_values(values)
    assert findings[0].defect == 1 and findings[0].severity == "error"
    assert "needs a list" in findings[0].message


def test_check_values_requires_the_charts_model_keys() -> None:
    findings = C.check_values({"servingEngineSpec": {"modelSpec": [{"name": "m", "requestGPU": 1}]}})
    assert [f.severity for f in findings] == ["error"]
    assert "lacks repository, tag, modelURL, requestCPU, requestMemory" in findings[0].message


def test_every_scenario_passes_the_checks_except_the_tutorials_known_defect(helm: Helm) -> None:
    for scenario in V.available("scenario"):
        for so in S.effective_keda(V.merge_order(4, profile="fast", scenario=scenario), helm=helm):
            assert {f.defect for f in C.check_keda(so)} <= {3}, scenario


def test_the_current_editions_step4_values_lose_the_engines_servicemonitor() -> None:
    """Upstream defect 6: the page's step-2 values enable the engine's ServiceMonitor, its step-4
    values leave it out and the chart's default is off — the check says so; step 2 is fine."""
    current = V.VALUES_DIR / "integrated-monitoring"
    step4 = C.check_values(V.load_values(current / "tutorial-step4.yaml"), source="tutorial-step4.yaml")
    assert [f.defect for f in step4 if f.defect == 6] == [6], [str(f) for f in step4]
    assert "servingEngineSpec.serviceMonitor" in next(f for f in step4 if f.defect == 6).message
    step2 = C.check_values(V.load_values(current / "tutorial-step2.yaml"), source="tutorial-step2.yaml")
    assert not [f for f in step2 if f.defect == 6], [str(f) for f in step2]


def test_the_current_editions_short_server_name_is_defect_7() -> None:
    current = V.VALUES_DIR / "integrated-monitoring"
    findings = [f for f in C.check_values(V.load_values(current / "tutorial-step4.yaml")) if f.defect == 7]
    assert len(findings) == 1, [str(f) for f in findings]
    assert "resolves in its own namespace (keda)" in findings[0].message
    assert findings[0].fix.endswith(
        "http://vllm-kube-prometheus-stack-prometheus.<release namespace>.svc:9090"), findings[0].fix
    first = C.check_values(V.load_values(STEP4))
    assert not [f for f in first if f.defect == 7], "the first edition's FQDN is fine"


def test_an_editions_own_variant_wins() -> None:
    assert V.with_variant("fast", "scale-to-zero", ("x.yaml",), "integrated-monitoring") == (
        "integrated-monitoring/variant-fast-scale-to-zero.yaml", "x.yaml")
    assert V.with_variant("fast", "scale-to-zero", (), "observability-script") == ("variant-fast-scale-to-zero.yaml",)
    assert V.with_variant("fast", "hpa-behavior", (), "integrated-monitoring") == ("variant-fast-hpa-behavior.yaml",)
    assert V.with_variant("tutorial", "scale-to-zero", (), "integrated-monitoring") == ()
    files = V.merge_order(4, "fast", "lab", "scale-to-zero",
                          V.with_variant("fast", "scale-to-zero", (), "integrated-monitoring"), edition="integrated-monitoring")
    assert files[-1] == VALUES / "integrated-monitoring" / "variant-fast-scale-to-zero.yaml"


# -- a release's values against the page's -------------------------------------------------------


@pytest.mark.parametrize("step4", [STEP4, VALUES / "integrated-monitoring" / "tutorial-step4.yaml"])
def test_every_editions_step4_file_pins_the_pages_min_and_max(step4: Path) -> None:
    """Step 5's page shows MIN 1, MAX 3: the pinned files say so (step 5 compares the cluster with them)."""
    keda = V.load_values(step4)["servingEngineSpec"]["modelSpec"][0]["keda"]
    assert (keda["minReplicaCount"], keda["maxReplicaCount"]) == (1, 3)


def test_leaves_walk_maps_and_model_specs_and_keep_other_lists_whole() -> None:
    got = V.leaves({"a": {"b": 1, "c": []}, "servingEngineSpec": {"modelSpec": [{"keda": {"triggers": [{"x": 1}]}}]}})
    assert got == {"a.b": 1, "a.c": [], "servingEngineSpec.modelSpec[0].keda.triggers": [{"x": 1}]}


def _overlay(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(f"# {name}\n{text}")
    return path


def test_a_release_with_the_pages_values_holds(tmp_path: Path) -> None:
    page = V.load_values(STEP4)
    judged = V.against_page(page, page, V.plan_values([STEP4]))
    assert not judged.broken and not judged.harness
    assert "servingEngineSpec.modelSpec[0].keda.triggers" in judged.kept


def test_an_overlays_rewrite_is_listed_apart_by_name(tmp_path: Path) -> None:
    fix = _overlay(tmp_path, "fix-step4.yaml", "servingEngineSpec:\n  modelSpec:\n    - keda:\n"
                   "        pollingInterval: 5\n        fallback: {replicas: 2}\n")
    page = V.load_values(STEP4)
    release = V.load_values(STEP4)
    release["servingEngineSpec"]["modelSpec"][0]["keda"].update(pollingInterval=5, fallback={"replicas": 2})
    judged = V.against_page(page, release, V.plan_values([STEP4, fix]))
    assert not judged.broken, judged.explain()
    assert ("servingEngineSpec.modelSpec[0].keda.pollingInterval", "fix-step4.yaml", 5) in judged.harness
    assert "fix-step4.yaml" in judged.explain()


def test_a_page_key_dropped_or_rewritten_by_no_overlay_fails(tmp_path: Path) -> None:
    page = V.load_values(STEP4)
    release = V.load_values(STEP4)
    keda = release["servingEngineSpec"]["modelSpec"][0]["keda"]
    del keda["cooldownPeriod"]
    keda["maxReplicaCount"] = 4
    release["extra"] = True
    judged = V.against_page(page, release, V.plan_values([STEP4]))
    assert judged.broken == ("servingEngineSpec.modelSpec[0].keda.maxReplicaCount: the page's 3 rewritten as 4",
                             "servingEngineSpec.modelSpec[0].keda.cooldownPeriod: the page's 360 dropped",
                             "extra=true: in the release, from neither the page nor an overlay")


def test_an_overlays_value_the_release_does_not_carry_fails(tmp_path: Path) -> None:
    fix = _overlay(tmp_path, "fix-step4.yaml",
                   "servingEngineSpec:\n  modelSpec:\n    - keda:\n        pollingInterval: 5\n")
    page = V.load_values(STEP4)
    judged = V.against_page(page, page, V.plan_values([STEP4, fix]))
    assert judged.broken == ("servingEngineSpec.modelSpec[0].keda.pollingInterval: fix-step4.yaml set 5, "
                             "the release has 15",)
