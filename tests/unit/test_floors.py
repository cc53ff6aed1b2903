"""The controller floor: what KEDA, the HPA and readiness need at the least for each scaling
claim, from the values a scenario deploys (rendered by the real helm)."""

from __future__ import annotations

from vllm_stack_e2e import floors
from vllm_stack_e2e.helm import Helm


def test_the_fast_profile_floors_follow_its_values(helm: Helm) -> None:
    found = {f.step: f for f in floors.floors("fast", "lab", engine_ready=2.0, helm=helm, sync=5.0)}
    # step 6: poll 3 + sync 5 + ready 2, then the hold within max: poll 3 + sync 5
    assert found["step 6"].seconds == 18.0
    # 7a: keepalive [12s] + cooldown 10 + poll 3, cold start poll 3 + ready 2, two cooldowns 20
    assert found["step 7a"].seconds == 50.0 and "rate window 12" in found["step 7a"].formula
    assert "window 20" in found["step 7b"].formula


def test_the_tutorial_profile_waits_out_the_tutorials_windows(helm: Helm) -> None:
    found = {f.step: f for f in floors.floors("tutorial", "lab", engine_ready=2.0, helm=helm)}
    assert found["step 7a"].seconds == 60 + 360 + 15 + 15 + 2 + 720
    assert "window 300" in found["step 7b"].formula


def test_a_run_is_set_against_the_floors_step_by_step_and_summed() -> None:
    run = {"tests": [{"step": "step 6", "duration": 30.0}, {"step": "step 6", "duration": 10.0},
                     {"step": "step 7a", "duration": 90.0}, {"step": "step 1", "duration": 5.0}]}
    rows = floors.against(run, [floors.Floor("step 6", 38.0, "a"), floors.Floor("step 7a", 58.0, "b")])
    assert rows == [("step 6", 40.0, 38.0, "a"), ("step 7a", 90.0, 58.0, "b"),
                    ("scaling steps", 130.0, 96.0, "sum of the above")]
