"""A chart given as a local path is named by its Chart.yaml in the run header, run.json, the
report and the verdict — not by the folder it sits in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from vllm_stack_e2e import config as cfg
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.helm import STANDIN_CHART, Helm


def test_a_local_chart_is_named_by_its_chart_yaml(tmp_path: Path, helm: Helm) -> None:
    checkout = tmp_path / "production-stack-main" / "helm"
    shutil.copytree(STANDIN_CHART, checkout)
    meta = yaml.safe_load((checkout / "Chart.yaml").read_text())
    meta["name"], meta["annotations"] = "vllm-stack", {}
    (checkout / "Chart.yaml").write_text(yaml.safe_dump(meta))
    backend = LabBackend(cfg.RunConfig(cluster="lab", chart=str(checkout)), echo=lambda _line: None)
    backend._helm = helm
    chart = backend.chart()
    assert (chart.name, chart.version, chart.stand_in, chart.ref) == ("vllm-stack", meta["version"], False,
                                                                      str(checkout))


def test_the_stand_in_is_named_and_flagged_from_its_chart_yaml(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    # A lab name of its own: the copy of the chart goes under its state folder, never the real lab's
    # (which `make test` recreates beside the unit tests).
    monkeypatch.setenv("LAB_NAME", "vse-unit-chart")
    backend = LabBackend(cfg.RunConfig(cluster="lab"), echo=lambda _line: None)
    backend._helm = helm
    try:
        chart = backend.chart()
    finally:
        shutil.rmtree(backend.lab.paths.root, ignore_errors=True)
    assert (chart.name, chart.stand_in) == ("vllm-stack-standin", True)
