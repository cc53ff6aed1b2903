"""Rendering: summary.md and its self-contained HTML twin summary.html."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..redaction import redact_text
from .claims import NO_STATEMENT, ClaimRow
from .headline import Headline
from .model import (BEYOND_TIMELINE, FAILING, HTML, JUNIT_COPY, PLOTS, VERDICT, DefectSighting, StepResult,
                    TestResult, is_beyond)
from .plots import TimelineSummary

# ---- rendering ---------------------------------------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    """3.2 s, 1 m 21 s, 1 h 02 m; an em dash for nothing."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def _utc(epoch: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return "?"


# run.json's "sets" in words: which of the harness's test sets a run ran.
SET_WORDS = {"page": "the page's steps 1–8", "beyond": "the scenarios beyond the page", "harness": "harness self-tests"}
_ICON = {"passed": "✅ passed", "passed (known defects)": "✅ passed (known defects)", "failed": "❌ failed",
         "skipped": "⚪ skipped", "not run": "⚪ not run", "error": "❌ error", "xfailed": "🟡 xfailed",
         "xpassed": "🟣 xpassed"}


@dataclass
class Content:
    """Everything both renderings show, computed once."""

    run: dict[str, Any]
    run_dir: Path
    status: str
    chart: dict[str, Any]
    stand_in: bool
    facts: dict[str, str]
    steps: list[StepResult]
    defects: list[DefectSighting]
    timelines: list[tuple[TimelineSummary, Path]]
    junit: Path | None
    junit_note: str
    verdict: dict[str, Any] | None
    headline: Headline | None = None  # what a user of the page gets (report.headline)
    claims: list[ClaimRow] = field(default_factory=list)  # one row per test function that ran (report.claims)
    scope: list[str] = field(default_factory=list)  # what holds for every row: backend, chart, profile, fixes

    @property
    def versions(self) -> list[tuple[str, str]]:
        facts = self.facts
        return [("Kubernetes", facts.get("kubernetes", "not recorded")), ("KEDA", facts.get("keda", "not recorded")),
                ("Helm", facts.get("helm", "not recorded")), ("Prometheus", facts.get("prometheus", "not recorded"))]

    @property
    def chart_line(self) -> str:
        chart = self.chart
        if not chart:
            return "not recorded (the run stopped before resolving the chart)"
        kind = "STAND-IN, not the real chart" if self.stand_in else "real chart"
        return f"{chart.get('name', '?')} {chart.get('version', '?')} from {chart.get('source', '?')} — {kind}"

    @property
    def stand_in_warning(self) -> str:
        chart = self.chart
        return (f"STAND-IN CHART: this run installed {chart.get('name', '?')} {chart.get('version', '?')}, the lab's "
                "stand-in written from the chart's contract, not the real vllm/vllm-stack. Its results say nothing "
                "about a chart release.")

    @property
    def overview(self) -> list[tuple[str, str]]:
        run = self.run
        started, ended = run.get("started"), run.get("ended")
        duration = float(ended) - float(started) if started and ended else None
        rows = [("Backend", self.facts.get("backend", str(run.get("backend", "?")))),
                ("Chart", self.chart_line), *self.versions,
                ("Profile", str(run.get("profile", "?"))), ("Namespace", str(run.get("namespace", "?"))),
                *([("Simulated engine", self.engine_line)] if isinstance(run.get("engine"), dict) else []),
                *([("Tutorial edition", f"{run['edition'].get('name')} — {run['edition'].get('why')}")]
                  if isinstance(run.get("edition"), dict) else []),
                *([("What ran", " + ".join(SET_WORDS.get(s, s) for s in run["sets"]))] if run.get("sets") else []),
                *[(f"Left behind: {what}", ", ".join(items)) for what, items in (run.get("left_behind") or {}).items()],
                ("Started", _utc(started)), ("Duration", fmt_duration(duration)),
                *([("Where the time went", self.waiting_line(duration))] if run.get("waiting") else []),
                ("pytest exit status", str(run.get("exit_status", "?"))),
                ("JUnit XML", f"{JUNIT_COPY} ({self.junit_note})" if self.junit else self.junit_note)]
        return rows

    @property
    def engine_line(self) -> str:
        """The lab's engine preset (run.json `engine`): what its simulated GPU holds and how fast it runs."""
        e = self.run["engine"]
        return (f"{e.get('name')} — {e.get('summary')}: KV {e.get('kv_cache_tokens')} tokens, max_num_seqs "
                f"{e.get('max_num_seqs')}, {e.get('max_num_batched_tokens')} tokens per step, prefill "
                f"{e.get('prefill_tokens_per_s'):g} tokens/s, decode step {e.get('inter_token_latency'):g} s")

    def waiting_line(self, duration: float | None) -> str:
        """Where the run's time went: named waits on the cluster (controllers, KEDA, the HPA,
        Prometheus), the activities it counted (helm, the lab's start), and the rest — the
        harness's own share, with its fraction of the run."""
        waiting = self.run.get("waiting") or {}
        seconds, count = float(waiting.get("seconds") or 0.0), int(waiting.get("waits") or 0)
        activities = {str(k): float(v) for k, v in (waiting.get("activities") or {}).items()}
        line = f"{fmt_duration(seconds)} in {count} waits"
        if not duration:
            return line
        parts = [f"{line} ({seconds / duration:.0%})"]
        parts += [f"{name} {fmt_duration(value)} ({value / duration:.0%})" for name, value in sorted(activities.items())]
        harness = max(duration - seconds - sum(activities.values()), 0.0)
        parts.append(f"harness {fmt_duration(harness)} ({harness / duration:.0%})")
        return "; ".join(parts)

    @property
    def other_facts(self) -> list[tuple[str, str]]:
        shown = {"backend", "kubernetes", "keda", "helm", "prometheus", "chart"}
        return [(k, v) for k, v in self.facts.items() if k not in shown]

    @property
    def tutorial_steps(self) -> list[StepResult]:
        return [s for s in self.steps if not is_beyond(s.step)]

    @property
    def beyond_steps(self) -> list[StepResult]:
        return [s for s in self.steps if is_beyond(s.step)]

    @property
    def tutorial_timelines(self) -> list[tuple[TimelineSummary, Path]]:
        return [(t, png) for t, png in self.timelines if not t.name.startswith(BEYOND_TIMELINE)]

    @property
    def beyond_timelines(self) -> list[tuple[TimelineSummary, Path]]:
        return [(t, png) for t, png in self.timelines if t.name.startswith(BEYOND_TIMELINE)]

    @property
    def failures(self) -> list[TestResult]:
        return [t for s in self.steps for t in s.tests if t.outcome in FAILING]

    @property
    def xfailed(self) -> list[TestResult]:
        return [t for s in self.steps for t in s.tests if t.outcome == "xfailed"]

    def artifacts_of(self, test: TestResult) -> str | None:
        folder = self.run_dir / "artifacts" / re.sub(r"[^A-Za-z0-9_.-]+", "_", test.nodeid)[:120]
        return str(folder.relative_to(self.run_dir)) if folder.is_dir() else None

    def verdict_line(self) -> str | None:
        if not self.verdict:
            return None
        v = self.verdict
        release = "RELEASE PASS" if v.get("release_pass") else "not a release pass"
        return f"{v.get('verdict', '?')} — {release} (chart version {v.get('chart_version_requested', '?')})"


def _tally(step: StepResult, sep: str) -> str:
    """pass/fail/xfail/skip counts of a step (xpassed counts as pass, error as fail)."""
    if not step.tests:
        return "—"
    n = step.counts
    return sep.join(str(v) for v in (n["passed"] + n["xpassed"], n["failed"] + n["error"], n["xfailed"], n["skipped"]))


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _timeline_line(summary: TimelineSummary) -> str:
    parts = [f"{summary.samples} samples over {fmt_duration(summary.seconds)}",
             f"peak replicas {summary.peak_spec if summary.peak_spec is not None else '?'} desired / "
             f"{summary.peak_ready if summary.peak_ready is not None else '?'} ready"]
    if summary.peak_queue is not None:
        parts.append(f"peak queue {summary.peak_queue:g}"
                     + (f" (threshold {summary.threshold:g})" if summary.threshold is not None else ""))
    if summary.peak_concurrency is not None:
        parts.append(f"load concurrency up to {summary.peak_concurrency}"
                     + (f" (ceiling {summary.ceiling})" if summary.ceiling is not None else ""))
    if summary.peak_running is not None:
        parts.append(f"engines running up to {summary.peak_running:g}")
    if summary.queue_after_load is not None:
        parts.append(f"queue above the threshold {summary.queue_after_load:.1f} s after load started")
    if summary.scale_up_after_load is not None:
        parts.append(f"replicas grew {summary.scale_up_after_load:.1f} s after load started")
    return "; ".join(parts)


def _md_steps(steps: list[StepResult]) -> list[str]:
    out = ["| Step | Checks | Result | Tests (pass/fail/xfail/skip) | Duration |", "|---|---|---|---|---|"]
    for s in steps:
        out.append(f"| {s.step} | {_md(s.title)} | {_ICON.get(s.outcome, s.outcome)} | {_tally(s, '/')} | "
                   f"{fmt_duration(s.duration) if s.tests else '—'} |")
    return out + [""]


def _md_timelines(c: Content, timelines: list[tuple[TimelineSummary, Path]]) -> list[str]:
    out = []
    for summary, png in timelines:
        rel = png.relative_to(c.run_dir).as_posix()
        out += [f"### {summary.name}", "", f"![{summary.name}]({rel})", "", _timeline_line(summary), ""]
        if summary.events:
            out += [f"- at {t:+.1f} s: {_md(text)}" for t, text in summary.events] + [""]
    return out


def _html_steps(steps: list[StepResult]) -> list[str]:
    out = ["<table><tr><th>Step</th><th>Checks</th><th>Result</th><th>pass / fail / xfail / skip</th>"
           "<th>Duration</th></tr>"]
    for s in steps:
        out.append(f"<tr><td>{_h(s.step)}</td><td>{_h(s.title)}</td><td class='{_cls(s.outcome)}'>"
                   f"{_h(_ICON.get(s.outcome, s.outcome))}</td><td>{_tally(s, ' / ')}</td>"
                   f"<td>{fmt_duration(s.duration) if s.tests else '—'}</td></tr>")
    return out + ["</table>"]


def _html_timelines(timelines: list[tuple[TimelineSummary, Path]]) -> list[str]:
    out = []
    for summary, png in timelines:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        out += [f"<h3>{_h(summary.name)}</h3>",
                f"<img alt='{_h(summary.name)} timeline' src='data:image/png;base64,{data}'>",
                f"<p>{_h(_timeline_line(summary))}</p>"]
        if summary.events:
            out.append("<ul>" + "".join(f"<li>at {t:+.1f} s: {_h(text)}</li>" for t, text in summary.events) + "</ul>")
    return out


CLAIMS_TITLE = "What this run proves, and what it does not"
CLAIMS_NOTE = ("One row per test that ran (a parametrised test's cases folded into one). \"Proves\" is what the test "
               "shows when it passes: a row that did not pass (xfailed, failed, skipped) showed none of it here. "
               "\"Does not prove\" is what even a pass leaves unshown on this backend; the lines above the table "
               "hold for every row. The statements live in src/vllm_stack_e2e/report/claims.py.")


def _claims_heading(c: Content) -> str:
    return f"Does not prove (on {c.run.get('backend', '?')})"


def _md_claims(c: Content) -> list[str]:
    out = [f"## {CLAIMS_TITLE}", "", CLAIMS_NOTE, ""]
    out += [f"- {_md(line)}" for line in c.scope] + ([""] if c.scope else [])
    if not c.claims:
        return out + ["No test ran.", ""]
    out += [f"| Step | Test | Outcome | Proves | {_claims_heading(c)} |", "|---|---|---|---|---|"]
    for row in c.claims:
        icon = _ICON.get(row.main_outcome, "").split(" ", 1)[0]
        proves = row.proves if row.registered else f"⚠️ {NO_STATEMENT}"
        does_not = row.does_not if row.registered else f"⚠️ {NO_STATEMENT}"
        out.append(f"| {_md(row.step)} | `{row.name}` | {icon} {_md(row.outcome)} | {_md(proves)} | {_md(does_not)} |")
    return out + [""]


def _html_claims(c: Content) -> list[str]:
    out = [f"<h2>{_h(CLAIMS_TITLE)}</h2>", f"<p>{_h(CLAIMS_NOTE)}</p>"]
    if c.scope:
        out.append("<ul class='scope'>" + "".join(f"<li>{_h(line)}</li>" for line in c.scope) + "</ul>")
    if not c.claims:
        return out + ["<p>No test ran.</p>"]
    out.append(f"<table class='claims'><tr><th>Step</th><th>Test</th><th>Outcome</th><th>Proves</th>"
               f"<th>{_h(_claims_heading(c))}</th></tr>")
    for row in c.claims:
        missing = "<td class='unregistered'>⚠️ " + _h(NO_STATEMENT) + "</td>"
        out.append(f"<tr><td>{_h(row.step)}</td><td><code>{_h(row.name)}</code></td>"
                   f"<td class='{_cls(row.main_outcome)}'>{_h(row.outcome)}</td>"
                   + (f"<td>{_h(row.proves)}</td><td>{_h(row.does_not)}</td>" if row.registered else missing * 2)
                   + "</tr>")
    return out + ["</table>"]


def render_markdown(c: Content) -> str:
    """summary.md."""
    out = [f"# vLLM stack e2e — run {c.run.get('run_id', c.run_dir.name)}", ""]
    if c.stand_in:
        out += [f"> ⚠️ **{c.stand_in_warning}**", ""]
    if c.headline is not None:
        out += [f"**{_md(c.headline.label)}:** {_md(c.headline.body)}", ""]
    out += [f"**Result: {c.status}**", ""]
    if c.verdict_line():
        out += [f"**Release gate verdict: {c.verdict_line()}** ({VERDICT})", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in c.overview] + [""]
    out += ["## Tutorial steps", ""] + _md_steps(c.tutorial_steps)
    if c.beyond_steps:
        out += ["## Beyond the tutorial", "",
                "Scenarios the page does not cover (marker `beyond`); judged apart from the tutorial's steps.", ""]
        out += _md_steps(c.beyond_steps)
        out += _md_timelines(c, c.beyond_timelines)
    out += _md_claims(c)
    if c.failures:
        out += ["## Failures", ""]
        for t in c.failures:
            evidence = c.artifacts_of(t)
            out.append(f"- **{t.step}** `{t.name}` {t.outcome}: {_md(t.message) or '(no message)'}"
                       + (f" — evidence: [{evidence}/]({evidence}/)" if evidence else ""))
        out.append("")
    out += ["## Known upstream defects (docs/upstream-defects.md)", ""]
    if c.defects:
        out += ["| # | Defect | Seen by |", "|---|---|---|"]
        for d in c.defects:
            seen = [f"preflight: {_md(m)}" for m in d.preflight] + [f"xfailed `{t.name}` ({t.step})" for t in d.tests]
            out.append(f"| {d.number} | {_md(d.title)} | {'<br>'.join(seen)} |")
    else:
        out.append("None found by preflight or observed by a test.")
    out.append("")
    if c.xfailed:
        out += ["### Expected failures (xfail: upstream defects observed)", ""]
        out += [f"- **{t.step}** `{t.name}`: {_md(t.message)}" for t in c.xfailed] + [""]
    out += ["## Timelines", ""]
    if c.timelines:
        out += [f"Plots are PNGs in {PLOTS}/ beside this file (and embedded in {HTML}).", ""]
    if not c.tutorial_timelines:
        out += ["No timelines were recorded for the tutorial's steps in this run.", ""]
    out += _md_timelines(c, c.tutorial_timelines)
    others = [f for f in c.run.get("preflight") or [] if not isinstance(f.get("defect"), int)]
    if others:
        out += ["## Other preflight findings", ""]
        out += [f"- {f.get('severity', '?')}: {_md(redact_text(str(f.get('message', ''))))} — "
                f"{_md(redact_text(str(f.get('fix', ''))))}" for f in others] + [""]
    out += ["## Details", "", "### Values applied", ""]
    overlays = c.run.get("overlays") or {}
    out += [f"- **{k}**: `{_md(redact_text(str(v)))}`" for k, v in overlays.items()] or ["- none recorded"]
    out += ["", "### Other facts", ""]
    out += [f"- {k}: {_md(redact_text(str(v)))}" for k, v in c.other_facts] or ["- none"]
    out += ["", "### All tests", "", "| Step | Test | Outcome | Duration |", "|---|---|---|---|"]
    out += [f"| {t.step} | `{t.name}` | {_ICON.get(t.outcome, t.outcome)} | {fmt_duration(t.duration)} |"
            for s in c.steps for t in s.tests]
    out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;
color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0} th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;
vertical-align:top} th{background:#f6f8fa}
.standin{background:#fff1f0;border:3px solid #d64545;color:#8a1010;padding:12px 16px;font-size:1.15em;
font-weight:700;border-radius:6px;margin:12px 0}
.status{font-size:1.25em;font-weight:700;padding:8px 12px;border-radius:6px;display:inline-block}
.PASSED{background:#e6f6ea;color:#135e2b} .FAILED{background:#fdecec;color:#8a1010}
.verdict{font-weight:700;margin:8px 0}
.headline{font-size:1.1em;margin:10px 0;padding:8px 12px;border-left:4px solid #57606a;background:#f6f8fa}
.unregistered{color:#9a6700;font-weight:600} table.claims td{font-size:.92em}
.passed{color:#135e2b} .failed,.error{color:#b42318;font-weight:600} .skipped,.notrun{color:#6e7781}
.xfailed{color:#9a6700} code{background:#f6f8fa;padding:1px 4px;border-radius:3px}
img{max-width:100%;border:1px solid #d0d7de;border-radius:4px} .muted{color:#6e7781}
"""


def _h(text: Any) -> str:
    return html.escape(str(text))


def _cls(outcome: str) -> str:
    return outcome.split(" ", 1)[0].replace("not", "notrun")


def render_html(c: Content) -> str:
    """summary.html: the same content, self-contained (plots embedded as data: URIs)."""
    head = c.status.split(" ", 1)[0]
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>vLLM stack e2e — run {_h(c.run.get('run_id', c.run_dir.name))}: {_h(head)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>vLLM stack e2e — run {_h(c.run.get('run_id', c.run_dir.name))}</h1>"]
    if c.stand_in:
        out.append(f"<div class='standin'>⚠️ {_h(c.stand_in_warning)}</div>")
    if c.headline is not None:
        out.append(f"<p class='headline'><b>{_h(c.headline.label)}:</b> {_h(c.headline.body)}</p>")
    out.append(f"<div class='status {head}'>{_h(c.status)}</div>")
    if c.verdict_line():
        out.append(f"<p class='verdict'>Release gate verdict: {_h(c.verdict_line())} ({VERDICT})</p>")
    out.append("<table>" + "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in c.overview) + "</table>")
    out += ["<h2>Tutorial steps</h2>"] + _html_steps(c.tutorial_steps)
    if c.beyond_steps:
        out += ["<h2>Beyond the tutorial</h2>",
                "<p>Scenarios the page does not cover (marker <code>beyond</code>); judged apart from the "
                "tutorial's steps.</p>"] + _html_steps(c.beyond_steps) + _html_timelines(c.beyond_timelines)
    out += _html_claims(c)
    if c.failures:
        out += ["<h2>Failures</h2>", "<ul>"]
        for t in c.failures:
            evidence = c.artifacts_of(t)
            link = f" — evidence: <a href='{_h(evidence)}/'>{_h(evidence)}/</a>" if evidence else ""
            out.append(f"<li><b>{_h(t.step)}</b> <code>{_h(t.name)}</code> {_h(t.outcome)}: "
                       f"{_h(t.message or '(no message)')}{link}</li>")
        out.append("</ul>")
    out.append("<h2>Known upstream defects (docs/upstream-defects.md)</h2>")
    if c.defects:
        out.append("<table><tr><th>#</th><th>Defect</th><th>Seen by</th></tr>")
        for d in c.defects:
            seen = [f"preflight: {_h(m)}" for m in d.preflight] + [
                f"xfailed <code>{_h(t.name)}</code> ({_h(t.step)})" for t in d.tests]
            out.append(f"<tr><td>{d.number}</td><td>{_h(d.title)}</td><td>{'<br>'.join(seen)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None found by preflight or observed by a test.</p>")
    if c.xfailed:
        out += ["<h3>Expected failures (xfail: upstream defects observed)</h3>", "<ul>"]
        out += [f"<li><b>{_h(t.step)}</b> <code>{_h(t.name)}</code>: {_h(t.message)}</li>" for t in c.xfailed]
        out.append("</ul>")
    out.append("<h2>Timelines</h2>")
    if not c.tutorial_timelines:
        out.append("<p>No timelines were recorded for the tutorial's steps in this run.</p>")
    out += _html_timelines(c.tutorial_timelines)
    others = [f for f in c.run.get("preflight") or [] if not isinstance(f.get("defect"), int)]
    if others:
        out += ["<h2>Other preflight findings</h2>", "<ul>"]
        out += [f"<li>{_h(f.get('severity', '?'))}: {_h(redact_text(str(f.get('message', ''))))} — "
                f"{_h(redact_text(str(f.get('fix', ''))))}</li>" for f in others]
        out.append("</ul>")
    out += ["<h2>Details</h2>", "<h3>Values applied</h3>", "<ul>"]
    overlays = c.run.get("overlays") or {}
    out += [f"<li><b>{_h(k)}</b>: <code>{_h(redact_text(str(v)))}</code></li>" for k, v in overlays.items()] or [
        "<li class='muted'>none recorded</li>"]
    out += ["</ul>", "<h3>Other facts</h3>", "<ul>"]
    out += [f"<li>{_h(k)}: {_h(redact_text(str(v)))}</li>" for k, v in c.other_facts] or ["<li class='muted'>none</li>"]
    out += ["</ul>", "<h3>All tests</h3>",
            "<table><tr><th>Step</th><th>Test</th><th>Outcome</th><th>Duration</th></tr>"]
    out += [f"<tr><td>{_h(t.step)}</td><td><code>{_h(t.name)}</code></td><td class='{_cls(t.outcome)}'>"
            f"{_h(t.outcome)}</td><td>{fmt_duration(t.duration)}</td></tr>" for s in c.steps for t in s.tests]
    out += ["</table>", "</body></html>", ""]
    return "\n".join(out)
