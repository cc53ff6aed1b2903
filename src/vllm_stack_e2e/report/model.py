"""The report's model: the run record (run.json) read into tests, steps, defects and a status."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defects
from ..errors import ConfigError
from ..redaction import redact_text

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
    "beyond: activation": "a queue at or below the threshold does not scale",
    "beyond: pause": "paused-replicas / paused hold the Deployment; unpausing scales",
    "beyond: broken neighbour": "another namespace's broken ScaledObject does not delay scaling",
    "beyond: keda disruption": "KEDA's operator, then its metrics API server, crash mid-scale",
    "beyond: fallback with zero": "fallback with scale to zero: source down at 2+, then at zero",
    "beyond: upgrade scaled out": "helm upgrades while the HPA holds the maximum keep its replicas",
    "beyond: scale in": "no streamed answer is cut when the HPA scales in under a trickle",
    "beyond: null not zero": "a queue whose series vanish is not read as 0 (ignoreNullValues, fallback)",
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
    defects: tuple[int, ...] = ()  # every upstream defect its markers found deployed (a test may carry several)

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
    headline: Any = None  # report.headline.Headline: what a user of the page gets
    claims: list[Any] = field(default_factory=list)  # report.claims.ClaimRow, one per test function that ran


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


# How an xfail reason names each defect (defects.Defect.reason; several are joined with " | ").
_REASON_DEFECT = re.compile(r"(?:^|\| )upstream defect (\d+):")


def defects_of(entry: Mapping[str, Any]) -> tuple[int, ...]:
    """The upstream defects a run.json test entry names: its `defects` list (runs since it was
    recorded), else its `defect` and those its xfail reason names (`upstream defect N: …`, one per
    marker whose defect was deployed)."""
    listed = entry.get("defects")
    if isinstance(listed, list):
        return tuple(sorted({n for n in listed if isinstance(n, int)}))
    found = {int(n) for n in _REASON_DEFECT.findall(str(entry.get("message") or ""))}
    if isinstance(entry.get("defect"), int):
        found.add(entry["defect"])
    return tuple(sorted(found))


def test_results(run: Mapping[str, Any]) -> list[TestResult]:
    """The run's tests, in the order run.json lists them."""
    results = []
    for entry in run.get("tests") or []:
        results.append(TestResult(nodeid=str(entry.get("nodeid", "?")), step=str(entry.get("step") or "other"),
                                  outcome=str(entry.get("outcome", "error")),
                                  duration=float(entry.get("duration") or 0.0),
                                  message=redact_text(str(entry.get("message") or "")),
                                  defect=entry["defect"] if isinstance(entry.get("defect"), int) else None,
                                  defects=defects_of(entry)))
    return results


BEYOND = "beyond: "  # the step name of a scenario beyond the page (tests/e2e/test_beyond_*.py)
BEYOND_TIMELINE = "beyond-"  # and the name of its timeline


def is_beyond(step: str) -> bool:
    return step.startswith(BEYOND)


def step_key(step: str) -> tuple[int, int, str]:
    """Sort key: tutorial steps by number and part (7a < 7b < 8), anything else by name, then the
    scenarios beyond the page."""
    found = re.fullmatch(r"step (\d+)([a-z]*)", step)
    if found:
        return (0, int(found.group(1)), found.group(2))
    return (2 if is_beyond(step) else 1, 0, step)


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
        numbers = sorted({n for t in xfailed for n in (t.defects or ((t.defect,) if t.defect is not None else ()))})
        named = (f" under known upstream defect{'s' if len(numbers) != 1 else ''} {', '.join(map(str, numbers))}"
                 if numbers else "")
        parts.append(f"{len(xfailed)} test{'s' if len(xfailed) != 1 else ''} xfailed{named}")
    if missing:
        parts.append("not run: " + ", ".join(missing))
    head = "FAILED" if failing or exit_status != 0 or not tests else "PASSED"
    return f"{head} — " + "; ".join(parts)


HARNESS_FIXES = "fixes"  # the run folder's harness fix overlays: fix-<scenario>[-asked].yaml (vllm_stack_e2e.fixes)
_FIX_HEADER = re.compile(r"^# Harness fix for \S*#defect-(\d+)", re.MULTILINE)


def harness_fixes(run_dir: Path) -> dict[str, tuple[int, ...]]:
    """The harness's fix overlays the run wrote (`fixes/fix-<name>.yaml`, every one of them
    applied by the helm call that printed it): name → the defects each fixes, read from the
    overlay's header. `<name>` is the scenario (`step4` for the page's step-4 values), with
    `-asked` when FIX_DEFECTS asked for it."""
    found = {}
    for path in sorted((Path(run_dir) / HARNESS_FIXES).glob("fix-*.yaml")):
        try:
            numbers = tuple(sorted({int(n) for n in _FIX_HEADER.findall(path.read_text())}))
        except OSError:
            continue
        if numbers:
            found[path.stem.removeprefix("fix-")] = numbers
    return found


# step 8's tests that a run skips when it found the component installed (runs before run.json's `reused`)
_REUSE_SKIPS = {"test_uninstalling_keda_removes_its_workloads_and_apiservice": "keda",
                "test_uninstalling_observability_removes_it": "observability"}


def reused(run: Mapping[str, Any], tests: Iterable[TestResult]) -> list[str]:
    """What the run found installed and left in place ("keda", "observability"): run.json's `reused`,
    else read off step 8's skips ("… was installed before this run")."""
    if isinstance(run.get("reused"), list):
        return sorted(str(c) for c in run["reused"])
    found = {_REUSE_SKIPS[t.name] for t in tests
             if t.outcome == "skipped" and t.name in _REUSE_SKIPS and "installed before this run" in t.message}
    return sorted(found)


def shorten(text: str, limit: int = 30) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
