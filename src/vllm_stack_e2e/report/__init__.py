"""The run report: `reports/<run-id>/summary.md` and its self-contained HTML twin
`summary.html`, read by a release manager in a minute — which backend and chart (stand-in or
real), the versions, each tutorial step's result, the upstream defects seen, and one PNG plot
per timeline (replicas, queue vs threshold, load phases, KEDA conditions, events).

Built from the run folder alone (`run.json`, `timelines/*.json`, the JUnit XML), so it can be
rebuilt any time: `python -m vllm_stack_e2e.report reports/<run-id>` or `--latest`.

model (run.json → tests, steps, defects) · headline (what a user of the page gets) · claims (what each
test proves and what it does not, per backend) · junit · plots (timelines) · render (Markdown, HTML).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import ConfigError
from ..helm import is_stand_in
from ..redaction import redact_text
from .claims import CLAIMS, NO_STATEMENT, Claim, ClaimRow, claim_name, claim_rows, run_scope
from .headline import PROMISES, Headline, Promise, fixes_by_step, headline, overlays_by_step, promises
from .junit import copy_junit, junit_failures, with_junit_messages
from .model import (FAILING, HTML, JUNIT_COPY, MARKDOWN, OUTCOMES, PLOTS, STEP_TITLES, TUTORIAL_STEPS, VERDICT,
                    DefectSighting, Report, StepResult, TestResult, chart_of, defect_sightings, harness_fixes,
                    load_run, reused, run_status, step_key, summarize_steps, test_results)
from .plots import TimelineSummary, condition_intervals, load_timelines, plot_timeline, summarize_timeline
from .render import Content, fmt_duration, render_html, render_markdown

__all__ = ["CLAIMS", "FAILING", "HTML", "JUNIT_COPY", "MARKDOWN", "NO_STATEMENT", "OUTCOMES", "PLOTS", "PROMISES",
           "STEP_TITLES", "TUTORIAL_STEPS", "VERDICT", "Claim", "ClaimRow", "DefectSighting", "Headline", "Promise",
           "Report", "StepResult", "TestResult", "TimelineSummary", "chart_of", "claim_name", "claim_rows",
           "condition_intervals", "copy_junit", "defect_sightings", "fixes_by_step", "fmt_duration", "harness_fixes",
           "headline", "junit_failures", "latest_run", "load_run", "load_timelines", "main", "overlays_by_step",
           "plot_timeline", "promises", "render_html", "render_markdown", "reports_root", "reused", "run_scope",
           "run_status", "step_key", "summarize_steps", "summarize_timeline", "test_results", "with_junit_messages",
           "write_report"]

# ---- the entry points --------------------------------------------------------------------------
def write_report(run_dir: Path) -> Report:
    """Build summary.md, summary.html, plots/<timeline>.png and junit.xml in `run_dir`."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    junit, junit_note = copy_junit(run, run_dir)
    tests = with_junit_messages(test_results(run), junit)
    steps = summarize_steps(tests)
    chart = chart_of(run)
    facts = {str(k): redact_text(str(v)) for k, v in (run.get("facts") or {}).items()}
    timelines = []
    for timeline in load_timelines(run, run_dir):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(timeline.get("name", "timeline")))
        png = plot_timeline(timeline, run_dir / PLOTS / f"{name}.png")
        timelines.append((summarize_timeline(timeline), png))
    verdict = None
    if (run_dir / VERDICT).is_file():
        try:
            verdict = json.loads((run_dir / VERDICT).read_text())
        except ValueError:
            verdict = None
    stand_in = is_stand_in(chart)
    fixed = fixes_by_step(harness_fixes(run_dir))
    found = reused(run, tests)
    overlays = overlays_by_step(run)
    content = Content(run=run, run_dir=run_dir, status=run_status(run, steps), chart=chart,
                       stand_in=stand_in, facts=facts, steps=steps,
                       defects=defect_sightings(run, tests), timelines=timelines, junit=junit,
                       junit_note=junit_note, verdict=verdict,
                       headline=headline(run, promises(steps, fixed, found, overlays), stand_in=stand_in),
                       claims=claim_rows(tests, str(run.get("backend") or "?"), fixes=fixed, reused=found,
                                         overlays=overlays),
                       scope=run_scope(run, stand_in=stand_in, reused=found))
    markdown, page = run_dir / MARKDOWN, run_dir / HTML
    markdown.write_text(render_markdown(content))
    page.write_text(render_html(content))
    return Report(run_dir=run_dir, markdown=markdown, html=page, plots=[p for _, p in timelines], junit=junit,
                  junit_source=str(run.get("junit") or ""), status=content.status, stand_in=content.stand_in,
                  steps=steps, defects=content.defects, headline=content.headline, claims=content.claims)


def reports_root() -> Path:
    """Where runs write their folders: REPORTS_DIR, else <repo>/reports."""
    return Path(os.environ["REPORTS_DIR"]) if os.environ.get("REPORTS_DIR") else REPO_ROOT / "reports"


def latest_run(reports_dir: Path) -> Path:
    """The newest run folder (run ids sort by time) that has a run.json."""
    runs = sorted((p.parent for p in Path(reports_dir).glob("*/run.json")), key=lambda p: p.name)
    if not runs:
        raise ConfigError(f"no run folder with a run.json under {reports_dir}: run `make e2e` first, "
                          "or pass --reports-dir")
    return runs[-1]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m vllm_stack_e2e.report reports/<run-id>` or `--latest`."""
    parser = argparse.ArgumentParser(prog="python -m vllm_stack_e2e.report",
                                     description="Write summary.md / summary.html (and plots) for one e2e run.")
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run folder, reports/<run-id>/")
    parser.add_argument("--latest", action="store_true", help="the newest run under --reports-dir")
    parser.add_argument("--reports-dir", type=Path, default=None, help="default: $REPORTS_DIR or <repo>/reports")
    parser.add_argument("--append-to", type=Path, default=None, metavar="FILE",
                        help="also append summary.md to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (not args.latest):
        parser.error("give either a run folder (reports/<run-id>) or --latest")
    try:
        run_dir = latest_run(args.reports_dir or reports_root()) if args.latest else args.run_dir
        report = write_report(run_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.append_to is not None:
        with args.append_to.open("a") as sink:
            sink.write(report.markdown.read_text() + "\n")
    if report.headline is not None:
        print(report.headline)
    print(f"{report.status}\nreport: {report.html}\n        {report.markdown}")
    for png in report.plots:
        print(f"plot:   {png}")
    return 0


