"""A run's configuration: options and environment resolved, bad input refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_stack_e2e import config as cfg
from vllm_stack_e2e.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLUSTER", "PROFILE", "KUBECONFIG", "VLLM_CHART", "CHART_VERSION", "REPORTS_DIR", "EDITION",
                 "ENGINE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_lab_with_the_fast_profile() -> None:
    run = cfg.resolve()
    assert (run.cluster, run.profile) == ("lab", "fast")
    assert run.namespace.startswith("vse-") and len(run.namespace) <= 63
    assert run.engine_deployment == "vllm-llama3-deployment-vllm"
    assert run.scaledobject == "vllm-llama3-scaledobject"
    assert run.hpa == "keda-hpa-vllm-llama3-scaledobject"
    assert run.router_service == "vllm-router-service"


def test_current_defaults_to_the_tutorial_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    run = cfg.resolve(cluster="current")
    assert (run.cluster, run.profile, run.kubeconfig) == ("current", "tutorial", kubeconfig)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"cluster": "kind"}, ["unknown CLUSTER='kind'", "lab", "current"]),
    ({"profile": "slow"}, ["unknown PROFILE='slow'", "tutorial", "fast"]),
    ({"chart_version": "latest"}, ["CHART_VERSION='latest'", "exact version"]),
    ({"chart_version": "^0.1"}, ["CHART_VERSION='^0.1'", "exact version"]),
    ({"engine": "a100"}, ["unknown ENGINE='a100'", "lab", "h100-llama-3.1-8b", "docs/engines.md"]),
])
def test_bad_input_is_one_line_naming_it(kwargs: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        cfg.resolve(**kwargs)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_current_without_a_kubeconfig_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.resolve(cluster="current", kubeconfig=str(tmp_path / "missing"))


def test_run_ids_differ_between_runs() -> None:
    assert cfg.new_run_id() != cfg.new_run_id()


def test_edition_asked_for_is_checked_before_anything_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITION", "observability-script")
    assert cfg.resolve("lab").edition == "observability-script"
    monkeypatch.setenv("EDITION", "integrated-monitoring")
    assert cfg.resolve("lab").edition == "integrated-monitoring"
    monkeypatch.setenv("EDITION", "latest")
    with pytest.raises(ConfigError, match="^EDITION='latest' is not a published edition .* choose one of "
                                          "observability-script, integrated-monitoring, existing-prometheus$"):
        cfg.resolve("lab")
    monkeypatch.delenv("EDITION")
    assert cfg.resolve("lab").edition is None  # chosen from the chart once it is known


def test_fix_defects_names_fixable_defects_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIX_DEFECTS", "7, 6,7")
    assert cfg.resolve("lab").fix_defects == (6, 7)
    monkeypatch.setenv("FIX_DEFECTS", "1")
    with pytest.raises(ConfigError, match=r"^FIX_DEFECTS names '1', not an upstream defect the harness can fix: "
                                          r"choose from 3, 6, 7, 9, 10, 11, 12, 13 \(docs/upstream-defects.md\)$"):
        cfg.resolve("lab")
    monkeypatch.delenv("FIX_DEFECTS")
    assert cfg.resolve("lab").fix_defects == ()


def test_extra_values_are_scoped_to_a_scenario_with_a_prefix(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """`scenario:path` applies the overlay to that scenario's upgrades only; `step4:` to the step-4
    values alone; a plain path to every step-4 upgrade (docs/tutorial.md, EXTRA_VALUES)."""
    every, one, step4 = (tmp_path / f"{n}.yaml" for n in ("every", "one", "step4"))
    for path in (every, one, step4):
        path.write_text("{}\n")
    monkeypatch.setenv("EXTRA_VALUES", f"{every},hpa-behavior:{one},step4:{step4}")
    config = cfg.resolve("lab")
    assert config.extra_values_for("hpa-behavior") == (str(every), str(one))
    assert config.extra_values_for(None) == (str(every), str(step4))
    assert config.extra_values_for("fallback") == (str(every),)
    monkeypatch.setenv("EXTRA_VALUES", f"nowhere:{one}")
    with pytest.raises(ConfigError, match=r"^EXTRA_VALUES names nowhere:.*'nowhere' is not a scenario — use scope:path"):
        cfg.resolve("lab")


def test_the_hpa_sync_period_is_the_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPA_SYNC_SECONDS", raising=False)
    assert cfg.resolve("lab").profile_settings.hpa_sync_seconds == 15.0, "Kubernetes' default"
    monkeypatch.setenv("HPA_SYNC_SECONDS", "30")
    config = cfg.resolve("lab")
    assert config.profile_settings.hpa_sync_seconds == 30.0
    config.hpa_sync_seconds = 5.0  # what the lab backend sets from its own kube-controller-manager
    assert config.profile_settings.hpa_sync_seconds == 5.0
    monkeypatch.setenv("HPA_SYNC_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"^HPA_SYNC_SECONDS='soon' is not a positive number of seconds"):
        cfg.resolve("lab")


def test_the_lab_simulates_the_engine_preset_asked_for() -> None:
    assert cfg.resolve().engine == "lab"
    assert cfg.resolve(engine="h100-llama-3.1-8b").engine == "h100-llama-3.1-8b"


def test_an_engine_preset_on_a_gpu_cluster_is_refused(tmp_path: Path) -> None:
    """On a GPU cluster the engine is what the chart deploys: a preset there would be a lie in the report."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert cfg.resolve(cluster="current", kubeconfig=str(kubeconfig)).engine is None
    with pytest.raises(ConfigError, match="^ENGINE='lab' sizes the lab's simulated engine; CLUSTER=current"):
        cfg.resolve(cluster="current", kubeconfig=str(kubeconfig), engine="lab")
