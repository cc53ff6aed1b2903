"""Step 7 — "Custom HPA Behavior": advanced.horizontalPodAutoscalerConfig.behavior is copied
into the HPA, and after load stops the scale-down from the maximum respects it: nothing before
the stabilization window, no step larger than the Percent policy allows per period.

Two claims, judged apart: the HPA carries the tutorial's behavior (with the profile's numbers),
and the scale-down respects the behavior the HPA carries. Uses the harness fix the
run writes for defect 3 (docs/upstream-defects.md#defect-3): with the tutorial's
per-pod query the HPA cannot read its metric past 1 replica and never scales in."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import step7_advanced as advanced

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def behavior(keda_enabled: Stack) -> advanced.HpaBehavior:
    return advanced.hpa_behavior(keda_enabled)


def test_hpa_carries_the_behavior(behavior: advanced.HpaBehavior) -> None:
    want = {key: behavior.expected.get(key) for key in ("stabilizationWindowSeconds", "policies")}
    got = {key: behavior.deployed.get(key) for key in ("stabilizationWindowSeconds", "policies")}
    assert got == want, f"HPA spec.behavior.scaleDown {got}, the values say {want}"


def test_replicas_reached_the_maximum(behavior: advanced.HpaBehavior) -> None:
    assert behavior.grown.grew_within_budget(), behavior.grown.explain()


def test_scale_down_respects_the_behavior(behavior: advanced.HpaBehavior) -> None:
    if "scale-down" in behavior.not_run:
        pytest.skip(f"not run: {behavior.not_run['scale-down']} (see test_replicas_reached_the_maximum)")
    assert behavior.back is not None and behavior.back.reached, \
        behavior.back.explain() if behavior.back is not None else "not observed"
    problems = behavior.violations()
    assert not problems, f"{problems}; steps (s after the peak, replicas) {behavior.steps_after_peak()}"
