"""One values plan per (step, edition, scenario, profile, backend, fixes, extra), built once and
shared by what helm is given, what the claims read, and the fix (vllm_stack_e2e.runplan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vllm_stack_e2e import defects, runplan, values
from vllm_stack_e2e.helm import STANDIN_CHART, Helm

CURRENT = "integrated-monitoring"


class CountingHelm(Helm):
    renders = 0

    def template(self, *args: Any, **kwargs: Any) -> Any:
        type(self).renders += 1
        return super().template(*args, **kwargs)


@pytest.fixture
def plans(tmp_path: Path) -> runplan.Plans:
    try:
        helm = CountingHelm()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"helm not available here: {exc}")
    CountingHelm.renders = 0
    fixer = runplan.Fixer(str(STANDIN_CHART), defects.FixContext("vse-run", "vllm"), tmp_path / "fixes", helm=helm)
    user = {"fallback": ("break-scale-up.yaml",)}
    return runplan.Plans(CURRENT, "fast", "lab", (3, 7), lambda scenario: user.get(scenario or "", ()), fixer)


def test_a_plan_is_built_once_and_renders_its_fix_once(plans: runplan.Plans) -> None:
    plan = plans.get(4, "scale-to-zero")
    assert plans.get(4, "scale-to-zero") is plan
    helm_files, claims_files = plan.files(), plan.files(user=False)
    assert helm_files == claims_files, "no EXTRA_VALUES: helm and the claims read the same files"
    assert [p.name for p in helm_files] == ["tutorial-step4.yaml", "profile-fast.yaml", "backend-lab.yaml",
                                             "scenario-scale-to-zero.yaml", "variant-fast-scale-to-zero.yaml",
                                             "fix-scale-to-zero-asked.yaml"]
    plan.values()
    assert CountingHelm.renders == 1
    assert plan.key == runplan.Key(4, CURRENT, "scale-to-zero", "fast", "lab", (3, 7), True, ())


def test_extra_values_reach_helm_not_the_claims_and_each_has_its_own_fix(plans: runplan.Plans, tmp_path: Path) -> None:
    plan = plans.get(4, "fallback")
    helm_files, claims_files = plan.files(), plan.files(user=False)
    assert [p.name for p in helm_files][-2:] == ["break-scale-up.yaml", "fix-fallback-asked.yaml"]
    assert "break-scale-up.yaml" not in [p.name for p in claims_files]
    assert helm_files[-1].parent == tmp_path / "fixes"
    assert claims_files[-1] == tmp_path / "fixes" / "claims" / "fix-fallback-asked.yaml", "helm's fix kept as given"


def test_a_steps_own_fix_and_step_2(plans: runplan.Plans) -> None:
    own = plans.get(4, None, numbers=(6,))
    assert own.name == "step4" and own.user == () and own.fix()[0] is not None
    assert [p.name for p in plans.get(2).files()] == ["tutorial-step2.yaml", "profile-fast.yaml", "backend-lab.yaml"]
    # FIX_DEFECTS (3, 7) is asked of step 2's install too; neither renders without a ScaledObject.
    assert plans.get(2).key.fixes == (3, 7) and plans.get(2).fix() == (None, {})
    assert plans.get(2).name == "step2-asked"
    assert plans.get(2).values() == values.plan_for(2, "fast", "lab", edition=CURRENT)
