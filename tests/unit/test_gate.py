"""The release gate: refusals before anything runs, the command it would run, and the verdict
as a pure function of run.json (plus the whole gate with an injected runner — no suite runs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import vllm_stack_e2e.gate as gate
import vllm_stack_e2e.report as rep
from vllm_stack_e2e import defects

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "run-lab-20261128-022914-ecf8"
STANDIN_CHART = Path(gate.__file__).parent / "charts" / "vllm-stack-standin"
REAL_CHART = {"ref": "vllm/vllm-stack", "name": "vllm-stack", "version": "0.1.12",
              "source": "https://vllm-project.github.io/production-stack", "stand_in": False,
              "repo": ["vllm", "https://vllm-project.github.io/production-stack"]}


def make_run(outcomes: Mapping[str, Sequence[str]] | None = None, **overrides: Any) -> dict[str, Any]:
    """A run record like the plugin writes; by default every tutorial step passed on current."""
    if outcomes is None:
        outcomes = {step: ["passed", "passed"] for step in rep.TUTORIAL_STEPS}
    tests = []
    for step, results in outcomes.items():
        module = "test_" + step.replace(" ", "")
        for i, outcome in enumerate(results):
            tests.append({"nodeid": f"tests/e2e/{module}.py::test_{i}", "step": step, "outcome": outcome,
                          "duration": 2.0, "defect": 3 if outcome == "xfailed" else None,
                          "message": "upstream defect 3: not aggregated"
                          if outcome == "xfailed" else ("boom" if outcome in ("failed", "error") else "")})
    run = {"run_id": "20261201-000000-abcd", "started": 1_796_000_000.0, "ended": 1_796_001_800.0,
           "exit_status": 1 if any(t["outcome"] in ("failed", "error") for t in tests) else 0,
           "backend": "current", "profile": "tutorial", "namespace": "vse-x",
           "facts": {"backend": "current (kube context)", "kubernetes": "v1.34.2", "keda": "2.20.2",
                     "helm": "v3.18.4", "prometheus": "3.5.0"},
           "chart": dict(REAL_CHART), "overlays": {}, "preflight": [], "tests": tests, "timelines": [], "junit": ""}
    run.update(overrides)
    return run


# ---- the verdict (pure) --------------------------------------------------------------------------------
def test_all_steps_passed_is_a_release_pass() -> None:
    verdict = gate.compute_verdict(make_run(), chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "pass" and verdict["release_pass"] is True and verdict["dry_run"] is False
    assert verdict["reasons"] == []
    assert set(verdict["steps"]) == set(rep.TUTORIAL_STEPS)
    assert verdict["steps"]["step 6"] == {"outcome": "passed", "duration_seconds": 4.0, "passed": 2}
    assert verdict["versions"] == {"kubernetes": "v1.34.2", "keda": "2.20.2", "helm": "v3.18.4", "prometheus": "3.5.0"}
    assert verdict["chart"]["version"] == "0.1.12" and verdict["duration_seconds"] == 1800.0


def test_xfail_only_passes_and_lists_the_known_defects() -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 6": ["passed", "xfailed"]}
    run = make_run(outcomes, preflight=[{"severity": "warning", "message": "m", "fix": "f", "defect": 3}])
    verdict = gate.compute_verdict(run, chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "pass" and verdict["release_pass"] is True
    assert verdict["steps"]["step 6"]["outcome"] == "passed (known defects)"
    assert [(d["step"], d["defect"]) for d in verdict["known_defects"]] == [("step 6", 3)]
    assert verdict["known_defects"][0]["title"] == defects.title(3)
    assert verdict["preflight_defects"] == [3]


@pytest.mark.parametrize("outcome", ["failed", "error"])
def test_a_failure_or_error_anywhere_fails(outcome: str) -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 5": ["passed", outcome]}
    verdict = gate.compute_verdict(make_run(outcomes), chart_version="0.1.12", dry_run=False, returncode=1)
    assert verdict["verdict"] == "fail" and verdict["release_pass"] is False
    assert verdict["reasons"] == [f"step 5 test_1 {outcome}: boom"]


def test_a_failure_outside_the_tutorial_steps_fails_too() -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"lab": ["error"]}
    verdict = gate.compute_verdict(make_run(outcomes), chart_version="0.1.12", dry_run=False, returncode=1)
    assert verdict["verdict"] == "fail" and verdict["reasons"] == ["lab test_0 error: boom"]


def test_missing_steps_fail() -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS if step not in ("step 7b", "step 8")}
    verdict = gate.compute_verdict(make_run(outcomes), chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "fail"
    assert verdict["reasons"] == ["step 7b did not run", "step 8 did not run"]
    assert verdict["steps"]["step 8"]["outcome"] == "not run"


def test_a_step_whose_tests_all_skipped_verified_nothing() -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 8": ["skipped", "skipped"]}
    verdict = gate.compute_verdict(make_run(outcomes), chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "fail"
    assert verdict["reasons"] == ["step 8: every test was skipped, nothing was verified"]


def test_a_skip_beside_passes_is_listed_not_failed() -> None:
    outcomes = {step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 8": ["passed", "skipped"]}
    verdict = gate.compute_verdict(make_run(outcomes), chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "pass"
    assert verdict["skipped"] == ["tests/e2e/test_step8.py::test_1"]


def test_nonzero_exit_without_failures_fails() -> None:
    verdict = gate.compute_verdict(make_run(exit_status=2), chart_version="0.1.12", dry_run=False, returncode=2)
    assert verdict["verdict"] == "fail"
    assert verdict["reasons"] == ["pytest exited 2 (interrupted, usage error or no tests)"]


def test_no_tests_at_all_fails() -> None:
    verdict = gate.compute_verdict(make_run({}), chart_version="0.1.12", dry_run=False, returncode=0)
    assert verdict["verdict"] == "fail" and "the run recorded no tests" in verdict["reasons"]


def test_another_chart_version_than_requested_fails() -> None:
    verdict = gate.compute_verdict(make_run(), chart_version="0.1.13", dry_run=False, returncode=0)
    assert verdict["verdict"] == "fail"
    assert verdict["reasons"] == ["the run installed chart version 0.1.12, not the requested 0.1.13"]


def test_stand_in_or_lab_run_is_never_a_release_pass() -> None:
    chart = {"name": "vllm-stack-standin", "version": "0.1.12", "source": "/x", "stand_in": True}
    verdict = gate.compute_verdict(make_run(backend="lab", chart=chart), chart_version="0.1.12", dry_run=False)
    assert verdict["verdict"] == "fail" and verdict["release_pass"] is False
    assert verdict["suite_passed"] is True
    assert "chart vllm-stack-standin 0.1.12 is the lab's stand-in, not a release" in verdict["reasons"]
    assert "backend 'lab' is not a real cluster (current)" in verdict["reasons"]


def test_dry_run_verdict_cannot_be_mistaken_for_a_pass() -> None:
    chart = {"name": "vllm-stack-standin", "version": "0.1.12-standin.1", "source": "/x", "stand_in": True}
    verdict = gate.compute_verdict(make_run(backend="lab", chart=chart), chart_version="0.1.12", dry_run=True)
    assert verdict["verdict"] == "pass (dry run: stand-in chart, not a release verdict)"
    assert verdict["verdict"] != "pass" and verdict["release_pass"] is False and verdict["dry_run"] is True
    assert verdict["suite_passed"] is True
    assert all(r.startswith("dry run: ") for r in verdict["reasons"])
    # Even the real chart on a real cluster is no release pass when dry.
    real = gate.compute_verdict(make_run(), chart_version="0.1.12", dry_run=True)
    assert real["verdict"] == "pass (dry run: not a release verdict)" and real["release_pass"] is False


def test_recorded_lab_run_verdicts() -> None:
    run = rep.load_run(RECORDED)
    verdict = gate.compute_verdict(run, chart_version="0.1.12", dry_run=True, returncode=1)
    assert verdict["verdict"] == "fail (dry run: stand-in chart, not a release verdict)"
    assert verdict["suite_passed"] is False and verdict["release_pass"] is False
    assert "step 1 did not run" in verdict["reasons"]
    assert sum(r.startswith("step 5 test_") for r in verdict["reasons"]) == 3
    assert [d["defect"] for d in verdict["known_defects"]] == [3]
    assert verdict["versions"] == {"kubernetes": "v1.35.4", "keda": "2.20.2", "helm": "v4.1.4"}


def test_secrets_in_messages_are_redacted_in_the_verdict() -> None:
    run = make_run({step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 2": ["failed"]})
    run["tests"][1]["message"] = "pull failed with token=hunter2hunter2 and hf_ABCDEFGHIJKLMNOPQRSTUVWX"
    text = json.dumps(gate.compute_verdict(run, chart_version="0.1.12", dry_run=False))
    assert "hunter2hunter2" not in text and "hf_ABCDEFGHIJKLMNOPQRSTUVWX" not in text and "token=***" in text


# ---- refusals (nothing runs) --------------------------------------------------------------------------
class FakeRunner:
    """Stands in for the pytest subprocess; optionally writes the run folder the suite would."""

    def __init__(self, run: dict[str, Any] | None = None, returncode: int = 0) -> None:
        self.run, self.returncode = run, returncode
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, command: Sequence[str], env: Mapping[str, str]) -> int:
        self.calls.append((list(command), dict(env)))
        if self.run is not None:
            junit = next(a.split("=", 1)[1] for a in command if a.startswith("--junitxml="))
            reports = Path(next(a.split("=", 1)[1] for a in command if a.startswith("--reports-dir=")))
            folder = reports / self.run["run_id"]
            (folder / "timelines").mkdir(parents=True)
            shutil.copyfile(DATA / "junit-20261128-022914-ecf8.xml", junit)
            (folder / "run.json").write_text(json.dumps(self.run | {"junit": junit, "started": 1795832954.9}))
        return self.returncode


@pytest.mark.parametrize("version", [None, "", "latest", "LATEST", "^0.1", ">=0.1.0", "~0.1.12", "0.1", "0.1.x",
                                     "*", "0.1.12 || 0.1.13", "0.1.12,<0.2", "01.2.3"])
def test_unpinned_versions_are_refused_before_anything_runs(version: str | None, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner()
    request = gate.GateRequest(chart_version=version, reports_dir=tmp_path / "reports")
    assert gate.run_gate(request, runner=runner) == gate.EXIT_REFUSED
    assert runner.calls == [] and not (tmp_path / "reports").exists()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("error: refusing to gate")
    assert "--chart-version" in out or "exact version" in out


@pytest.mark.parametrize("version", ["0.1.12", "v0.1.12", "0.2.0-rc.1", "1.0.0+build.5"])
def test_pinned_versions_are_accepted(version: str) -> None:
    assert gate.check_pinned(version) == version.removeprefix("v")
    assert gate.refusal(gate.GateRequest(chart_version=version)) is None


def test_the_lab_is_refused_without_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner()
    request = gate.GateRequest(chart_version="0.1.12", cluster="lab", reports_dir=tmp_path)
    assert gate.run_gate(request, runner=runner) == gate.EXIT_REFUSED
    assert runner.calls == []
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "CLUSTER=lab" in line and "stand-in" in line and "--dry-run" in line


@pytest.mark.parametrize("chart", [str(STANDIN_CHART), "charts/vllm-stack-standin", "myrepo/vllm-stack-standin"])
def test_stand_in_charts_are_refused_on_current(chart: str) -> None:
    why = gate.refusal(gate.GateRequest(chart_version="0.1.12", chart=chart))
    assert why is not None and "stand-in chart, not a release" in why


def test_local_chart_of_another_version_is_refused(tmp_path: Path) -> None:
    chart = tmp_path / "vllm-stack"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vllm-stack\nversion: 0.1.11\n")
    why = gate.refusal(gate.GateRequest(chart_version="0.1.12", chart=str(chart)))
    assert why is not None and "is version 0.1.11, not 0.1.12" in why
    assert gate.refusal(gate.GateRequest(chart_version="0.1.11", chart=str(chart))) is None


def test_unknown_cluster_or_profile_is_refused() -> None:
    assert "choose current" in (gate.refusal(gate.GateRequest(chart_version="0.1.12", cluster="kind")) or "")
    assert "choose one of tutorial, fast" in (
        gate.refusal(gate.GateRequest(chart_version="0.1.12", profile="quick")) or "")


def test_dry_run_on_the_lab_is_allowed() -> None:
    assert gate.refusal(gate.GateRequest(chart_version="0.1.12", cluster="lab", dry_run=True)) is None


def test_cli_refusal_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert gate.main(["--cluster", "lab", "--chart-version", "0.1.12"]) == gate.EXIT_REFUSED
    assert gate.main(["--chart-version", "latest"]) == gate.EXIT_REFUSED
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: refusing to gate") for line in lines)


# ---- the command it runs ---------------------------------------------------------------------------------
def test_pytest_command_for_current(tmp_path: Path) -> None:
    request = gate.GateRequest(chart_version="v0.1.12", reports_dir=tmp_path)
    command = gate.pytest_command(request, tmp_path / "j.xml", python="/venv/bin/python")
    assert command == ["/venv/bin/python", "-m", "pytest", "tests/e2e", "--cluster=current", "--profile=tutorial",
                       "--chart-version=0.1.12", f"--junitxml={tmp_path / 'j.xml'}", f"--reports-dir={tmp_path}"]


def test_pytest_command_and_env_for_a_lab_dry_run(tmp_path: Path) -> None:
    request = gate.GateRequest(chart_version="0.1.12", cluster="lab", dry_run=True, chart="vllm/vllm-stack",
                               reports_dir=tmp_path)
    command = gate.pytest_command(request, tmp_path / "j.xml")
    assert "--cluster=lab" in command and "--profile=fast" in command and "--chart=vllm/vllm-stack" in command
    env = gate.pytest_env(request, base={"KEEP": "1", "PATH": "/bin", "CLUSTER": "current"})
    assert env == {"PATH": "/bin", "CLUSTER": "lab", "PROFILE": "fast", "CHART_VERSION": "0.1.12",
                   "VLLM_CHART": "vllm/vllm-stack"}


# ---- the whole gate, with the suite faked ---------------------------------------------------------------
def test_gate_pass_writes_verdict_report_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner(make_run())
    request = gate.GateRequest(chart_version="0.1.12", reports_dir=tmp_path / "reports")
    assert gate.run_gate(request, runner=runner) == gate.EXIT_PASS
    (command, env), = runner.calls
    assert command[1:5] == ["-m", "pytest", "tests/e2e", "--cluster=current"]
    assert env["CHART_VERSION"] == "0.1.12"
    run_dir = tmp_path / "reports" / "20261201-000000-abcd"
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["release_pass"] is True and verdict["gate_exit_code"] == 0
    assert verdict["report"] == {"markdown": "summary.md", "html": "summary.html"} and verdict["junit"] == "junit.xml"
    assert (run_dir / "summary.html").is_file() and (run_dir / "junit.xml").is_file()
    summary = (run_dir / "summary.md").read_text()
    assert "**Release gate verdict: pass — RELEASE PASS (chart version 0.1.12)**" in summary
    assert list((tmp_path / "reports").glob("gate-*-junit.xml")) == []  # moved beside the run
    assert f"gate verdict: pass — {run_dir / 'verdict.json'}" in capsys.readouterr().out


def test_gate_fail_exits_1(tmp_path: Path) -> None:
    run = make_run({step: ["passed"] for step in rep.TUTORIAL_STEPS} | {"step 6": ["failed"]})
    request = gate.GateRequest(chart_version="0.1.12", reports_dir=tmp_path)
    assert gate.run_gate(request, runner=FakeRunner(run, returncode=1)) == gate.EXIT_FAIL
    verdict = json.loads((tmp_path / run["run_id"] / "verdict.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["reasons"] == ["step 6 test_0 failed: boom"]


def test_lab_dry_run_that_passed_exits_3_and_says_so(tmp_path: Path) -> None:
    chart = {"name": "vllm-stack-standin", "version": "0.1.12-standin.1", "source": "/x", "stand_in": True}
    request = gate.GateRequest(chart_version="0.1.12", cluster="lab", dry_run=True, reports_dir=tmp_path)
    assert gate.run_gate(request, runner=FakeRunner(make_run(backend="lab", chart=chart))) == gate.EXIT_DRY_RUN
    verdict = json.loads((tmp_path / "20261201-000000-abcd" / "verdict.json").read_text())
    assert verdict["verdict"] == "pass (dry run: stand-in chart, not a release verdict)"
    assert verdict["release_pass"] is False and verdict["dry_run"] is True
    assert "not a release pass" in (tmp_path / "20261201-000000-abcd" / "summary.md").read_text()


def test_suite_that_wrote_no_run_record_fails(tmp_path: Path) -> None:
    request = gate.GateRequest(chart_version="0.1.12", reports_dir=tmp_path)
    assert gate.run_gate(request, runner=FakeRunner(returncode=4)) == gate.EXIT_FAIL
    (folder,) = tmp_path.glob("gate-*")
    verdict = json.loads((folder / "verdict.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["release_pass"] is False
    assert verdict["reasons"] == ["the suite wrote no run record (pytest exit 4): see its output above"]
    assert verdict["report"] is None and verdict["junit"] is None


def test_recorded_steps_7_and_8_run_fails_on_its_two_failures_and_missing_steps() -> None:
    run = rep.load_run(DATA / "run-lab-20261128-023427-bb29")
    verdict = gate.compute_verdict(run, chart_version="0.1.12", dry_run=True, returncode=1)
    assert verdict["verdict"].startswith("fail (dry run: stand-in chart")
    failed = [r for r in verdict["reasons"] if " failed: " in r]
    assert [r.split(" failed:")[0] for r in failed] == ["step 7a test_steady_traffic_keeps_the_stack_up",
                                                       "step 7b test_scale_down_respects_the_behavior"]
    assert (verdict["steps"]["step 7c"]["outcome"], verdict["steps"]["step 7c"]["passed"]) == ("passed", 6)
    assert [f"step {n} did not run" for n in range(1, 7)] == verdict["reasons"][:6]


def test_the_verdict_says_which_sets_ran() -> None:
    """run.json's "sets" — the page's steps, the scenarios beyond it — goes into verdict.json, so a
    gate or nightly reader knows what the verdict covers."""
    from vllm_stack_e2e.plugin import run_sets

    results = [{"step": "step 6"}, {"step": "beyond: pause"}, {"step": "lab"}]
    assert run_sets(results) == ["beyond", "harness", "page"]
    assert run_sets([{"step": "step 1"}]) == ["page"]
    verdict = gate.compute_verdict(make_run(sets=["beyond", "page"]), chart_version="0.1.12", dry_run=False,
                                   returncode=0)
    assert verdict["sets"] == ["beyond", "page"]
