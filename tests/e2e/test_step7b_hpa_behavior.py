"""Step 7 — "Custom HPA Behavior": advanced.horizontalPodAutoscalerConfig.behavior is copied
into the HPA, and after load stops the scale-down from the maximum respects it: nothing before
the stabilization window, no step larger than the Percent policy allows per period.

Two claims, judged apart: the HPA carries the tutorial's behavior (with the profile's numbers),
and the scale-down respects the behavior the HPA carries (its premises, the maximum reached and the
way back to 1, each with its own test). Uses the harness fix the run writes for defect 3
(docs/upstream-defects.md#defect-3): with the tutorial's
per-pod query the HPA cannot read its metric past 1 replica and never scales in."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
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


def test_replicas_come_back_to_one_after_the_load(behavior: advanced.HpaBehavior) -> None:
    """The premise of judging the scale-down: it went all the way back to 1 replica."""
    requires(behavior.not_run.get("scale-down") or behavior.grown.grew)
    assert_reached(behavior.back, "the scale-down")


def test_scale_down_respects_the_behavior(behavior: advanced.HpaBehavior) -> None:
    requires(behavior.not_run.get("scale-down") or behavior.grown.grew, behavior.back)
    problems = behavior.violations()
    assert not problems, f"{problems}; steps (s after the peak, replicas) {behavior.steps_after_peak()}"
