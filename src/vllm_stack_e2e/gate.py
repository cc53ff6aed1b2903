"""The release gate: the whole tutorial suite against one exact chart version, then a verdict.

`python -m vllm_stack_e2e.gate --chart-version 0.1.12 [--cluster current|lab] [--dry-run]`
runs `pytest tests/e2e` on the cluster, writes `reports/<run-id>/verdict.json` beside the run's
report and JUnit XML, and exits 0 only on a release pass.

It refuses (exit 2, before running anything) to gate on the lab or its stand-in chart, and on
a chart version that is not pinned. `--dry-run` exercises everything but that refusal: the
verdict it writes says `"dry_run": true`, `"release_pass": false`, and a verdict string that
is never the bare word "pass"; it exits 3 when the suite passed, so `make gate && publish`
cannot publish a dry run either.

Exit codes: 0 release pass, 1 fail, 2 refused (bad input), 3 dry run whose suite passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import defects
from . import report as rep
from .config import PROFILES, REPO_ROOT
from .errors import ConfigError
from .helm import is_stand_in
from .redaction import redact_text

EXIT_PASS, EXIT_FAIL, EXIT_REFUSED, EXIT_DRY_RUN = 0, 1, 2, 3
SCHEMA = "vllm-stack-e2e/verdict/v1"
DEFAULT_CHART = "vllm/vllm-stack"
STANDIN_SUFFIX = "-standin"
# An exact SemVer 2 version (helm chart versions are SemVer): no ranges, wildcards or "latest".
_PINNED = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")

Runner = Callable[[Sequence[str], Mapping[str, str]], int]


class GateRefused(ConfigError):
    """The gate will not run on this input; the message says why and what to do instead."""


@dataclass(frozen=True)
class GateRequest:
    """What to gate: one exact chart version on one cluster."""

    chart_version: str | None
    cluster: str = "current"
    dry_run: bool = False
    profile: str | None = None  # default: tutorial on current, fast on the lab
    chart: str | None = None  # a chart path or repo/name; default vllm/vllm-stack
    reports_dir: Path = field(default_factory=rep.reports_root)

    @property
    def effective_profile(self) -> str:
        return self.profile or ("tutorial" if self.cluster == "current" else "fast")


# ---- refusals (pure; nothing runs before these pass) -----------------------------------------
def check_pinned(version: str | None) -> str:
    """`version` when it is one exact chart version; else GateRefused."""
    text = (version or "").strip()
    if not text:
        raise GateRefused("refusing to gate: no chart version given — pass --chart-version X.Y.Z "
                          "(make gate CHART_VERSION=X.Y.Z), the exact version you want to release")
    if text.lower() == "latest" or not _PINNED.fullmatch(text):
        raise GateRefused(f"refusing to gate on chart version {text!r}: it is not pinned (ranges, wildcards and "
                          "'latest' resolve to whatever is newest) — pass one exact version like 0.1.12")
    return text.removeprefix("v")


def _local_chart_meta(chart: str) -> dict[str, Any] | None:
    path = Path(chart)
    meta_file = path / "Chart.yaml" if path.is_dir() else None
    if meta_file is None or not meta_file.is_file():
        return None
    try:
        meta = yaml.safe_load(meta_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GateRefused(f"refusing to gate on chart {chart}: its Chart.yaml is unreadable ({exc}) — "
                          "fix the chart or gate the published one") from None
    return meta if isinstance(meta, dict) else {}


def refusal(request: GateRequest) -> str | None:
    """Why the gate refuses `request` (one line), or None when it may run."""
    try:
        version = check_pinned(request.chart_version)
        if request.cluster not in ("current", "lab"):
            raise GateRefused(f"refusing to gate on --cluster {request.cluster!r}: choose current (your kube "
                              "context) or lab (with --dry-run)")
        if request.profile is not None and request.profile not in PROFILES:
            raise GateRefused(f"refusing to gate with --profile {request.profile!r}: choose one of "
                              f"{', '.join(PROFILES)} (tutorial is the tutorial's own numbers)")
        chart = request.chart or DEFAULT_CHART
        meta = _local_chart_meta(chart)
        name = str((meta or {}).get("name") or Path(chart.rstrip("/")).name)
        if not request.dry_run:
            if request.cluster == "lab":
                raise GateRefused("refusing to gate on CLUSTER=lab: the lab installs the stand-in chart, which is "
                                  "not a release — gate on a GPU cluster with --cluster current, or add --dry-run "
                                  "to exercise the gate on the lab")
            if name.endswith(STANDIN_SUFFIX) or Path(chart.rstrip("/")).name.endswith(STANDIN_SUFFIX):
                raise GateRefused(f"refusing to gate on {name}: it is the lab's stand-in chart, not a release — "
                                  f"gate the real chart ({DEFAULT_CHART} --chart-version {version})")
        if meta is not None and str(meta.get("version")) != version and not request.dry_run:
            raise GateRefused(f"refusing to gate: chart {chart} is version {meta.get('version')}, not {version} — "
                              "point --chart at that version or pass its --chart-version")
    except GateRefused as exc:
        return str(exc)
    return None


# ---- the suite run ------------------------------------------------------------------------------
def pytest_command(request: GateRequest, junit: Path, python: str = sys.executable) -> list[str]:
    """The `pytest tests/e2e` command line that runs the whole suite for `request`."""
    command = [python, "-m", "pytest", "tests/e2e", f"--cluster={request.cluster}",
               f"--profile={request.effective_profile}", f"--chart-version={check_pinned(request.chart_version)}",
               f"--junitxml={junit}", f"--reports-dir={request.reports_dir}"]
    if request.chart:
        command.append(f"--chart={request.chart}")
    return command


def pytest_env(request: GateRequest, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The suite's environment: the caller's, with the gate's choices set (options win anyway)."""
    env = dict(os.environ if base is None else base)
    env.update({"CLUSTER": request.cluster, "PROFILE": request.effective_profile,
                "CHART_VERSION": check_pinned(request.chart_version)})
    env.pop("KEEP", None)  # a gate run always tears down what it installed
    if request.chart:
        env["VLLM_CHART"] = request.chart
    return env


def subprocess_runner(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the suite in the repository, output streaming to ours; its exit status."""
    return subprocess.run(list(command), env=dict(env), cwd=REPO_ROOT, check=False).returncode


def find_run(reports_dir: Path, junit: Path) -> Path | None:
    """The run folder whose run.json names `junit` (unique per gate run)."""
    wanted = junit.resolve()
    for record in sorted(Path(reports_dir).glob("*/run.json"), reverse=True):
        try:
            named = json.loads(record.read_text()).get("junit") or ""
        except (OSError, ValueError):
            continue
        if named and Path(named).resolve() == wanted:
            return record.parent
    return None


# ---- the verdict (pure) --------------------------------------------------------------------------
def compute_verdict(run: Mapping[str, Any], *, chart_version: str | None, dry_run: bool,
                    returncode: int | None = None,
                    required_steps: Sequence[str] = rep.TUTORIAL_STEPS) -> dict[str, Any]:
    """The gate's verdict over one run record (run.json).

    A release pass needs: every required step ran and passed (xfailed tests — known upstream
    defects — pass, and are listed), no test failed or errored anywhere, pytest exited 0, the
    run was on `current` with the real chart at exactly `chart_version`, and not a dry run.
    """
    tests = rep.test_results(run)
    steps = rep.summarize_steps(tests, include=required_steps)
    reasons: list[str] = []
    for step in steps:
        if step.step in required_steps and step.outcome == "not run":
            reasons.append(f"{step.step} did not run")
        elif step.step in required_steps and step.outcome == "skipped":
            reasons.append(f"{step.step}: every test was skipped, nothing was verified")
    failing = [t for t in tests if t.outcome in rep.FAILING]
    reasons += [f"{t.step} {t.name} {t.outcome}" + (f": {t.message}" if t.message else "") for t in failing]
    exit_status = run.get("exit_status")
    if exit_status not in (0, None) and not failing:
        reasons.append(f"pytest exited {exit_status} (interrupted, usage error or no tests)")
    if returncode not in (0, None) and returncode != exit_status and not failing:
        reasons.append(f"the suite's process exited {returncode}")
    if not tests:
        reasons.append("the run recorded no tests")
    suite_passed = not reasons

    chart = rep.chart_of(run)
    stand_in = is_stand_in(chart)
    blockers: list[str] = []  # why this run cannot be a release pass even if the suite passed
    if not chart:
        blockers.append("the run recorded no chart")
    if stand_in:
        blockers.append(f"chart {chart.get('name')} {chart.get('version')} is the lab's stand-in, not a release")
    if run.get("backend") != "current":
        blockers.append(f"backend {run.get('backend')!r} is not a real cluster (current)")
    if chart and chart_version and str(chart.get("version")) != chart_version:
        blockers.append(f"the run installed chart version {chart.get('version')}, not the requested {chart_version}")
    if not chart_version:
        blockers.append("no chart version was requested")

    if dry_run:
        why = "stand-in chart, not a release verdict" if stand_in else "not a release verdict"
        verdict = f"{'pass' if suite_passed else 'fail'} (dry run: {why})"
        release_pass = False
    else:
        reasons += blockers
        release_pass = not reasons
        verdict = "pass" if release_pass else "fail"

    xfailed = [t for t in tests if t.outcome == "xfailed"]
    started, ended = run.get("started"), run.get("ended")
    facts = run.get("facts") or {}
    return {
        "schema": SCHEMA,
        "verdict": verdict,
        "release_pass": release_pass,
        "dry_run": dry_run,
        "suite_passed": suite_passed,
        "reasons": reasons if not dry_run else reasons + [f"dry run: {b}" for b in blockers],
        "chart_version_requested": chart_version,
        "chart": {k: chart.get(k) for k in ("name", "version", "source", "stand_in") if k in chart} or None,
        "backend": run.get("backend"),
        "profile": run.get("profile"),
        "edition": run.get("edition"),
        "sets": run.get("sets") or [],  # which tests ran: the page's steps, the scenarios beyond it
        "versions": {key: redact_text(str(facts[key])) for key in ("kubernetes", "keda", "helm", "prometheus")
                     if key in facts},
        "steps": {s.step: {"outcome": s.outcome, "duration_seconds": round(s.duration, 3),
                           **{k: v for k, v in s.counts.items() if v}} for s in steps},
        "known_defects": [{"test": t.nodeid, "step": t.step, "defect": t.defect,
                           "title": defects.title(t.defect), "message": t.message} for t in xfailed],
        "preflight_defects": sorted({f["defect"] for f in run.get("preflight") or []
                                     if isinstance(f.get("defect"), int)}),
        "xpassed": [t.nodeid for t in tests if t.outcome == "xpassed"],
        "skipped": [t.nodeid for t in tests if t.outcome == "skipped"],
        "run_id": run.get("run_id"),
        "started": started,
        "ended": ended,
        "duration_seconds": round(float(ended) - float(started), 1) if started and ended else None,
        "exit_status": exit_status,
    }


def fail_verdict(request: GateRequest, reason: str, returncode: int | None) -> dict[str, Any]:
    """The verdict when the suite left no run record to judge."""
    verdict = compute_verdict({"tests": [], "exit_status": returncode}, chart_version=request.chart_version,
                              dry_run=request.dry_run, returncode=returncode)
    verdict["reasons"] = [reason]
    if not request.dry_run:
        verdict["verdict"] = "fail"
    return verdict


# ---- the gate -------------------------------------------------------------------------------------
def run_gate(request: GateRequest, runner: Runner = subprocess_runner,
             echo: Callable[[str], None] = print) -> int:
    """Refuse or run the suite, write verdict.json (and the report); the exit code."""
    why = refusal(request)
    if why is not None:
        echo(f"error: {why}")
        return EXIT_REFUSED
    version = check_pinned(request.chart_version)
    request = GateRequest(chart_version=version, cluster=request.cluster, dry_run=request.dry_run,
                          profile=request.profile, chart=request.chart, reports_dir=Path(request.reports_dir).resolve())
    request.reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    junit = request.reports_dir / f"gate-{stamp}-{os.getpid()}-junit.xml"
    command = pytest_command(request, junit)
    mode = "DRY RUN on " if request.dry_run else ""
    echo(f"gate: {mode}{request.chart or DEFAULT_CHART} {version} on {request.cluster} "
         f"(profile {request.effective_profile}): {' '.join(command[1:])}")
    returncode = runner(command, pytest_env(request))

    run_dir = find_run(request.reports_dir, junit)
    if run_dir is None:
        run_dir = request.reports_dir / f"gate-{stamp}"
        run_dir.mkdir(parents=True, exist_ok=True)
        if junit.is_file():
            junit.replace(run_dir / rep.JUNIT_COPY)
        verdict = fail_verdict(request, f"the suite wrote no run record (pytest exit {returncode}): see its "
                                        "output above", returncode)
    else:
        verdict = compute_verdict(rep.load_run(run_dir), chart_version=version, dry_run=request.dry_run,
                                  returncode=returncode)
    recorded = (run_dir / "run.json").is_file()
    verdict.update({"run_dir": str(run_dir),
                    "report": {"markdown": rep.MARKDOWN, "html": rep.HTML} if recorded else None,
                    "junit": rep.JUNIT_COPY if junit.is_file() or (run_dir / rep.JUNIT_COPY).is_file() else None,
                    "gate_exit_code": None})
    code = EXIT_PASS if verdict["release_pass"] else (EXIT_DRY_RUN if request.dry_run and verdict["suite_passed"]
                                                      else EXIT_FAIL)
    verdict["gate_exit_code"] = code
    path = run_dir / rep.VERDICT
    path.write_text(json.dumps(verdict, indent=1) + "\n")
    if recorded:
        try:
            rep.write_report(run_dir)  # copies the JUnit XML beside the run and shows the verdict
        except Exception as exc:  # noqa: BLE001 — the verdict stands without its report; say so
            echo(f"warning: report not written ({type(exc).__name__}: {exc}); rebuild it with "
                 f"python -m vllm_stack_e2e.report {run_dir}")
        if (run_dir / rep.JUNIT_COPY).is_file():
            junit.unlink(missing_ok=True)
    echo(f"gate verdict: {verdict['verdict']} — {path}")
    for reason in verdict["reasons"][:10]:
        echo(f"  - {reason}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m vllm_stack_e2e.gate --chart-version X [--cluster current|lab] [--dry-run]`."""
    parser = argparse.ArgumentParser(
        prog="python -m vllm_stack_e2e.gate",
        description="Release gate: the whole e2e suite against one exact vllm-stack chart version; writes "
                    "reports/<run-id>/verdict.json. Exit 0 release pass, 1 fail, 2 refused, 3 dry run passed.")
    parser.add_argument("--chart-version", default=None, help="the exact chart version to gate, e.g. 0.1.12")
    parser.add_argument("--cluster", default="current", help="current (default: your kube context) or lab")
    parser.add_argument("--dry-run", action="store_true",
                        help="exercise the gate (e.g. on the lab's stand-in chart); never a release pass")
    parser.add_argument("--profile", default=None, help="tutorial (default on current) or fast (default on lab)")
    parser.add_argument("--chart", default=os.environ.get("VLLM_CHART") or None,
                        help=f"chart path or repo/name (default {DEFAULT_CHART}; env VLLM_CHART)")
    parser.add_argument("--reports-dir", type=Path, default=None, help="default: $REPORTS_DIR or <repo>/reports")
    args = parser.parse_args(argv)
    request = GateRequest(chart_version=args.chart_version, cluster=args.cluster, dry_run=args.dry_run,
                          profile=args.profile, chart=args.chart, reports_dir=args.reports_dir or rep.reports_root())
    return run_gate(request)


if __name__ == "__main__":
    sys.exit(main())
