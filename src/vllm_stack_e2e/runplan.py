"""The values plans of one run, each built once: for a step (+ scenario, + the caller's overlays),
the files helm is given, the files the claims are checked against, and the harness fixes
(vllm_stack_e2e.fixes) the run asked for, derived from what those files render.

A plan's files, in order: the tutorial step's file, the profile's, the backend's and the
scenario's overlays (values.merge_order), the profile's variant of the scenario
(values.with_variant), the caller's overlays (e.g. the fix a scenario needs), then — step 4 only —
the user's EXTRA_VALUES and the fix overlay of the defects FIX_DEFECTS asked for. The claims'
files leave EXTRA_VALUES out (a break overlay must fail its claim), so their fix is derived
without them too; it is the same file when there are none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import defects, fixes, values
from .helm import Helm

Fix = tuple[Path | None, dict[int, str]]
#: The page's helm calls a harness fix may go into: step 2's install and every step-4 upgrade.
FIXED_STEPS = (2, 4)  # the overlay (None: none of the defects is there), what was seen


@dataclass(frozen=True)
class Key:
    """What makes one plan: a run builds each once."""

    step: int
    edition: str
    scenario: str | None
    profile: str
    backend: str | None  # the backend's overlay, if any
    fixes: tuple[int, ...]  # the defects whose fix the plan carries
    asked: bool  # those of FIX_DEFECTS (fix-<name>-asked.yaml, after EXTRA_VALUES), or a step's own
    extra: tuple[str, ...]  # the caller's overlays, after the variant


@dataclass(frozen=True)
class Fixer:
    """How a run writes a fix overlay: the chart helm renders, the run it is for, and where."""

    chart: str
    run: defects.FixContext
    folder: Path
    helm: Helm | None = None
    version: str | None = None  # of a repository chart

    def write(self, files: list[Path], numbers: tuple[int, ...], name: str, folder: Path | None = None) -> Fix:
        return fixes.overlay(values.plan_values(files), numbers, chart=self.chart, run=self.run,
                             folder=folder or self.folder, name=name, helm=self.helm, version=self.version)


@dataclass
class Plan:
    key: Key
    user: tuple[str, ...]  # the user's EXTRA_VALUES for this plan (step 4 only)
    fixer: Fixer
    _fix: dict[bool, Fix] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The fix overlay's name: the scenario (`step4`, `step2` for the page's values), `-asked` for FIX_DEFECTS."""
        return (self.key.scenario or f"step{self.key.step}") + ("-asked" if self.key.asked else "")

    def sources(self, user: bool = True) -> list[Path]:
        """The plan's files before its fix (with the user's EXTRA_VALUES, or without: the claims')."""
        k = self.key
        overlays = values.with_variant(k.profile, k.scenario, k.extra, k.edition)
        return values.merge_order(k.step, k.profile, k.backend, k.scenario,
                                  (*overlays, *(self.user if user else ())), edition=k.edition)

    def fix(self, user: bool = True) -> Fix:
        """The fix overlay of the key's defects that the sources render (written once). Without
        EXTRA_VALUES it is the same file unless there are some; then it goes to fixes/claims/ (not
        handed to helm, so not one of the run's fix overlays)."""
        user = user and bool(self.user)
        if user not in self._fix:
            if not self.key.fixes:
                self._fix[user] = (None, {})
            else:
                folder = None if user or not self.user else self.fixer.folder / "claims"
                self._fix[user] = self.fixer.write(self.sources(user), self.key.fixes, self.name, folder)
        return self._fix[user]

    def files(self, user: bool = True) -> list[Path]:
        """Every values file, the fix last: what helm is given (`user`), or what the claims read."""
        path = self.fix(user)[0]
        return [*self.sources(user), *((path,) if path is not None else ())]

    def values(self) -> values.ValuesPlan:
        """What helm is given."""
        return values.plan_values(self.files())


@dataclass
class Plans:
    """The run's plans, built once per Key."""

    edition: str
    profile: str
    backend: str | None
    asked: tuple[int, ...]  # FIX_DEFECTS
    extra_values_for: Callable[[str | None], tuple[str, ...]]  # the user's EXTRA_VALUES of a step-4 scenario
    fixer: Fixer
    cache: dict[Key, Plan] = field(default_factory=dict)

    def get(self, step: int, scenario: str | None = None, extra: tuple[str, ...] = (),
            numbers: tuple[int, ...] | None = None) -> Plan:
        """The plan of `step` (+ scenario, + `extra`) with the fix of `numbers` (None: FIX_DEFECTS',
        at step 4 after EXTRA_VALUES). FIX_DEFECTS applies to step 2's install too, for a defect its
        values render (12: the ServiceMonitors step 1's claims read)."""
        asked = numbers is None
        numbers = (self.asked if asked else tuple(numbers)) if step in FIXED_STEPS else ()
        key = Key(step, self.edition, scenario, self.profile, self.backend, tuple(numbers), asked, tuple(extra))
        if key not in self.cache:
            user = self.extra_values_for(scenario) if asked and step == 4 else ()
            self.cache[key] = Plan(key, tuple(user), self.fixer)
        return self.cache[key]
