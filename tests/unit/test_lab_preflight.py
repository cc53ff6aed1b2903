"""Preflight's KEDA/Kubernetes compatibility check and the lines its report prints (the lab
runs KEDA 2.20 on Kubernetes 1.35, so this is the check that vouches for the lab's pairing)."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.lab import build
from vllm_stack_e2e.preflight import KEDA_K8S, Report, check_keda_compat


@pytest.mark.parametrize(("keda", "kube"), [("2.20.2", "v1.35.4"), ("v2.20.0", "v1.33.1"), ("2.20.2", "1.34.0+k3s1")])
def test_supported_pairs_pass_and_are_recorded(keda: str, kube: str) -> None:
    report = Report()
    check_keda_compat(report, keda, kube)
    assert report.findings == []
    assert report.facts == {"kubernetes": kube, "keda": keda}


def test_the_labs_own_pair_is_supported() -> None:
    report = Report()
    check_keda_compat(report, build.KEDA_VERSION, f"v{build.KUBERNETES_VERSION}")
    assert report.findings == [], f"the lab pairs KEDA {build.KEDA_VERSION} with Kubernetes {build.KUBERNETES_VERSION}"


@pytest.mark.parametrize("kube", ["v1.31.0", "v1.36.0"])
def test_unsupported_kubernetes_is_a_warning_that_names_both(kube: str) -> None:
    report = Report()
    check_keda_compat(report, "2.20.2", kube)
    assert report.errors == []
    (warning,) = report.warnings
    assert warning.message == f"KEDA 2.20.2 supports Kubernetes 1.33–1.35, the cluster runs {kube}"
    assert warning.fix == "install a KEDA release that supports this Kubernetes"


@pytest.mark.parametrize(("keda", "kube"), [(None, "v1.35.4"), ("", "v1.35.4"), ("2.20.2", "unknown"),
                                            ("2.99.0", "v1.10.0")])
def test_unknown_versions_give_no_finding(keda: str | None, kube: str) -> None:
    report = Report()
    check_keda_compat(report, keda, kube)
    assert report.findings == []


def test_every_known_keda_minor_has_an_ordered_range() -> None:
    for minor, (low, high) in KEDA_K8S.items():
        assert low <= high and high - low == 2, f"KEDA {minor}: 1.{low}–1.{high}"


def test_report_lines_facts_first_then_findings() -> None:
    report = Report(facts={"backend": "lab", "profile": "fast"})
    report.add("warning", "KEDA 2.20.2 supports Kubernetes 1.33–1.35, the cluster runs v1.31.0", "install another KEDA")
    report.add("error", "trigger query names vllm:num_requests_waiting{model=...}", "select model_name", defect=2)
    report.add("info", "helm lint skipped", "pull the chart")
    assert report.lines() == [
        "preflight: backend lab",
        "preflight: profile fast",
        "preflight warning: KEDA 2.20.2 supports Kubernetes 1.33–1.35, the cluster runs v1.31.0 — install another KEDA",
        "preflight error: trigger query names vllm:num_requests_waiting{model=...} — select model_name "
        "[upstream defect 2: docs/upstream-defects.md#defect-2]",
        "preflight info: helm lint skipped — pull the chart",
    ]
    assert [f.severity for f in report.errors] == ["error"] and [f.severity for f in report.warnings] == ["warning"]


def test_extend_drops_duplicates() -> None:
    report = Report()
    report.add("warning", "same", "fix")
    report.extend(list(report.findings) + list(report.findings))
    assert len(report.findings) == 1
