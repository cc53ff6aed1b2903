"""The run report, built from a recorded lab run (tests/unit/data/run-lab-20261128-022914-ecf8:
steps 5 and 6 on the stand-in chart; three step-5 failures, defect 3 seen by preflight and by
an xfailed test, one timeline of the step-6 scale-up)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import vllm_stack_e2e.report as rep
from vllm_stack_e2e import defects
from vllm_stack_e2e.errors import ConfigError

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "run-lab-20261128-022914-ecf8"
RECORDED_JUNIT = DATA / "junit-20261128-022914-ecf8.xml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _edit_run(run_dir: Path, **changes: Any) -> dict[str, Any]:
    record = json.loads((run_dir / "run.json").read_text())
    record.update(changes)
    (run_dir / "run.json").write_text(json.dumps(record))
    return record


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The recorded run, its JUnit XML where run.json says (a path outside the run folder)."""
    folder = tmp_path / "reports" / RECORDED.name
    shutil.copytree(RECORDED, folder)
    junit = tmp_path / "elsewhere" / "junit.xml"
    junit.parent.mkdir()
    shutil.copyfile(RECORDED_JUNIT, junit)
    _edit_run(folder, junit=str(junit))
    return folder


@pytest.fixture
def built(run_dir: Path) -> rep.Report:
    return rep.write_report(run_dir)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---- what the release manager reads first ----------------------------------------------------------
def test_report_names_backend_chart_versions_and_profile(built: rep.Report) -> None:
    md = built.markdown.read_text()
    assert "| Backend | lab (local: real control plane, KEDA and Prometheus; simulated GPU nodes" in md
    assert "| Chart | vllm-stack-standin 0.1.12-standin.1 from " in md
    assert "| Kubernetes | v1.35.4 |" in md
    assert "| KEDA | 2.20.2 |" in md
    assert "| Helm | v4.1.4 |" in md
    assert "| Prometheus | not recorded |" in md  # this run's facts carry only its address
    assert "| Profile | fast |" in md
    assert "| Duration | 1 m 21 s |" in md


def test_time_waiting_on_the_cluster_is_set_against_the_run(run_dir: Path) -> None:
    record = _edit_run(run_dir, waiting={"seconds": 60.0, "waits": 42, "activities": {"helm": 9.0, "lab start": 3.0}})
    duration = float(record["ended"]) - float(record["started"])
    report = rep.write_report(run_dir)
    md, html = report.markdown.read_text(), report.html.read_text()
    harness = duration - 60.0 - 9.0 - 3.0
    assert f"1 m 00 s in 42 waits ({60.0 / duration:.0%}); helm 9.0 s ({9.0 / duration:.0%}); " \
           f"lab start 3.0 s ({3.0 / duration:.0%}); harness" in md, md
    assert f"({harness / duration:.0%})" in md
    assert "Where the time went" in html and "42 waits" in html


def test_cluster_wide_leftovers_are_named_not_failed(run_dir: Path) -> None:
    _edit_run(run_dir, left_behind={"the chart's CRDs (its crds/, which helm never deletes)":
                                    ["loraadapters.production-stack.vllm.ai"]})
    md = rep.write_report(run_dir).markdown.read_text()
    assert "Left behind: the chart's CRDs (its crds/, which helm never deletes)" in md
    assert "loraadapters.production-stack.vllm.ai" in md


def test_a_run_recorded_before_wait_accounting_has_no_waiting_row(built: rep.Report) -> None:
    assert "Where the time went" not in built.markdown.read_text()


def test_stand_in_chart_is_flagged_loudly_in_both_renderings(built: rep.Report) -> None:
    assert built.stand_in
    md = built.markdown.read_text()
    first_lines = md.splitlines()[:4]
    assert any(line.startswith("> ⚠️ **STAND-IN CHART") and "not the real vllm/vllm-stack" in line
               for line in first_lines)
    page = built.html.read_text()
    banner = re.search(r"<div class='standin'>(.*?)</div>", page)
    assert banner and "STAND-IN CHART" in banner.group(1)
    assert page.index("class='standin'") < page.index("Tutorial steps")


def test_real_chart_gets_no_stand_in_banner(run_dir: Path) -> None:
    _edit_run(run_dir, backend="current",
              chart={"ref": "vllm/vllm-stack", "name": "vllm-stack", "version": "0.1.12",
                     "source": "https://vllm-project.github.io/production-stack", "stand_in": False, "repo": None})
    built = rep.write_report(run_dir)
    assert not built.stand_in
    assert "STAND-IN" not in built.markdown.read_text()
    assert "vllm-stack 0.1.12 from https://vllm-project.github.io/production-stack — real chart" in \
        built.markdown.read_text()


def test_headline_says_failed_and_why(built: rep.Report) -> None:
    assert built.status.startswith("FAILED — 3 of 11 tests failed (step 5)")
    assert "1 test xfailed under known upstream defect 3" in built.status, built.status
    assert "not run: step 1, step 2, step 3, step 4, step 7a, step 7b, step 7c, step 8" in built.status
    assert f"**Result: {built.status}**" in built.markdown.read_text()


def test_each_tutorial_step_has_a_row_with_its_result(built: rep.Report) -> None:
    outcomes = {s.step: s.outcome for s in built.steps}
    assert list(outcomes) == list(rep.TUTORIAL_STEPS)
    assert outcomes["step 5"] == "failed"
    assert outcomes["step 6"] == "passed (known defects)"
    assert outcomes["step 1"] == outcomes["step 8"] == "not run"
    md = built.markdown.read_text()
    assert "| step 5 | ScaledObject and HPA as the tutorial shows | ❌ failed | 4/3/0/0 | 25.3 s |" in md
    assert "| step 6 | replicas grow under load | ✅ passed (known defects) | 3/0/1/0 | 53.6 s |" in md
    assert "| step 7b | HPA scale-down behavior | ⚪ not run | — | — |" in md


def test_failures_carry_the_junit_message_and_link_their_evidence(built: rep.Report) -> None:
    md = built.markdown.read_text()
    failures = md.split("## Failures", 1)[1].split("##", 1)[0]
    assert failures.count("\n- **step 5**") == 3
    assert 'AssertionError: [Ready=False TriggerError "Triggers defined in ScaledObject are not working correctly"' \
        in failures
    assert "(tests/e2e/test_step5_autoscaler.py:56: AssertionError)" in failures
    assert "KeyError: 'external'" in failures
    assert "evidence: [artifacts/tests_e2e_test_step5_autoscaler.py_test_scaledobject_ready/]" in failures


def test_upstream_defects_from_preflight_and_xfail(built: rep.Report) -> None:
    assert [d.number for d in built.defects] == [3]
    defect = built.defects[0]
    assert "is not aggregated" in defect.preflight[0]
    assert [t.name for t in defect.tests] == ["test_scaledobject_stays_ready_past_one_replica"]
    md = built.markdown.read_text()
    assert "| 3 | non-aggregated query returns one series per pod: KEDA breaks at 2+ replicas |" in md
    xfail = md.split("### Expected failures", 1)[1].split("##", 1)[0]
    assert "`test_scaledobject_stays_ready_past_one_replica`: upstream defect 3" in xfail


def test_defect_numbers_come_from_preflight_findings_too() -> None:
    run = {"preflight": [{"severity": "warning", "message": "schema types keda.triggers as object", "fix": "x",
                          "defect": 1},
                         {"severity": "warning", "message": "Prometheus 2.x stores vllm_…", "fix": "y", "defect": 5},
                         {"severity": "info", "message": "no defect here", "fix": "z", "defect": None}]}
    sightings = rep.defect_sightings(run, [])
    assert [(d.number, d.title) for d in sightings] == [(1, defects.title(1)), (5, defects.title(5))]


# ---- JUnit -----------------------------------------------------------------------------------------------
def test_junit_is_copied_beside_the_run(built: rep.Report, run_dir: Path) -> None:
    assert built.junit == run_dir / "junit.xml"
    assert built.junit.read_bytes() == RECORDED_JUNIT.read_bytes()
    assert f"| JUnit XML | junit.xml (copied from {built.junit_source}) |" in built.markdown.read_text()


def test_junit_of_a_later_run_is_not_copied(run_dir: Path) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    _edit_run(run_dir, started=record["started"] - 3600)  # the shared reports/junit.xml moved on
    built = rep.write_report(run_dir)
    assert built.junit is None
    assert not (run_dir / "junit.xml").exists()
    assert "now holds another run's results (not copied)" in built.markdown.read_text()


def test_missing_junit_is_named(run_dir: Path) -> None:
    _edit_run(run_dir, junit="/nowhere/junit.xml")
    built = rep.write_report(run_dir)
    assert built.junit is None
    assert "| JUnit XML | /nowhere/junit.xml (not found) |" in built.markdown.read_text()


# ---- plots ----------------------------------------------------------------------------------------------
def test_each_timeline_gets_a_png_of_sensible_size(built: rep.Report, run_dir: Path) -> None:
    assert built.plots == [run_dir / "plots" / "step6-scale-up.png"]
    width, height = png_size(built.plots[0])
    assert 1000 <= width <= 2000 and 550 <= height <= 1200, (width, height)
    assert 30_000 < built.plots[0].stat().st_size < 1_000_000
    assert "![step6-scale-up](plots/step6-scale-up.png)" in built.markdown.read_text()


def test_timeline_numbers_are_summed_up_next_to_the_plot(built: rep.Report) -> None:
    md = built.markdown.read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("35 samples over"))
    assert "peak replicas 3 desired / 3 ready" in line
    assert "peak queue 16 (threshold 5)" in line
    grew = float(re.search(r"replicas grew ([\d.]+) s after load started", line).group(1))
    assert 14.0 < grew < 17.0
    assert "- at +5.8 s: queue above 5" in md and "- at +14.5 s: spec.replicas ≥ 2" in md


def test_html_is_self_contained_and_embeds_the_plot(built: rep.Report) -> None:
    page = built.html.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 1
    assert base64.b64decode(images[0]) == built.plots[0].read_bytes()
    assert not re.search(r"(src|href)=['\"]https?://", page)
    assert "<link" not in page and "<script" not in page

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)

    parser = Collect()
    parser.feed(page)
    assert parser.tags.count("table") >= 3 and "img" in parser.tags
    assert "<title>vLLM stack e2e — run 20261128-022914-ecf8: FAILED</title>" in page


def test_plot_without_samples_is_still_a_png(tmp_path: Path) -> None:
    out = rep.plot_timeline({"name": "empty", "samples": [], "spans": [], "events": []}, tmp_path / "empty.png")
    assert png_size(out)[0] > 500


def test_condition_intervals_hold_until_the_next_sample() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    states = ["False", "True", "True", "False", "True"]
    assert rep.condition_intervals(times, states, "True", end=5.0) == [(1.0, 2.0), (4.0, 1.0)]
    assert rep.condition_intervals(times, states, "Unknown", end=5.0) == []


# ---- the model ------------------------------------------------------------------------------------------
def test_steps_sort_in_tutorial_order_then_others() -> None:
    tests = [rep.TestResult(f"tests/e2e/t.py::t{i}", step, "passed", 1.0)
             for i, step in enumerate(["lab", "step 8", "step 7b", "step 10", "step 7a", "step 2"])]
    steps = rep.summarize_steps(tests, include=())
    assert [s.step for s in steps] == ["step 2", "step 7a", "step 7b", "step 8", "step 10", "lab"]


@pytest.mark.parametrize(("outcomes", "expected"), [
    (["passed", "passed"], "passed"),
    (["passed", "xfailed"], "passed (known defects)"),
    (["passed", "skipped"], "passed"),
    (["skipped", "skipped"], "skipped"),
    (["passed", "error"], "failed"),
    (["xpassed"], "passed"),
    ([], "not run"),
])
def test_step_outcome(outcomes: list[str], expected: str) -> None:
    step = rep.StepResult("step 3", [rep.TestResult(f"t::{i}", "step 3", o, 0.1) for i, o in enumerate(outcomes)])
    assert step.outcome == expected


def test_passing_run_headline(run_dir: Path) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    for test in record["tests"]:
        if test["outcome"] == "failed":
            test["outcome"], test["message"] = "passed", ""
    _edit_run(run_dir, tests=record["tests"], exit_status=0)
    built = rep.write_report(run_dir)
    assert built.status.startswith("PASSED — 11 tests, none failed; 1 test xfailed under known upstream defect 3"), \
        built.status
    assert "## Failures" not in built.markdown.read_text()
    assert "<div class='status PASSED'>" in built.html.read_text()


def test_secrets_never_reach_the_report(run_dir: Path) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    record["tests"][7]["message"] = ("401 from HF with hf_AbCdEfGhIjKlMnOpQrStUv1234 and "
                                     "Authorization: Bearer abc.def.ghi12345")
    record["overlays"]["step2"] += " --set servingEngineSpec.hfToken=s3cr3t-value-1"
    record["facts"]["kubeconfig"] = "client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ=="
    _edit_run(run_dir, tests=record["tests"], overlays=record["overlays"], facts=record["facts"], junit="")
    built = rep.write_report(run_dir)
    for text in (built.markdown.read_text(), built.html.read_text()):
        for secret in ("hf_AbCdEfGhIjKlMnOpQrStUv1234", "abc.def.ghi12345", "s3cr3t-value-1", "LS0tLS1CRUdJTiBSU0Eg"):
            assert secret not in text
        assert "hfToken=***" in text


# ---- CLI ------------------------------------------------------------------------------------------------
def test_cli_latest_writes_the_newest_run_and_appends_the_summary(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    older, newer = reports / "20261127-010101-aaaa", reports / "20261128-022914-ecf8"
    for folder in (older, newer):
        shutil.copytree(RECORDED, folder)
    (reports / "20261129-000000-bbbb").mkdir()  # a run that never wrote run.json
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier steps\n")
    assert rep.main(["--latest", "--reports-dir", str(reports), "--append-to", str(summary)]) == 0
    assert (newer / "summary.html").is_file() and not (older / "summary.html").exists()
    assert summary.read_text().startswith("earlier steps\n# vLLM stack e2e — run 20261128-022914-ecf8")
    assert f"report: {newer / 'summary.html'}" in capsys.readouterr().out


def test_cli_names_a_folder_without_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rep.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no run.json" in err and "reports/<run-id>/" in err


def test_latest_without_runs_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no run folder with a run.json under"):
        rep.latest_run(tmp_path)


# ---- a second recorded run: steps 7a–8, with KEDA's fallback (tests/unit/data/run-lab-20261128-023427-bb29) --
FALLBACK_RUN = DATA / "run-lab-20261128-023427-bb29"


def test_recorded_fallback_run(tmp_path: Path) -> None:
    folder = tmp_path / FALLBACK_RUN.name
    shutil.copytree(FALLBACK_RUN, folder)
    built = rep.write_report(folder)
    outcomes = {s.step: s.outcome for s in built.steps}
    assert (outcomes["step 7a"], outcomes["step 7b"], outcomes["step 7c"], outcomes["step 8"]) == (
        "failed", "failed", "passed", "passed")
    assert built.status.startswith("FAILED — 2 of 17 tests failed (step 7a, step 7b)")
    md = built.markdown.read_text()
    assert "| JUnit XML | none (run without --junitxml) |" in md
    assert "- at -9.9 s: metric source broken (Prometheus stopped)" in md
    assert "- at +59.9 s: metric source restored" in md
    (png,) = built.plots
    assert png.name == "step7c-fallback.png" and png_size(png)[0] >= 1000


def test_fallback_band_of_the_recorded_run() -> None:
    timeline = json.loads((FALLBACK_RUN / "timelines" / "step7c-fallback.json").read_text())
    t0 = timeline["samples"][0]["t"]
    times = [s["t"] - t0 for s in timeline["samples"]]
    runs = rep.condition_intervals(times, [s["so_fallback"] for s in timeline["samples"]], "True", end=times[-1] + 1)
    assert len(runs) == 1 and 55 < runs[0][1] < 62, runs  # Fallback=True from the break until metrics return
    summary = rep.summarize_timeline(timeline)
    assert (summary.peak_spec, summary.peak_ready) == (2, 2)  # fallback.replicas


def test_live_queue_fact_compares_against_the_threshold() -> None:
    from types import SimpleNamespace

    from vllm_stack_e2e.steps.step6_scale_up import _queue_against

    def tl(*queues: float | None) -> Any:
        return SimpleNamespace(samples=[SimpleNamespace(queue=q) for q in queues])

    assert _queue_against(tl(12.0), 5) == "queue 12 > 5"
    assert _queue_against(tl(4.0), 5) == "queue 4 ≤ 5"
    assert _queue_against(tl(), 5) == ""
    assert _queue_against(tl(None), 5) == ""


# ---- beyond the tutorial -----------------------------------------------------------------------------
def test_scenarios_beyond_the_page_have_their_own_section_and_timelines(run_dir: Path) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    timeline = json.loads((run_dir / "timelines" / "step6-scale-up.json").read_text())
    (run_dir / "timelines" / "beyond-pause.json").write_text(json.dumps({**timeline, "name": "beyond-pause"}))
    tests = record["tests"] + [
        {"nodeid": "tests/e2e/test_beyond_pause.py::test_removing_the_pause_resumes_scaling", "step": "beyond: pause",
         "outcome": "failed", "duration": 1.0, "message": "engine replicas ≥ 2 after the pause: not reached"}]
    _edit_run(run_dir, tests=tests, timelines=record["timelines"] + ["timelines/beyond-pause.json"])
    built = rep.write_report(run_dir)
    md = built.markdown.read_text()
    tutorial, _, rest = md.partition("## Beyond the tutorial")
    assert rest, "the section is there"
    beyond_section = rest.split("\n## ", 1)[0]
    assert "| beyond: pause | paused-replicas / paused hold the Deployment; unpausing scales | ❌" in beyond_section
    assert "### beyond-pause" in beyond_section, "its timeline is in its section"
    assert "beyond: pause" not in tutorial.split("## Tutorial steps", 1)[1], "not among the tutorial's steps"
    assert md.count("### beyond-pause") == 1 and "### step6-scale-up" in md
    assert "FAILED" in md.split("\n", 4)[2] + md, "a failure beyond the page still fails the run's headline"
    html = built.html.read_text()
    assert "<h2>Beyond the tutorial</h2>" in html and html.count("alt='beyond-pause timeline'") == 1


def test_beyond_steps_sort_after_the_tutorials() -> None:
    steps = [rep.StepResult(name) for name in ("beyond: pause", "step 8", "lab", "step 2")]
    assert [s.step for s in sorted(steps, key=lambda s: rep.step_key(s.step))] == \
        ["step 2", "step 8", "lab", "beyond: pause"]


def test_the_plot_draws_kedas_scaler_value_beside_the_queue(tmp_path: Path) -> None:
    samples = [{"t": 100.0 + i, "spec_replicas": 1, "ready_replicas": 1, "hpa_desired": 1, "queue": float(i),
                "scaler_value": float(i) - 0.5 if i > 2 else None, "so_active": "True"} for i in range(10)]
    out = rep.plot_timeline({"name": "keda", "samples": samples, "spans": [], "events": [], "threshold": 5},
                            tmp_path / "keda.png")
    assert out.stat().st_size > 1000


def test_a_timeline_tells_the_load_and_the_engines_beside_the_queue(tmp_path: Path) -> None:
    """Step 6's report line: the load's concurrency against its ceiling, the engines' running
    requests, and the time from the load's start to the queue above the threshold."""
    samples = [{"t": 100.0 + i, "spec_replicas": 1, "ready_replicas": 1, "hpa_desired": 1, "queue": float(max(i - 3, 0)),
                "running": float(min(i, 7)), "so_active": "True"} for i in range(12)]
    timeline = {"name": "load", "samples": samples, "threshold": 5, "events": [],
                "spans": [{"name": "load:ramp", "start": 101.0, "end": 111.0}],
                "concurrency": [[101.0, 4], [102.0, 12], [103.0, 20]], "ceiling": 25}
    summary = rep.summarize_timeline(timeline)
    assert (summary.peak_concurrency, summary.ceiling, summary.peak_running) == (20, 25, 7.0)
    assert summary.queue_after_load == 8.0, "the first sample with a queue above 5 is at 109 (queue 6)"
    line = rep.render._timeline_line(summary)
    assert "load concurrency up to 20 (ceiling 25); engines running up to 7; queue above the threshold 8.0 s" in line
    assert rep.plot_timeline(timeline, tmp_path / "load.png").stat().st_size > 1000
