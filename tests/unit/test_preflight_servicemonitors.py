"""Values that silently stop the scraping: a ServiceMonitor whose scrapeTimeout is above its
interval is refused whole by prometheus-operator (docs/observability.md), so preflight renders
every plan the run will apply — EXTRA_VALUES and FIX_DEFECTS included — and says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_stack_e2e import checks as C
from vllm_stack_e2e import config as cfg
from vllm_stack_e2e import preflight
from vllm_stack_e2e.helm import Helm


def _monitor(interval: str | None, timeout: str | None) -> dict:
    endpoint = {"port": "service-port"}
    endpoint.update({k: v for k, v in (("interval", interval), ("scrapeTimeout", timeout)) if v is not None})
    return {"kind": "ServiceMonitor", "metadata": {"name": "vllm-engine-servicemonitor"}, "spec": {"endpoints": [endpoint]}}


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200),
                                           ("", None), ("30", None), ("s30", None), ("1m 30s", None)])
def test_prometheus_durations(text: str, seconds: float | None) -> None:
    assert C.duration_seconds(text) == seconds, f"{text!r} read as {C.duration_seconds(text)}"


def test_a_timeout_above_the_interval_is_named_with_the_fix() -> None:
    findings = C.check_servicemonitors([_monitor("15s", "25s")], source="step 4 (x.yaml)")
    assert len(findings) == 1, [str(f) for f in findings]
    line = str(findings[0])
    assert line.startswith("warning: step 4 (x.yaml): ServiceMonitor vllm-engine-servicemonitor port service-port "
                           "has scrapeTimeout 25s above its interval 15s"), line
    assert "KEDA takes for 0" in line and "at most serviceMonitor.interval (15s)" in line, line


@pytest.mark.parametrize("interval, timeout", [("30s", "25s"), ("3s", "3s"), ("1m", "30s"), (None, "25s"),
                                               ("15s", None), ("soon", "25s")])
def test_what_prometheus_operator_accepts_or_decides_itself_is_not_flagged(interval: str | None,
                                                                           timeout: str | None) -> None:
    """Equal is accepted (the operator refuses only a timeout *greater* than the interval); an
    endpoint without one of the two takes the Prometheus object's defaults, which this check
    cannot see; a duration it cannot parse is the operator's to refuse."""
    assert C.check_servicemonitors([_monitor(interval, timeout)]) == []


@pytest.fixture
def lab_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(extra: str = "", fix: str = "", profile: str = "tutorial") -> cfg.RunConfig:
        monkeypatch.setenv("EXTRA_VALUES", extra)
        monkeypatch.setenv("FIX_DEFECTS", fix)
        return cfg.resolve("lab", profile)
    return make


def _refused(config: cfg.RunConfig, edition: str) -> list[str]:
    report = preflight.Report()
    preflight.check_values(report, config, ["lab"], edition)
    return [str(f) for f in report.findings if "scrapeTimeout" in f.message]


def test_the_pages_values_keep_the_charts_default_interval_and_timeout(lab_config, helm: Helm) -> None:  # type: ignore[no-untyped-def]
    for edition in ("observability-script", "integrated-monitoring"):
        for profile in ("tutorial", "fast"):
            assert _refused(lab_config(profile=profile), edition) == [], (edition, profile)


def test_a_shorter_interval_in_extra_values_is_one_line_for_every_plan_it_reaches(lab_config, tmp_path: Path,
                                                                                 helm: Helm) -> None:  # type: ignore[no-untyped-def]
    """The user shortens the engine's interval and keeps the chart's 25 s timeout. In the current
    edition the step-4 values drop the ServiceMonitor (defect 6), so only a run that keeps it —
    FIX_DEFECTS=6 — renders the refused endpoint; the fast profile sets its own timeout (3 s)."""
    overlay = tmp_path / "short-interval.yaml"
    overlay.write_text("servingEngineSpec:\n  serviceMonitor:\n    enabled: true\n    interval: 15s\n")
    lines = _refused(lab_config(extra=str(overlay)), "integrated-monitoring")
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: step 4 (tutorial-step4.yaml + backend-lab.yaml + short-interval.yaml), "
                               "also step 4 + scale-to-zero, step 4 + hpa-behavior, step 4 + fallback: "
                               "ServiceMonitor vllm-engine-servicemonitor port service-port has scrapeTimeout 25s "
                               "above its interval 15s"), lines[0]
    quiet = tmp_path / "interval-only.yaml"
    quiet.write_text("servingEngineSpec:\n  serviceMonitor:\n    interval: 15s\n")
    assert _refused(lab_config(extra=str(quiet)), "integrated-monitoring") == [], "defect 6 drops the monitor"
    fixed = _refused(lab_config(extra=str(quiet), fix="6"), "integrated-monitoring")
    assert len(fixed) == 1 and "the fix for FIX_DEFECTS=6" in fixed[0], fixed
    assert _refused(lab_config(extra=str(overlay), profile="fast"), "integrated-monitoring") == []


def test_a_static_fix_that_knows_the_other_editions_prometheus_is_refused_in_one_line(lab_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A static overlay naming the first edition's prometheus-operated.monitoring.svc: given in the
    current edition, KEDA would query a Prometheus the run does not have."""
    static = tmp_path / "fix-aggregated-query.yaml"
    static.write_text("servingEngineSpec:\n  modelSpec:\n    - keda:\n        triggers:\n          - type: prometheus\n"
                      "            metadata:\n              serverAddress: http://prometheus-operated.monitoring.svc:9090\n"
                      "              query: sum(vllm:num_requests_waiting)\n              threshold: '5'\n")
    report = preflight.Report()
    preflight.check_values(report, lab_config(extra=str(static)), ["lab"], "integrated-monitoring")
    errors = [str(f) for f in report.errors]
    assert len(errors) == 1, errors
    assert errors[0].startswith("error: EXTRA_VALUES fix-aggregated-query.yaml points KEDA at "
                                "http://prometheus-operated.monitoring.svc:9090, the observability-script edition's "
                                "Prometheus, but this run follows integrated-monitoring"), errors[0]
    assert "name svc/vllm-kube-prometheus-stack-prometheus in the overlay, or run EDITION=observability-script" \
        in errors[0] and "FIX_DEFECTS=3" in errors[0], errors[0]
    first = preflight.Report()
    preflight.check_values(first, lab_config(extra=str(static)), ["lab"], "observability-script")
    assert first.errors == [], [str(f) for f in first.errors]
