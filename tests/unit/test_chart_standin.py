"""The lab's stand-in chart renders the contract of vllm/vllm-stack 0.1.12 (docs/chart-contract.md), checked
with the real `helm template`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vllm_stack_e2e import values as V
from vllm_stack_e2e.errors import CommandError, ProvisionError
from vllm_stack_e2e.helm import STANDIN_CHART, Helm, is_stand_in

VALUES = Path(__file__).resolve().parents[2] / "values"
STEP2 = VALUES / "tutorial-step2.yaml"
STEP4 = VALUES / "tutorial-step4.yaml"
MARKER = "vllm-stack-e2e/stand-in"




_CACHE: dict[str, tuple[dict, ...]] = {}


def render(helm: Helm, *files: Path, sets: tuple[tuple[str, Any], ...] = (), release: str = "vllm") -> dict[tuple[str, str], dict]:
    """Rendered objects by (kind, name); files are base + overlays, as a run applies them.
    Renders are cached: several tests read the same rendering."""
    key = json.dumps([[str(f) for f in files], sets, release])
    if key not in _CACHE:
        plan = V.plan_values(files, sets)
        _CACHE[key] = tuple(helm.template(STANDIN_CHART, release=release, files=plan.files, sets=plan.sets))
    return {(d["kind"], d["metadata"]["name"]): copy.deepcopy(d) for d in _CACHE[key]}


def engine(objs: dict, name: str = "vllm-llama3-deployment-vllm") -> dict:
    return objs[("Deployment", name)]


def container(objs: dict, deployment: str = "vllm-llama3-deployment-vllm") -> dict:
    return engine(objs, deployment)["spec"]["template"]["spec"]["containers"][0]


def scaledobject(objs: dict) -> dict:
    return objs[("ScaledObject", "vllm-llama3-scaledobject")]


# -- identity ------------------------------------------------------------------------------------


def test_chart_declares_itself_a_standin(helm: Helm) -> None:
    meta = helm.show_chart(STANDIN_CHART)
    assert meta["name"] == "vllm-stack-standin"
    assert meta["version"].startswith("0.1.12-standin")
    assert "stand-in for vllm/vllm-stack 0.1.12" in meta["description"]
    assert meta["annotations"][MARKER] == "true"
    assert is_stand_in(meta)


def test_every_object_carries_the_standin_marker(helm: Helm) -> None:
    objs = render(helm, STEP4)
    for (kind, name), obj in objs.items():
        assert obj["metadata"]["labels"][MARKER] == "true", f"{kind}/{name} lacks the stand-in label"
        assert "stand-in for vllm/vllm-stack" in obj["metadata"]["annotations"][MARKER], f"{kind}/{name}"
    for deployment in ("vllm-llama3-deployment-vllm", "vllm-deployment-router"):
        template = objs[("Deployment", deployment)]["spec"]["template"]["metadata"]
        assert template["labels"][MARKER] == "true" and MARKER in template["annotations"]


def test_step2_renders_the_contracts_objects(helm: Helm) -> None:
    assert sorted(render(helm, STEP2)) == [
        ("Deployment", "vllm-deployment-router"),
        ("Deployment", "vllm-llama3-deployment-vllm"),
        ("Role", "vllm-reader"),
        ("RoleBinding", "vllm-deployment-access-binding"),
        ("Secret", "vllm-secrets"),
        ("Service", "vllm-llama3-engine-service"),
        ("Service", "vllm-router-service"),
        ("ServiceAccount", "vllm-router-service-account"),
    ]


def test_names_follow_release_and_model(helm: Helm) -> None:
    objs = render(helm, STEP4, release="demo")
    assert ("Deployment", "demo-llama3-deployment-vllm") in objs
    assert ("Service", "demo-llama3-engine-service") in objs
    assert ("Service", "demo-router-service") in objs
    assert ("ScaledObject", "demo-llama3-scaledobject") in objs
    assert scaledobject_target(objs["ScaledObject", "demo-llama3-scaledobject"]) == "demo-llama3-deployment-vllm"


def scaledobject_target(obj: dict) -> str:
    ref = obj["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
    return ref["name"]


# -- engine --------------------------------------------------------------------------------------

ENGINE_POD_LABELS = {
    "model": "llama3",
    "helm-release-name": "vllm",
    "app.kubernetes.io/name": "llama3",
    "app.kubernetes.io/instance": "vllm",
    "app.kubernetes.io/component": "serving-engine",
    "app.kubernetes.io/part-of": "vllm-stack",
    "app.kubernetes.io/managed-by": "helm",
    "environment": "test",
    "release": "test",
}


def test_engine_pod_labels_are_the_contracts(helm: Helm) -> None:
    deployment = engine(render(helm, STEP2))
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert {k: v for k, v in pod_labels.items() if k != MARKER} == ENGINE_POD_LABELS
    # the selector is exactly the contract's labels: immutable, so the marker stays out of it
    assert deployment["spec"]["selector"]["matchLabels"] == ENGINE_POD_LABELS


def test_engine_labels_follow_serving_engine_spec_labels(helm: Helm) -> None:
    objs = render(helm, STEP2, sets=(("servingEngineSpec.labels", {"environment": "prod", "tier": "gpu"}),))
    labels = engine(objs)["spec"]["template"]["metadata"]["labels"]
    assert labels["environment"] == "prod" and labels["tier"] == "gpu"
    router_args = objs[("Deployment", "vllm-deployment-router")]["spec"]["template"]["spec"]["containers"][0]["args"]
    selector = router_args[router_args.index("--k8s-label-selector") + 1]
    # helm merges the map into the default one, so release=test stays
    assert set(selector.split(",")) == {"environment=prod", "release=test", "tier=gpu"}


def test_engine_container_runs_vllm_serve_from_the_lmcache_venv(helm: Helm) -> None:
    c = container(render(helm, STEP2))
    assert c["name"] == "vllm"
    assert c["image"] == "lmcache/vllm-openai:latest"
    assert c["command"] == [
        "/opt/venv/bin/vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--host", "0.0.0.0", "--port", "8000",
    ]


def test_other_images_run_vllm_from_path(helm: Helm) -> None:
    c = container(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].repository", "ghcr.io/example/vllm-sim"),)))
    assert c["image"] == "ghcr.io/example/vllm-sim:latest"
    assert c["command"][:2] == ["vllm", "serve"]


def test_vllm_config_becomes_vllm_serve_flags(helm: Helm) -> None:
    config = {"maxNumSeqs": 4, "maxModelLen": 4096, "enableChunkedPrefill": True, "extraArgs": ["--seed", "7"]}
    c = container(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].vllmConfig", config),)))
    args = c["command"][7:]
    assert args == [
        "--enable-chunked-prefill", "--no-enable-prefix-caching",
        "--max-model-len", "4096", "--max-num-seqs", "4", "--seed", "7",
    ]
    assert {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp"} in c["env"]


def test_engine_env_keeps_the_charts_variables_and_adds_the_users(helm: Helm) -> None:
    env = container(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].env", [{"name": "SIM_SEED", "value": "1"}]),)))["env"]
    names = [e["name"] for e in env]
    assert names[:3] == ["PYTHONHASHSEED", "HF_HOME", "POD_IP"]
    assert env[-1] == {"name": "SIM_SEED", "value": "1"}


def test_engine_ports_and_health_probes(helm: Helm) -> None:
    c = container(render(helm, STEP2))
    assert {"name": "container-port", "containerPort": 8000} in c["ports"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": 8000}, probe
    # model load is slow: the startup probe allows 60 × 10 s before liveness takes over
    assert (c["startupProbe"]["failureThreshold"], c["startupProbe"]["periodSeconds"]) == (60, 10)
    assert (c["livenessProbe"]["periodSeconds"], c["readinessProbe"]["periodSeconds"]) == (10, 5)


def test_probe_timings_can_be_overridden(helm: Helm) -> None:
    c = container(render(helm, STEP2, sets=(("servingEngineSpec.startupProbe.initialDelaySeconds", 1),)))
    assert c["startupProbe"]["initialDelaySeconds"] == 1
    assert c["startupProbe"]["failureThreshold"] == 60


def test_runtime_class_defaults_to_nvidia(helm: Helm) -> None:
    assert engine(render(helm, STEP2))["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"


def test_empty_runtime_class_drops_the_field(helm: Helm) -> None:
    pod = engine(render(helm, STEP2, sets=(("servingEngineSpec.runtimeClassName", ""),)))["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod


def test_model_spec_runtime_class_wins_even_when_empty(helm: Helm) -> None:
    pod = engine(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].runtimeClassName", ""),)))["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod


def test_gpu_is_requested_and_limited_when_request_gpu_positive(helm: Helm) -> None:
    resources = container(render(helm, STEP2))["resources"]
    assert resources["requests"] == {"cpu": "10", "memory": "64Gi", "nvidia.com/gpu": "1"}
    assert resources["limits"] == {"nvidia.com/gpu": "1"}


def test_no_gpu_resource_at_all_when_request_gpu_zero(helm: Helm) -> None:
    resources = container(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].requestGPU", 0),)))["resources"]
    assert "nvidia.com/gpu" not in resources["requests"]
    assert "nvidia.com/gpu" not in (resources.get("limits") or {})


def test_replicas_follow_replica_count_without_keda(helm: Helm) -> None:
    assert engine(render(helm, STEP2))["spec"]["replicas"] == 1
    objs = render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].replicaCount", 2),))
    assert engine(objs)["spec"]["replicas"] == 2


def test_replicas_left_to_keda_when_enabled(helm: Helm) -> None:
    assert "replicas" not in engine(render(helm, STEP4))["spec"]


def test_keda_disabled_gives_replicas_back_and_renders_no_scaledobject(helm: Helm) -> None:
    objs = render(helm, STEP4, VALUES / "scenario-keda-disabled.yaml")
    assert engine(objs)["spec"]["replicas"] == 1
    assert not [k for k in objs if k[0] == "ScaledObject"]


def test_engine_service_port_80_named_service_port_to_8000(helm: Helm) -> None:
    objs = render(helm, STEP2)
    svc = objs[("Service", "vllm-llama3-engine-service")]
    port = next(p for p in svc["spec"]["ports"] if p["name"] == "service-port")
    assert (port["port"], port["targetPort"]) == (80, "container-port")
    assert svc["spec"]["selector"] == ENGINE_POD_LABELS
    # what observability's ServiceMonitor selects (managed-by becomes "Helm" at install time)
    assert (svc["metadata"]["labels"]["environment"], svc["metadata"]["labels"]["release"]) == ("test", "test")


# -- router --------------------------------------------------------------------------------------


def test_router_service_port_80_named_router_sport_to_8000(helm: Helm) -> None:
    objs = render(helm, STEP2)
    svc = objs[("Service", "vllm-router-service")]
    assert svc["spec"]["ports"] == [{"name": "router-sport", "port": 80, "targetPort": 8000, "protocol": "TCP"}]
    assert (svc["metadata"]["labels"]["environment"], svc["metadata"]["labels"]["release"]) == ("router", "router")
    pod_labels = objs[("Deployment", "vllm-deployment-router")]["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in svc["spec"]["selector"].items())


def test_router_discovers_engines_by_pod_ip_and_engine_labels(helm: Helm) -> None:
    objs = render(helm, STEP2)
    pod = objs[("Deployment", "vllm-deployment-router")]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "lmcache/lmstack-router:latest"
    assert pod["serviceAccountName"] == "vllm-router-service-account"
    args = c["args"]
    assert args[args.index("--k8s-service-discovery-type") + 1] == "pod-ip"
    assert args[args.index("--k8s-label-selector") + 1] == "environment=test,release=test"
    assert args[args.index("--port") + 1] == "8000"
    role = objs[("Role", "vllm-reader")]
    assert role["rules"][0]["resources"] == ["pods"] and "watch" in role["rules"][0]["verbs"]
    binding = objs[("RoleBinding", "vllm-deployment-access-binding")]
    assert binding["subjects"][0]["name"] == "vllm-router-service-account"
    assert binding["roleRef"]["name"] == "vllm-reader"


# -- secrets -------------------------------------------------------------------------------------


def test_hf_token_lives_in_the_secret_and_pods_reference_it(helm: Helm) -> None:
    objs = render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].hf_token", "hf_example"),))
    assert objs[("Secret", "vllm-secrets")]["data"] == {"hf_token_llama3": "aGZfZXhhbXBsZQ=="}
    env = {e["name"]: e for e in container(objs)["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "vllm-secrets", "key": "hf_token_llama3"}
    assert "hf_example" not in str(engine(objs))


def test_router_hf_token_is_not_written_into_the_pod_spec(helm: Helm) -> None:
    objs = render(helm, STEP2, sets=(("routerSpec.hf_token", "hf_router"),))
    router = objs[("Deployment", "vllm-deployment-router")]
    assert "hf_router" not in str(router)
    assert "router_hf_token" in objs[("Secret", "vllm-secrets")]["data"]


def _router_env(objs: dict) -> dict:
    router = objs[("Deployment", "vllm-deployment-router")]
    return {e["name"]: e for e in router["spec"]["template"]["spec"]["containers"][0].get("env") or []}


def test_an_api_key_reaches_engines_and_router_through_the_secret(helm: Helm) -> None:
    objs = render(helm, STEP2, sets=(("servingEngineSpec.vllmApiKey", "k3y"),))
    ref = {"name": "vllm-secrets", "key": "vllmApiKey"}
    assert {e["name"]: e for e in container(objs)["env"]}["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == ref
    assert _router_env(objs)["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == ref
    assert "k3y" not in str(engine(objs)) + str(objs[("Deployment", "vllm-deployment-router")])


def test_no_api_key_by_default_and_the_routers_own_secret_wins(helm: Helm, tmp_path: Path) -> None:
    objs = render(helm, STEP2)
    assert "VLLM_API_KEY" not in _router_env(objs)
    assert "VLLM_API_KEY" not in {e["name"] for e in container(objs)["env"]}
    overlay = tmp_path / "router-key.yaml"
    overlay.write_text("servingEngineSpec: {vllmApiKey: k3y}\n"
                       "routerSpec: {vllmApiKey: {secretName: mine, secretKey: router-api-key}}\n")
    own = render(helm, STEP2, overlay)
    # The harness masks every value given under a secret-like key in what helm prints (names of
    # Secrets too), so the router's own reference shows as masked, and not as the engines'.
    assert {e["name"]: e for e in container(own)["env"]}["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == \
        {"name": "vllm-secrets", "key": "vllmApiKey"}
    assert _router_env(own)["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "***", "key": "***"}


# -- the ScaledObject ----------------------------------------------------------------------------


def test_tutorial_step4_renders_the_scaledobject_the_tutorial_shows(helm: Helm) -> None:
    spec = scaledobject(render(helm, STEP4))["spec"]
    assert spec == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm-llama3-deployment-vllm"},
        "minReplicaCount": 1,
        "maxReplicaCount": 3,
        "pollingInterval": 15,
        "cooldownPeriod": 360,
        "triggers": [{
            "type": "prometheus",
            "metadata": {
                "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                "metricName": "vllm:num_requests_waiting",
                "query": "vllm:num_requests_waiting",
                "threshold": "5",
            },
        }],
    }


def test_scaledobject_carries_the_engine_labels(helm: Helm) -> None:
    labels = scaledobject(render(helm, STEP4))["metadata"]["labels"]
    assert {k: v for k, v in labels.items() if k != MARKER} == ENGINE_POD_LABELS


def test_default_trigger_when_keda_has_no_triggers(helm: Helm) -> None:
    spec = scaledobject(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].keda", {"enabled": True}),)))["spec"]
    assert spec["triggers"] == [{
        "type": "prometheus",
        "metadata": {
            "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
            "metricName": "vllm:num_requests_waiting",
            "query": 'vllm:num_requests_waiting{model="llama3"}',
            "threshold": "5",
        },
    }]
    # nothing else was given, so nothing else is written and KEDA's defaults apply
    assert set(spec) == {"scaleTargetRef", "triggers"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("minReplicaCount", 0),
        ("maxReplicaCount", 7),
        ("pollingInterval", 5),
        ("cooldownPeriod", 20),
        ("idleReplicaCount", 0),
        ("initialCooldownPeriod", 60),
        ("fallback", {"failureThreshold": 3, "replicas": 2}),
        ("advanced", {"restoreToOriginalReplicaCount": True}),
    ],
)
def test_each_scaledobject_field_is_written_only_when_set(helm: Helm, field: str, value: Any) -> None:
    keda = {"enabled": True, field: value}
    spec = scaledobject(render(helm, STEP2, sets=(("servingEngineSpec.modelSpec[0].keda", keda),)))["spec"]
    assert spec[field] == value
    assert set(spec) == {"scaleTargetRef", "triggers", field}


def test_no_scaledobject_for_a_model_with_ray_spec(helm: Helm) -> None:
    keda = ("servingEngineSpec.modelSpec[0].keda", {"enabled": True})
    ray = ("servingEngineSpec.modelSpec[0].raySpec", {"enabled": False})
    assert not [k for k in render(helm, STEP2, sets=(keda, ray)) if k[0] == "ScaledObject"]


def test_no_engine_objects_when_the_engine_is_disabled(helm: Helm) -> None:
    objs = render(helm, STEP4, sets=(("servingEngineSpec.enableEngine", False),))
    assert not [k for k in objs if k[0] == "ScaledObject" or k[1].endswith(("-deployment-vllm", "-engine-service"))]


def test_scale_to_zero_scenario_renders_both_triggers(helm: Helm) -> None:
    spec = scaledobject(render(helm, STEP4, VALUES / "scenario-scale-to-zero.yaml"))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 5)
    # keys the scenario does not name keep their step-4 values
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (15, 360)
    assert [(t["metadata"]["query"], t["metadata"]["threshold"]) for t in spec["triggers"]] == [
        ("vllm:num_requests_waiting", "5"),
        ("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)", "1"),
    ]


def test_hpa_behavior_scenario_renders_the_behavior(helm: Helm) -> None:
    spec = scaledobject(render(helm, STEP4, VALUES / "scenario-hpa-behavior.yaml"))["spec"]
    assert spec["advanced"] == {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
        "stabilizationWindowSeconds": 300,
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    }}}}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 5)


def test_fallback_scenario_renders_the_fallback(helm: Helm) -> None:
    spec = scaledobject(render(helm, STEP4, VALUES / "scenario-fallback.yaml"))["spec"]
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)


def test_fast_profile_with_hpa_behavior_keeps_the_tutorials_behavior(helm: Helm) -> None:
    objs = render(helm, STEP4, VALUES / "profile-fast.yaml", VALUES / "scenario-hpa-behavior.yaml")
    spec = scaledobject(objs)["spec"]
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (3, 10)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_cpu_engine_overlay_asks_for_no_gpu_and_no_runtime_class(helm: Helm) -> None:
    objs = render(helm, STEP4, VALUES / "cpu-engine.yaml")
    pod = engine(objs)["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert "limits" not in pod["containers"][0]["resources"]


def test_lab_backend_overlay_changes_nothing(helm: Helm) -> None:
    assert render(helm, STEP4, VALUES / "backend-lab.yaml") == render(helm, STEP4)


# -- robustness ----------------------------------------------------------------------------------


def test_unknown_keys_do_not_break_rendering(helm: Helm) -> None:
    sets = (
        ("servingEngineSpec.modelSpec[0].lmcacheConfig", {"enabled": True}),
        ("servingEngineSpec.serviceMonitor", {"enabled": True}),
        ("routerSpec.ingress", {"enabled": True}),
        ("somethingElse", {"x": 1}),
    )
    assert ("Deployment", "vllm-llama3-deployment-vllm") in render(helm, STEP4, sets=sets)


def test_triggers_as_a_map_are_rejected_by_the_schema(helm: Helm) -> None:
    bad = (("servingEngineSpec.modelSpec[0].keda.triggers", {"type": "prometheus"}),)
    with pytest.raises(CommandError, match="keda/triggers.*want array"):
        render(helm, STEP4, sets=bad)


def test_triggers_as_a_map_fail_in_the_template_without_the_schema(helm: Helm) -> None:
    bad = {"servingEngineSpec.modelSpec[0].keda.triggers": {"type": "prometheus"}}
    with pytest.raises(CommandError, match="keda.triggers must be a list"):
        helm.template(STANDIN_CHART, files=[STEP4], sets=bad, skip_schema_validation=True)


def test_the_standin_schema_types_triggers_as_a_list(helm: Helm) -> None:
    result = helm.lint(STANDIN_CHART, [STEP4], sets={"servingEngineSpec.modelSpec[0].keda.triggers": {"type": "prometheus"}})
    assert not result.ok
    assert any("want array" in m.message for m in result.errors)
    assert result.defects == []  # the opposite of the real chart's defect 1


CURRENT_STEP2 = VALUES / "integrated-monitoring" / "tutorial-step2.yaml"
CURRENT_STEP4 = VALUES / "integrated-monitoring" / "tutorial-step4.yaml"


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_current_editions_step2_renders_the_subcharts_prometheus_and_its_service(helm: Helm) -> None:
    objs = render(helm, CURRENT_STEP2)
    prom = objs[("Prometheus", "vllm-kube-prometheus-stack-prometheus")]
    assert prom["spec"]["serviceMonitorSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "vllm-stack"}}
    assert prom["spec"]["serviceMonitorNamespaceSelector"] == {}
    service = objs[("Service", "vllm-kube-prometheus-stack-prometheus")]
    assert [p["port"] for p in service["spec"]["ports"]] == [9090]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "prometheus",
                                           "operator.prometheus.io/name": "vllm-kube-prometheus-stack-prometheus"}
    assert ("Deployment", "vllm-kube-prometheus-stack-operator") in objs


def test_the_chart_servicemonitors_are_selected_by_the_subchart_and_select_the_services(helm: Helm) -> None:
    objs = render(helm, CURRENT_STEP2)
    selector = objs[("Prometheus", "vllm-kube-prometheus-stack-prometheus")]["spec"]["serviceMonitorSelector"]["matchLabels"]
    for monitor, service, port in (("vllm-engine-servicemonitor", "vllm-llama3-engine-service", "service-port"),
                                   ("vllm-router-servicemonitor", "vllm-router-service", "router-sport")):
        sm = objs[("ServiceMonitor", monitor)]
        assert _matches(selector, sm["metadata"]["labels"]), f"{monitor} not selected by the Prometheus: {sm['metadata']['labels']}"
        svc = objs[("Service", service)]
        assert _matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]), (monitor, svc["metadata"]["labels"])
        assert [e["port"] for e in sm["spec"]["endpoints"]] == [port]
        assert port in [p["name"] for p in svc["spec"]["ports"]]


def test_the_current_editions_step4_values_render_no_engine_servicemonitor(helm: Helm) -> None:
    """Upstream defect 6, reproduced: the step-4 values leave serviceMonitor out and the default is off."""
    objs = render(helm, CURRENT_STEP4)
    assert ("ServiceMonitor", "vllm-engine-servicemonitor") not in objs
    assert ("ServiceMonitor", "vllm-router-servicemonitor") in objs


def test_the_subcharts_fullname_is_cut_to_26_characters(helm: Helm) -> None:
    objs = render(helm, CURRENT_STEP2, release="a-rather-long-release")
    names = {name for kind, name in objs if kind == "Prometheus"}
    assert names == {"a-rather-long-release-kube-prometheus"[:26].rstrip("-") + "-prometheus"}, names


def test_enabling_prometheus_adapter_fails_rather_than_render_without_it(helm: Helm) -> None:
    with pytest.raises(CommandError, match="no prometheus-adapter subchart"):
        render(helm, STEP4, sets=(("prometheus-adapter.enabled", True),))


def test_the_standin_lints_clean_with_the_tutorials_values(helm: Helm) -> None:
    # the real chart's schema rejects these values (defect 1); the stand-in does not reproduce it
    result = helm.lint(STANDIN_CHART, [STEP4], strict=False)
    assert result.ok, [str(m) for m in result.errors]
    assert not result.errors and not result.warnings
