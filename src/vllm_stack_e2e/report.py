"""The run report: `reports/<run-id>/summary.md` and its self-contained HTML twin
`summary.html`, read by a release manager in a minute — which backend and chart (stand-in or
real), the versions, each tutorial step's result, the upstream defects seen, and one PNG plot
per timeline (replicas, queue vs threshold, load phases, KEDA conditions, events).

Built from the run folder alone (`run.json`, `timelines/*.json`, the JUnit XML), so it can be
rebuilt any time: `python -m vllm_stack_e2e.report reports/<run-id>` or `--latest`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import math
import os
import re
import shutil
import statistics
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import defects
from .config import REPO_ROOT
from .errors import ConfigError
from .helm import is_stand_in
from .redaction import redact_text

# The tutorial's steps (docs/tutorial.md), in order; step 7 comes in three parts.
TUTORIAL_STEPS: tuple[str, ...] = ("step 1", "step 2", "step 3", "step 4", "step 5", "step 6",
                                   "step 7a", "step 7b", "step 7c", "step 8")
STEP_TITLES: dict[str, str] = {
    "step 1": "observability stack, Prometheus reachable",
    "step 2": "vLLM stack installed, engine Ready",
    "step 3": "KEDA installed",
    "step 4": "helm upgrade with the keda block",
    "step 5": "ScaledObject and HPA as the tutorial shows",
    "step 6": "replicas grow under load",
    "step 7a": "scale to zero and back",
    "step 7b": "HPA scale-down behavior",
    "step 7c": "fallback replicas when metrics fail",
    "step 8": "cleanup leaves nothing behind",
    "lab": "lab smoke test",
}
FAILING = ("failed", "error")
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
MARKDOWN = "summary.md"
HTML = "summary.html"
PLOTS = "plots"
JUNIT_COPY = "junit.xml"
VERDICT = "verdict.json"


# ---- the model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestResult:
    """One test of the run, as run.json records it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    step: str
    outcome: str
    duration: float
    message: str = ""
    defect: int | None = None  # the upstream defect its marker decided on (run.json), if any

    @property
    def name(self) -> str:
        return self.nodeid.rsplit("::", 1)[-1]


@dataclass
class StepResult:
    """All tests of one tutorial step, summed up."""

    step: str
    tests: list[TestResult] = field(default_factory=list)

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.step, "")

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for test in self.tests:
            counts[test.outcome] = counts.get(test.outcome, 0) + 1
        return counts

    @property
    def duration(self) -> float:
        return sum(t.duration for t in self.tests)

    @property
    def outcome(self) -> str:
        """passed | passed (known defects) | failed | skipped (nothing ran) | not run."""
        counts = self.counts
        if not self.tests:
            return "not run"
        if counts["failed"] or counts["error"]:
            return "failed"
        if not (counts["passed"] or counts["xfailed"] or counts["xpassed"]):
            return "skipped"
        return "passed (known defects)" if counts["xfailed"] else "passed"

    @property
    def ok(self) -> bool:
        return self.outcome.startswith("passed")


@dataclass(frozen=True)
class DefectSighting:
    """One known upstream defect and how this run saw it."""

    number: int
    title: str
    preflight: tuple[str, ...] = ()  # preflight messages naming it
    tests: tuple[TestResult, ...] = ()  # xfailed tests naming it


@dataclass
class Report:
    """What `write_report` produced."""

    run_dir: Path
    markdown: Path
    html: Path
    plots: list[Path]
    junit: Path | None  # the copy beside the run, when there was one to copy
    junit_source: str  # the path run.json names
    status: str
    stand_in: bool
    steps: list[StepResult]
    defects: list[DefectSighting]


# ---- reading the run folder --------------------------------------------------------------------
def load_run(run_dir: Path) -> dict[str, Any]:
    """run.json of `run_dir`; a one-line ConfigError when it is missing or unreadable."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no run.json: point at a finished run's folder, reports/<run-id>/ "
                          "(or use --latest)")
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc}): rerun the suite to rewrite it") from None
    if not isinstance(run, dict):
        raise ConfigError(f"{path} holds {type(run).__name__}, not an object: rerun the suite to rewrite it")
    return run


def test_results(run: Mapping[str, Any]) -> list[TestResult]:
    """The run's tests, in the order run.json lists them."""
    results = []
    for entry in run.get("tests") or []:
        results.append(TestResult(nodeid=str(entry.get("nodeid", "?")), step=str(entry.get("step") or "other"),
                                  outcome=str(entry.get("outcome", "error")),
                                  duration=float(entry.get("duration") or 0.0),
                                  message=redact_text(str(entry.get("message") or "")),
                                  defect=entry["defect"] if isinstance(entry.get("defect"), int) else None))
    return results


def step_key(step: str) -> tuple[int, int, str]:
    """Sort key: tutorial steps by number and part (7a < 7b < 8), then anything else by name."""
    found = re.fullmatch(r"step (\d+)([a-z]*)", step)
    if found:
        return (0, int(found.group(1)), found.group(2))
    return (1, 0, step)


def summarize_steps(tests: Iterable[TestResult], *, include: Sequence[str] = TUTORIAL_STEPS) -> list[StepResult]:
    """One StepResult per step seen in `tests`, plus the `include` steps (as 'not run' when absent)."""
    steps: dict[str, StepResult] = {name: StepResult(name) for name in include}
    for test in tests:
        steps.setdefault(test.step, StepResult(test.step)).tests.append(test)
    return sorted(steps.values(), key=lambda s: step_key(s.step))


def defect_sightings(run: Mapping[str, Any], tests: Iterable[TestResult]) -> list[DefectSighting]:
    """Known upstream defects named by preflight findings or by xfailed tests, by number."""
    preflight: dict[int, list[str]] = {}
    for finding in run.get("preflight") or []:
        number = finding.get("defect")
        if isinstance(number, int):
            preflight.setdefault(number, []).append(redact_text(str(finding.get("message", ""))))
    observed: dict[int, list[TestResult]] = {}
    for test in tests:
        if test.outcome == "xfailed" and test.defect is not None:
            observed.setdefault(test.defect, []).append(test)
    return [DefectSighting(n, defects.title(n), tuple(preflight.get(n, ())),
                           tuple(observed.get(n, ())))
            for n in sorted(set(preflight) | set(observed))]


def chart_of(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's chart record ({} when the run never resolved one)."""
    chart = run.get("chart")
    return dict(chart) if isinstance(chart, Mapping) else {}


def run_status(run: Mapping[str, Any], steps: Sequence[StepResult]) -> str:
    """The run's headline: PASSED / FAILED with the counts that explain it."""
    tests = [t for s in steps for t in s.tests]
    failing = [t for t in tests if t.outcome in FAILING]
    xfailed = [t for t in tests if t.outcome == "xfailed"]
    missing = [s.step for s in steps if s.step in TUTORIAL_STEPS and s.outcome in ("not run", "skipped")]
    exit_status = int(run.get("exit_status", 0) or 0)
    parts = []
    if failing:
        where = ", ".join(dict.fromkeys(t.step for t in failing))
        parts.append(f"{len(failing)} of {len(tests)} tests failed ({where})")
    elif exit_status != 0:
        parts.append(f"pytest exited {exit_status}")
    else:
        parts.append(f"{len(tests)} tests, none failed")
    if xfailed:
        parts.append(f"{len(xfailed)} known upstream defect{'s' if len(xfailed) != 1 else ''} observed (xfail)")
    if missing:
        parts.append("not run: " + ", ".join(missing))
    head = "FAILED" if failing or exit_status != 0 or not tests else "PASSED"
    return f"{head} — " + "; ".join(parts)


# ---- JUnit -------------------------------------------------------------------------------------
def _resolve(path_text: str, run_dir: Path) -> Path | None:
    if not path_text:
        return None
    path = Path(path_text)
    candidates = [path] if path.is_absolute() else [run_dir / path, REPO_ROOT / path, Path.cwd() / path]
    return next((c for c in candidates if c.is_file()), None)


def _junit_started(path: Path) -> float | None:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    stamp = suite.get("timestamp") if suite is not None else None
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def copy_junit(run: Mapping[str, Any], run_dir: Path) -> tuple[Path | None, str]:
    """Copy the run's JUnit XML beside it as junit.xml (the Makefile's path is reused by every
    run, so a file whose timestamp is not this run's is left alone). Returns (copy, note)."""
    source_text = str(run.get("junit") or "")
    target = run_dir / JUNIT_COPY
    source = _resolve(source_text, run_dir)
    if source is not None and source.resolve() == target.resolve():
        return target, "beside the run"
    if source is None:
        if target.is_file():
            return target, f"copied earlier from {source_text}" if source_text else "beside the run"
        return None, f"{source_text} (not found)" if source_text else "none (run without --junitxml)"
    started = _junit_started(source)
    run_started = float(run.get("started") or 0.0)
    if started is not None and run_started and abs(started - run_started) > 120:
        if target.is_file():
            return target, f"copied earlier from {source_text}"
        return None, f"{source_text} now holds another run's results (not copied)"
    shutil.copyfile(source, target)
    return target, f"copied from {source_text}"


def _junit_key(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return path.removesuffix(".py").replace("/", ".") + "." + rest.replace("::", ".")


def junit_failures(path: Path) -> dict[str, str]:
    """First line of each failure/error message in a JUnit XML, keyed like `_junit_key(nodeid)`."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return {}
    found: dict[str, str] = {}
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            element = case.find(tag)
            if element is None:
                continue
            text = element.get("message") or (element.text or "").strip()
            line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            if line:
                found[f"{case.get('classname')}.{case.get('name')}"] = redact_text(_short(line, 400))
            break
    return found


def with_junit_messages(tests: Sequence[TestResult], junit: Path | None) -> list[TestResult]:
    """Failing tests' messages completed from the JUnit XML (run.json may hold only the file:line)."""
    messages = junit_failures(junit) if junit is not None else {}
    out = []
    for test in tests:
        detail = messages.get(_junit_key(test.nodeid)) if test.outcome in FAILING else None
        if detail and detail not in test.message:
            test = replace(test, message=f"{detail} ({test.message})" if test.message else detail)
        out.append(test)
    return out


# ---- timelines and plots -----------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineSummary:
    """The numbers a reader wants next to a timeline's plot."""

    name: str
    samples: int
    seconds: float
    peak_spec: int | None
    peak_ready: int | None
    peak_queue: float | None
    threshold: float | None
    scale_up_after_load: float | None  # seconds from the first load span to spec.replicas growing
    events: tuple[tuple[float, str], ...]


def load_timelines(run: Mapping[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The run's timelines: those run.json lists, then any other timelines/*.json."""
    paths = [run_dir / p for p in run.get("timelines") or []]
    paths += [p for p in sorted((run_dir / "timelines").glob("*.json")) if p not in paths]
    found = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            data.setdefault("name", path.stem)
            found.append(data)
    return found


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _origin(timeline: Mapping[str, Any]) -> float:
    samples = timeline.get("samples") or []
    if samples:
        return float(samples[0]["t"])
    times = [float(s["start"]) for s in timeline.get("spans") or []]
    times += [float(e[0]) for e in timeline.get("events") or []]
    return min(times) if times else 0.0


def summarize_timeline(timeline: Mapping[str, Any]) -> TimelineSummary:
    """Peaks, the scale-up reaction to load, and the events, in seconds from the first sample."""
    samples = timeline.get("samples") or []
    t0 = _origin(timeline)
    spec = [s["spec_replicas"] for s in samples if isinstance(s.get("spec_replicas"), int)]
    ready = [s["ready_replicas"] for s in samples if isinstance(s.get("ready_replicas"), int)]
    queue = [float(s["queue"]) for s in samples if isinstance(s.get("queue"), (int, float))]
    load = [float(s["start"]) for s in timeline.get("spans") or [] if str(s.get("name", "")).startswith("load")]
    reaction = None
    if load and spec:
        start = min(load)
        before = [s["spec_replicas"] for s in samples if s["t"] <= start and isinstance(s.get("spec_replicas"), int)]
        base = before[-1] if before else spec[0]
        grown = next((s["t"] for s in samples if s["t"] >= start and isinstance(s.get("spec_replicas"), int)
                      and s["spec_replicas"] > base), None)
        reaction = grown - start if grown is not None else None
    return TimelineSummary(
        name=str(timeline.get("name", "timeline")), samples=len(samples),
        seconds=(float(samples[-1]["t"]) - t0) if samples else 0.0,
        peak_spec=max(spec) if spec else None, peak_ready=max(ready) if ready else None,
        peak_queue=max(queue) if queue else None,
        threshold=float(timeline["threshold"]) if isinstance(timeline.get("threshold"), (int, float)) else None,
        scale_up_after_load=reaction,
        events=tuple((float(t) - t0, redact_text(str(text))) for t, text in timeline.get("events") or []))


def condition_intervals(times: Sequence[float], states: Sequence[Any], wanted: str,
                        end: float) -> list[tuple[float, float]]:
    """(start, width) runs where `states` equals `wanted`; sample i holds until sample i+1, the
    last one until `end`."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for i, state in enumerate(states):
        if state == wanted and start is None:
            start = times[i]
        elif state != wanted and start is not None:
            runs.append((start, times[i] - start))
            start = None
    if start is not None:
        runs.append((start, end - start))
    return runs


_SPAN_COLOURS = {"ramp": "#cfe2f3", "hold": "#9fc5e8", "stop": "#6d7f91"}
_STRIP = (("KEDA Active", "so_active", "True", "#38a169"), ("Fallback", "so_fallback", "True", "#dd8a1c"),
          ("Ready=False", "so_ready", "False", "#d64545"))


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_timeline(timeline: Mapping[str, Any], out: Path) -> Path:
    """Draw one timeline as a PNG at `out`: replicas (spec, ready, HPA desired) and the queue
    against the threshold over seconds from the first sample; load phases shaded; KEDA's
    Active / Fallback / Ready=False intervals in a strip below; events as labelled lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    samples = list(timeline.get("samples") or [])
    t0 = _origin(timeline)
    times = [float(s["t"]) - t0 for s in samples]
    step = statistics.median(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else 1.0
    end = (times[-1] + step) if times else 1.0
    spans = [(str(s.get("name", "")), float(s["start"]) - t0,
              (float(s["end"]) if s.get("end") is not None else t0 + end) - t0)
             for s in timeline.get("spans") or []]
    summary = summarize_timeline(timeline)
    lo = min([0.0, *(s[1] for s in spans), *(e[0] for e in summary.events)])
    hi = max([end, *(s[2] for s in spans), *(e[0] for e in summary.events)])

    fig = Figure(figsize=(11, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.2, 1])
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    name = str(timeline.get("name", "timeline"))
    fig.suptitle(f"{name}: replicas and queue — {timeline.get('deployment', '?')}", fontsize=13, fontweight="bold")
    handles: list[Any] = []

    # Load phases: shaded bands (a line when too short to see as a band).
    for label, start, stop in spans:
        phase = label.split(":", 1)[-1]
        colour = _SPAN_COLOURS.get(phase, "#e0e0e0")
        if stop - start < (hi - lo) * 0.006:
            ax.axvline(start, color=colour, lw=2.2)
        else:
            ax.axvspan(start, stop, color=colour, alpha=0.55, lw=0)
        if label not in [h.get_label() for h in handles]:
            handles.append(Patch(color=colour, alpha=0.7, label=label))

    if not samples:
        ax.text(0.5, 0.5, "no samples recorded", transform=ax.transAxes, ha="center", va="center", fontsize=14)
    spec = [_num(s.get("spec_replicas")) for s in samples]
    ready = [_num(s.get("ready_replicas")) for s in samples]
    desired = [_num(s.get("hpa_desired")) for s in samples]
    queue = [_num(s.get("queue")) for s in samples]
    handles.append(ax.step(times, spec, where="post", color="tab:blue", lw=2.2, label="replicas desired (spec)")[0])
    handles.append(ax.step(times, ready, where="post", color="tab:green", lw=2.2, ls="--", label="replicas ready")[0])
    # Drawn wide and faint underneath, so it stays visible where it equals spec.replicas.
    handles.append(ax.step(times, desired, where="post", color="tab:purple", lw=5, alpha=0.3, zorder=1.5,
                           label="HPA desiredReplicas")[0])
    top = max([v for v in spec + ready + desired if not math.isnan(v)] or [1.0])
    ax.set_ylim(0, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("replicas")
    ax.grid(True, axis="y", alpha=0.3)

    qax = ax.twinx()
    handles.append(qax.plot(times, queue, color="tab:orange", lw=1.6, label="queue (waiting requests)")[0])
    threshold = summary.threshold
    if threshold is not None:
        handles.append(qax.axhline(threshold, color="darkred", ls="--", lw=1.3, label=f"queue threshold {threshold:g}"))
        qax.text(0.995, threshold, f"threshold {threshold:g} ", transform=qax.get_yaxis_transform(), ha="right",
                 va="bottom", fontsize=8, color="darkred")
    qtop = max([v for v in queue if not math.isnan(v)] + [threshold or 0.0, 1.0])
    qax.set_ylim(0, qtop * 1.18)
    qax.set_ylabel("queue length", color="tab:orange")
    qax.tick_params(axis="y", colors="tab:orange")

    # Events: vertical markers, labels inside the top of the plot (consecutive repeats unlabelled;
    # a label close to the previous one goes on the other side of its line).
    previous, last_at, side, labelled = None, -math.inf, "right", 0
    for when, text in summary.events:
        for axis in (ax, strip):
            axis.axvline(when, color="#333333", lw=1.0, ls=(0, (2, 2)), alpha=0.8)
        if text != previous and labelled < 12:
            side = ("left" if side == "right" else "right") if when - last_at < (hi - lo) * 0.025 else "right"
            ax.text(when, 0.97, " " + _short(text) + " ", transform=ax.get_xaxis_transform(), rotation=90,
                    ha=side, va="top", fontsize=8, color="#222222",
                    bbox={"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 1})
            labelled, last_at = labelled + 1, when
        previous = text
    if summary.events:
        handles.append(Line2D([], [], color="#333333", lw=1.0, ls=(0, (2, 2)), label="event"))

    # KEDA's own account: one row per condition, bands where it holds.
    for row, (label, key, wanted, colour) in enumerate(reversed(_STRIP)):
        states = [s.get(key) for s in samples]
        runs = condition_intervals(times, states, wanted, end)
        unknown = condition_intervals(times, ["?" if st in (None, "Unknown") else "" for st in states], "?", end)
        if unknown:
            strip.broken_barh(unknown, (row + 0.2, 0.6), facecolors="#e6e6e6", edgecolor="#bbbbbb", hatch="///", lw=0)
        if runs:
            strip.broken_barh(runs, (row + 0.2, 0.6), facecolors=colour)
    strip.set_yticks([r + 0.5 for r in range(len(_STRIP))], [s[0] for s in reversed(_STRIP)], fontsize=9)
    strip.set_ylim(0, len(_STRIP))
    pad = (hi - lo) * 0.02
    strip.set_xlim(lo - pad, hi + pad)
    strip.set_xlabel("seconds since the first sample")
    strip.grid(True, axis="x", alpha=0.3)
    strip.set_title("ScaledObject conditions (grey hatch: Unknown / absent)", fontsize=9, loc="left")
    ax.tick_params(labelbottom=False)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8.5, frameon=False)

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


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


_ICON = {"passed": "✅ passed", "passed (known defects)": "✅ passed (known defects)", "failed": "❌ failed",
         "skipped": "⚪ skipped", "not run": "⚪ not run", "error": "❌ error", "xfailed": "🟡 xfailed",
         "xpassed": "🟣 xpassed"}


@dataclass
class _Content:
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
                ("Started", _utc(started)), ("Duration", fmt_duration(duration)),
                *([("Waiting on the cluster", self.waiting_line(duration))] if run.get("waiting") else []),
                ("pytest exit status", str(run.get("exit_status", "?"))),
                ("JUnit XML", f"{JUNIT_COPY} ({self.junit_note})" if self.junit else self.junit_note)]
        return rows

    def waiting_line(self, duration: float | None) -> str:
        """Time in named waits (controllers, KEDA, HPA, Prometheus) against the run's duration."""
        waiting = self.run.get("waiting") or {}
        seconds, count = float(waiting.get("seconds") or 0.0), int(waiting.get("waits") or 0)
        share = f" ({seconds / duration:.0%} of the run; the rest is helm, the harness and teardown)" \
            if duration else ""
        return f"{fmt_duration(seconds)} in {count} waits{share}"

    @property
    def other_facts(self) -> list[tuple[str, str]]:
        shown = {"backend", "kubernetes", "keda", "helm", "prometheus", "chart"}
        return [(k, v) for k, v in self.facts.items() if k not in shown]

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
    if summary.scale_up_after_load is not None:
        parts.append(f"replicas grew {summary.scale_up_after_load:.1f} s after load started")
    return "; ".join(parts)


def render_markdown(c: _Content) -> str:
    """summary.md."""
    out = [f"# vLLM stack e2e — run {c.run.get('run_id', c.run_dir.name)}", ""]
    if c.stand_in:
        out += [f"> ⚠️ **{c.stand_in_warning}**", ""]
    out += [f"**Result: {c.status}**", ""]
    if c.verdict_line():
        out += [f"**Release gate verdict: {c.verdict_line()}** ({VERDICT})", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in c.overview] + [""]
    out += ["## Tutorial steps", "", "| Step | Checks | Result | Tests (pass/fail/xfail/skip) | Duration |",
            "|---|---|---|---|---|"]
    for s in c.steps:
        tally = _tally(s, "/")
        out.append(f"| {s.step} | {_md(s.title)} | {_ICON.get(s.outcome, s.outcome)} | {tally} | "
                   f"{fmt_duration(s.duration) if s.tests else '—'} |")
    out.append("")
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
    if not c.timelines:
        out += ["No timelines were recorded in this run.", ""]
    for summary, png in c.timelines:
        rel = png.relative_to(c.run_dir).as_posix()
        out += [f"### {summary.name}", "", f"![{summary.name}]({rel})", "", _timeline_line(summary), ""]
        if summary.events:
            out += [f"- at {t:+.1f} s: {_md(text)}" for t, text in summary.events] + [""]
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
.passed{color:#135e2b} .failed,.error{color:#b42318;font-weight:600} .skipped,.notrun{color:#6e7781}
.xfailed{color:#9a6700} code{background:#f6f8fa;padding:1px 4px;border-radius:3px}
img{max-width:100%;border:1px solid #d0d7de;border-radius:4px} .muted{color:#6e7781}
"""


def _h(text: Any) -> str:
    return html.escape(str(text))


def _cls(outcome: str) -> str:
    return outcome.split(" ", 1)[0].replace("not", "notrun")


def render_html(c: _Content) -> str:
    """summary.html: the same content, self-contained (plots embedded as data: URIs)."""
    head = c.status.split(" ", 1)[0]
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>vLLM stack e2e — run {_h(c.run.get('run_id', c.run_dir.name))}: {_h(head)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>vLLM stack e2e — run {_h(c.run.get('run_id', c.run_dir.name))}</h1>"]
    if c.stand_in:
        out.append(f"<div class='standin'>⚠️ {_h(c.stand_in_warning)}</div>")
    out.append(f"<div class='status {head}'>{_h(c.status)}</div>")
    if c.verdict_line():
        out.append(f"<p class='verdict'>Release gate verdict: {_h(c.verdict_line())} ({VERDICT})</p>")
    out.append("<table>" + "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in c.overview) + "</table>")
    out += ["<h2>Tutorial steps</h2>", "<table><tr><th>Step</th><th>Checks</th><th>Result</th>"
            "<th>pass / fail / xfail / skip</th><th>Duration</th></tr>"]
    for s in c.steps:
        tally = _tally(s, " / ")
        out.append(f"<tr><td>{_h(s.step)}</td><td>{_h(s.title)}</td><td class='{_cls(s.outcome)}'>"
                   f"{_h(_ICON.get(s.outcome, s.outcome))}</td><td>{tally}</td>"
                   f"<td>{fmt_duration(s.duration) if s.tests else '—'}</td></tr>")
    out.append("</table>")
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
    if not c.timelines:
        out.append("<p>No timelines were recorded in this run.</p>")
    for summary, png in c.timelines:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        out += [f"<h3>{_h(summary.name)}</h3>",
                f"<img alt='{_h(summary.name)} timeline' src='data:image/png;base64,{data}'>",
                f"<p>{_h(_timeline_line(summary))}</p>"]
        if summary.events:
            out.append("<ul>" + "".join(f"<li>at {t:+.1f} s: {_h(text)}</li>" for t, text in summary.events) + "</ul>")
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
    content = _Content(run=run, run_dir=run_dir, status=run_status(run, steps), chart=chart,
                       stand_in=is_stand_in(chart), facts=facts, steps=steps,
                       defects=defect_sightings(run, tests), timelines=timelines, junit=junit,
                       junit_note=junit_note, verdict=verdict)
    markdown, page = run_dir / MARKDOWN, run_dir / HTML
    markdown.write_text(render_markdown(content))
    page.write_text(render_html(content))
    return Report(run_dir=run_dir, markdown=markdown, html=page, plots=[p for _, p in timelines], junit=junit,
                  junit_source=str(run.get("junit") or ""), status=content.status, stand_in=content.stand_in,
                  steps=steps, defects=content.defects)


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
    print(f"{report.status}\nreport: {report.html}\n        {report.markdown}")
    for png in report.plots:
        print(f"plot:   {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
