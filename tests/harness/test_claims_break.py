"""Each claim can fail, and fails alone: a run of one tutorial step with a break overlay
(values/break-*.yaml, applied through EXTRA_VALUES as a user would try one) must turn exactly
the claim it breaks FAILED — not ERROR, and no other claim of that step with it.

Each case starts the suite in a subprocess on the same lab (it installs and removes its own
stack, in its own namespace), so it costs a step's full run; these are harness self-tests. The
overlays name the first edition's Prometheus, so these runs follow that edition (EDITION)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _inner import InnerRun

from vllm_stack_e2e.config import REPO_ROOT

pytestmark = pytest.mark.e2e

CASES = {
    # break overlay: (the step's module, the one claim it must fail)
    "break-scale-up.yaml": ("tests/e2e/test_step6_scale_up.py", "test_replicas_grow_under_load"),
    "break-hpa-behavior.yaml": ("tests/e2e/test_step7b_hpa_behavior.py", "test_hpa_carries_the_behavior"),
    "break-scale-to-zero.yaml": ("tests/e2e/test_step7a_scale_to_zero.py", "test_idle_stack_scales_to_zero"),
    "break-fallback-contrast.yaml": ("tests/e2e/test_step7c_fallback.py",
                                     "test_without_fallback_the_scaledobject_reports_the_trigger_error"),
}
# A step's own run: install (about a minute on the lab), the scenario, and a failing claim's full budget.
RUN_BUDGET = 900


@pytest.mark.parametrize("overlay", list(CASES))
def test_a_break_overlay_fails_exactly_its_claim(overlay: str, backend: Any,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    module, claim = CASES[overlay]
    reports: Path = tmp_path_factory.mktemp(f"break-{overlay.removesuffix('.yaml')}") / "reports"
    run = InnerRun(module, reports, env={"EXTRA_VALUES": str(REPO_ROOT / "values" / overlay),
                                         "EDITION": "observability-script"})
    try:
        code = run.wait(RUN_BUDGET, "for the step's run")
    finally:
        run.kill()
    outcomes = run.outcomes()
    assert outcomes.get(claim) == "failed", f"{claim} with {overlay}: {outcomes.get(claim)}; all: {outcomes}"
    # A claim that needs the broken one is skipped with that reason; nothing else may fail.
    others = {name: outcome for name, outcome in outcomes.items() if name != claim}
    assert "passed" in others.values() and all(o in ("passed", "xfailed", "skipped") for o in others.values()), \
        f"with {overlay} only {claim} may fail; outcomes: {outcomes}; last lines: {run.last_lines()}"
    assert code == 1, f"pytest exit {code} (1: tests failed); last lines: {run.last_lines()}"
