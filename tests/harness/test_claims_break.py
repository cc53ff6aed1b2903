"""Each claim can fail, and fails alone: one run of the tutorial's steps 6 and 7 with every break
overlay (values/break-*.yaml), each scoped to the scenario whose claim it breaks
(`EXTRA_VALUES=<scenario>:<overlay>`, as a user would try one), must turn exactly those claims
FAILED — not ERROR — and no other claim with them.

One stack serves every case: the overlays are scoped to different scenarios (step 6's and 7c's
contrast use the step-4 values, 7a scale-to-zero, 7b hpa-behavior), so each scenario's reset applies
only its own. The run follows the first edition (the overlays name its Prometheus) and selects the
run's namespace in every query (FIX_DEFECTS=9), so other stacks on the lab are never read."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inner import InnerRun, reports_for

pytestmark = pytest.mark.e2e

CASES = {
    # break overlay: (the scenario it is scoped to, the step's module, the one claim it must fail)
    "break-scale-up.yaml": ("step4", "tests/e2e/test_step6_scale_up.py", "test_replicas_grow_under_load"),
    "break-hpa-behavior.yaml": ("hpa-behavior", "tests/e2e/test_step7b_hpa_behavior.py",
                                "test_hpa_carries_the_behavior"),
    "break-scale-to-zero.yaml": ("scale-to-zero", "tests/e2e/test_step7a_scale_to_zero.py",
                                 "test_idle_stack_scales_to_zero"),
    "break-fallback-contrast.yaml": ("step4", "tests/e2e/test_step7c_fallback.py",
                                     "test_without_fallback_the_scaledobject_reports_the_trigger_error"),
}
# Steps 1–4 once (about a minute on the lab), then 6, 7a, 7b and 7c, each failing claim at its full budget.
RUN_BUDGET = 1200


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    reports: Path = reports_for("breaks", tmp_path_factory)
    modules = sorted({module for _, module, _ in CASES.values()})
    overlays = ",".join(f"{scope}:values/{overlay}" for overlay, (scope, _, _) in CASES.items())
    run = InnerRun(modules[0], reports, args=tuple(modules[1:]),
                   env={"EXTRA_VALUES": overlays, "EDITION": "observability-script", "FIX_DEFECTS": "9"})
    try:
        run.wait(RUN_BUDGET, "for the steps' run with every break overlay")
    finally:
        run.kill()
    return run


@pytest.mark.parametrize("overlay", list(CASES))
def test_a_break_overlay_fails_its_claim(overlay: str, broken: InnerRun) -> None:
    _, _, claim = CASES[overlay]
    outcome = broken.outcomes().get(claim)
    assert outcome == "failed", f"{claim} with {overlay}: {outcome}; all: {broken.outcomes()}"


def test_no_other_claim_fails(broken: InnerRun) -> None:
    """A claim that needs a broken one is skipped with that reason; nothing else may fail."""
    claims = {claim for _, _, claim in CASES.values()}
    outcomes = broken.outcomes()
    others = {name: outcome for name, outcome in outcomes.items() if name not in claims}
    assert "passed" in others.values() and all(o in ("passed", "xfailed", "skipped") for o in others.values()), \
        f"only the broken claims may fail; outcomes: {outcomes}; last lines: {broken.last_lines()}"
    assert broken.proc.returncode == 1, f"pytest exit {broken.proc.returncode} (1: tests failed); {broken.last_lines()}"
