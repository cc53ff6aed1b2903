"""The report's first sentence: what a user of the page gets — which of the page's promises (its
steps) hold as published, which only with the fixes the report prints, which the run showed only
with the harness's fixes applied, and which failed or were not shown.

A step's promise
- holds as published when its tests passed (skips aside) on the page's values;
- holds only with a defect's fix when one of its tests xfailed under that registered upstream
  defect: as published, the claim did not hold (docs/upstream-defects.md);
- held only with the harness's fix N applied, not as published, when the run applied the harness's
  fix of defect N to that step (FIX_DEFECTS, or a scenario of step 7 that applies the fixes of the
  defects its claims are not about) — the run never tried it without; the same for a user's
  EXTRA_VALUES overlay that went into the step;
- was only found in place when it is an install (observability, KEDA) the run found on the cluster
  and left alone: it works, but the page's install of it was not run;
- did not hold when a test failed; was not shown when nothing of it ran, or every test skipped.

The pass/fail count line (`model.run_status`) stays below it; it says what pytest saw, this says
what that means for a reader of the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .claims import and_list
from .model import StepResult

# The page's promises, one per step (docs/tutorial.md), in its words as far as they go.
PROMISES: dict[str, str] = {
    "step 1": "observability up",
    "step 2": "vLLM installed",
    "step 3": "KEDA installed",
    "step 4": "the Helm upgrade with KEDA",
    "step 5": "ScaledObject and HPA ready",
    "step 6": "replicas grow under load",
    "step 7a": "scale to zero",
    "step 7b": "custom HPA behavior",
    "step 7c": "fallback",
    "step 8": "cleanup",
}

# Which page steps a harness fix overlay (fixes/fix-<scenario>[-asked].yaml) was applied to.
# Unasked, `step4` is the step-4 values with the fixes a scenario applies itself: 7c's contrast
# (and the scenarios beyond the page, which are not the page's promises). Asked (FIX_DEFECTS), it
# is the step-4 upgrade itself, which steps 4–6 observe; `keda-disabled-asked` is step 8's upgrade.
FIX_STEPS: dict[str, tuple[str, ...]] = {
    "scale-to-zero": ("step 7a",),
    "hpa-behavior": ("step 7b",),
    "fallback": ("step 7c",),
    "step4": ("step 7c",),
    "step4-asked": ("step 4", "step 5", "step 6", "step 7c"),
    "step2-asked": ("step 1",),  # applied at step 2's install; what it changes is what step 1 claims
    "keda-disabled": ("step 8",),
}

# Which page steps an EXTRA_VALUES overlay (run.json `extra_values`: [scope or null, path]) went
# into: without a scope every step-4 upgrade (steps 4–8: the scenarios' and step 8's keda-off
# included); `step4` the step-4 values alone (steps 4–6, and 7c's contrast); a scenario its own.
OVERLAY_STEPS: dict[str | None, tuple[str, ...]] = {
    None: ("step 4", "step 5", "step 6", "step 7a", "step 7b", "step 7c", "step 8"),
    "step4": ("step 4", "step 5", "step 6", "step 7c"),
    **{name: steps for name, steps in FIX_STEPS.items() if name not in ("step4", "step4-asked", "step2-asked")},
}

HOLDS, NEEDS_FIX, CHANGED, FOUND, FAILED, NOT_SHOWN = (
    "holds as published", "holds only with the fix", "held with values not as published",
    "found in place", "did not hold", "not shown")

# The steps whose promise is an install, and what they install: a run that found it on the cluster
# (run.json `reused`) showed it working, not the page's install of it.
INSTALLS: dict[str, str] = {"step 1": "observability", "step 3": "keda"}
# and step 8 removes only what the run installed (a run removes only what it created)
_UNINSTALLS = {"keda": "KEDA's uninstall", "observability": "observability's uninstall"}


def fixes_by_step(fixes: Mapping[str, Iterable[int]]) -> dict[str, tuple[int, ...]]:
    """The harness fixes (`model.harness_fixes`: overlay name → defects) by the page step they
    were applied to."""
    steps: dict[str, set[int]] = {}
    for name, numbers in dict(fixes).items():
        where = FIX_STEPS.get(name) or FIX_STEPS.get(name.removesuffix("-asked"), ())
        for step in where:
            steps.setdefault(step, set()).update(numbers)
    return {step: tuple(sorted(numbers)) for step, numbers in steps.items()}


def overlays_by_step(run: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The user's EXTRA_VALUES overlays (run.json `extra_values`) by the page step they went into."""
    steps: dict[str, list[str]] = {}
    for item in run.get("extra_values") or []:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            continue
        scope, path = item
        for step in OVERLAY_STEPS.get(scope, ()):
            if str(path) not in steps.setdefault(step, []):
                steps[step].append(str(path))
    return {step: tuple(paths) for step, paths in steps.items()}


@dataclass(frozen=True)
class Promise:
    """One step of the page and what this run showed of it."""

    step: str
    what: str
    state: str
    needed: tuple[int, ...] = ()  # defects whose xfails say the step holds only with their fix
    applied: tuple[int, ...] = ()  # defects whose harness fix the run applied to the step
    overlays: tuple[str, ...] = ()  # the user's EXTRA_VALUES overlays that went into the step
    note: str = ""  # a part of the step the run did not show (step 8: the uninstall of what it found)

    @property
    def label(self) -> str:
        return f"{self.what} ({self.step}{', ' + self.note if self.note else ''})"


def promises(steps: Sequence[StepResult], fixes: Mapping[str, Iterable[int]] | None = None,
             reused: Iterable[str] = (), overlays: Mapping[str, Sequence[str]] | None = None) -> list[Promise]:
    """The page's promises in its order, judged on the run's steps, the harness fixes applied to
    each (`fixes`: step → defect numbers, `fixes_by_step`), what the run found installed
    (`reused`: "keda", "observability") and the user's overlays (`overlays_by_step`)."""
    by_step = {s.step: s for s in steps}
    reused = set(reused)
    applied_to = {step: tuple(sorted(set(n))) for step, n in (fixes or {}).items()}
    out = []
    for step, what in PROMISES.items():
        result = by_step.get(step) or StepResult(step)
        applied = applied_to.get(step, ())
        extra = tuple((overlays or {}).get(step, ()))
        needed = tuple(sorted({d for t in result.tests if t.outcome == "xfailed"
                               for d in (t.defects or ((t.defect,) if t.defect is not None else ()))}))
        if result.outcome == "failed":
            state = FAILED
        elif result.outcome in ("not run", "skipped"):
            state = NOT_SHOWN
        elif needed or any(t.outcome == "xfailed" for t in result.tests):
            state = NEEDS_FIX
        elif applied or extra:
            state = CHANGED
        elif INSTALLS.get(step) in reused:
            state = FOUND
        else:
            state = HOLDS
        note = ""
        if step == "step 8" and reused & set(INSTALLS.values()):
            note = and_list(_UNINSTALLS[c] for c in sorted(reused & set(INSTALLS.values()))) + " not shown"
        out.append(Promise(step, what, state, needed, applied, extra, note))
    return out


@dataclass(frozen=True)
class Headline:
    """`label: body.` — the label bold in both renderings."""

    label: str
    body: str

    def __str__(self) -> str:
        return f"{self.label}: {self.body}"


def _verb(items: Sequence[Any], one: str, many: str) -> str:
    return one if len(items) == 1 else many


HARNESS = "the harness's"


def _fixes(numbers: Sequence[int], whose: str = "the printed") -> str:
    plural = len(numbers) != 1
    return f"{whose} fix{'es' if plural else ''} for defect{'s' if plural else ''} {and_list(numbers)}"


def _changes(applied: Sequence[int], overlays: Sequence[str]) -> str:
    """`the harness's fix for defect 9 and the EXTRA_VALUES overlay x.yaml applied`."""
    parts = [_fixes(applied, HARNESS)] if applied else []
    if overlays:
        parts.append(f"the EXTRA_VALUES overlay{'s' if len(overlays) != 1 else ''} {and_list(overlays)}")
    return f"{and_list(parts)} applied"


def _groups(items: Iterable[Promise], key: Any) -> list[tuple[Any, list[Promise]]]:
    """`items` grouped by `key(item)`, in the order each key first appears."""
    groups: dict[Any, list[Promise]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def context(run: Mapping[str, Any], *, stand_in: bool) -> str:
    """Which page, where, with which chart: `current edition, on the lab with the lab's stand-in chart`."""
    parts = []
    edition = run.get("edition")
    if isinstance(edition, Mapping) and edition.get("title"):
        parts.append(str(edition["title"]).split(":", 1)[0])
    backend = str(run.get("backend") or "?")
    where = {"lab": "on the lab", "current": "on a real cluster (current)"}.get(backend, f"on {backend}")
    chart = run.get("chart") if isinstance(run.get("chart"), Mapping) else {}
    if stand_in:
        where += " with the lab's stand-in chart"
    elif chart:
        where += f" with chart {chart.get('name', '?')} {chart.get('version', '?')}"
    parts.append(where)
    return ", ".join(parts)


def headline(run: Mapping[str, Any], judged: Sequence[Promise], *, stand_in: bool) -> Headline:
    """One sentence: which of the page's promises hold as published, which only with fixes."""
    label = f"What a user of the page gets ({context(run, stand_in=stand_in)})"
    if all(p.state == NOT_SHOWN for p in judged):
        return Headline(label, "not shown — this run ran none of the page's steps; the claims table says what it "
                               "did show.")
    clauses = []
    holds = [p for p in judged if p.state == HOLDS]
    if holds and len(holds) == len(judged):
        clauses.append("every step of the page holds as published — " + and_list(p.label for p in holds))
    elif holds:
        clauses.append(f"{and_list(p.label for p in holds)} {_verb(holds, 'holds', 'hold')} as published")
    for (needed, applied, extra), group in _groups(
            (p for p in judged if p.state == NEEDS_FIX),
            lambda p: (p.needed, tuple(n for n in p.applied if n not in p.needed), p.overlays)):
        text = f"{and_list(p.label for p in group)} {_verb(group, 'holds', 'hold')} only with "
        text += _fixes(needed) if needed else "the fixes of the upstream defects its xfails name"
        if applied or extra:
            text += f" (and with {_changes(applied, extra)})"
        clauses.append(text)
    for (applied, extra), group in _groups((p for p in judged if p.state == CHANGED),
                                           lambda p: (p.applied, p.overlays)):
        clauses.append(f"{and_list(p.label for p in group)} held only with {_changes(applied, extra)}, "
                       "not as published")
    found = [p for p in judged if p.state == FOUND]
    if found:
        clauses.append(f"{and_list(p.label for p in found)} {_verb(found, 'was', 'were')} only found in place (this "
                       f"run did not install {_verb(found, 'it', 'them')})")
    failed = [p for p in judged if p.state == FAILED]
    if failed:
        clauses.append(f"{and_list(p.label for p in failed)} did not hold (failed)")
    missing = [p for p in judged if p.state == NOT_SHOWN]
    if missing:
        clauses.append(f"{and_list(p.label for p in missing)} {_verb(missing, 'was', 'were')} not shown (not run, or "
                       "every test skipped)")
    return Headline(label, "; ".join(clauses) + ".")
