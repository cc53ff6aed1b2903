"""Step 7 — "Custom HPA Behavior": advanced.horizontalPodAutoscalerConfig.behavior is copied
into the HPA, and after load stops the scale-down from the maximum respects it: nothing before
the stabilization window, no step larger than the Percent policy allows per period.

Uses the harness fix values/fix-aggregated-query.yaml (reference.md §2 defect 3): with the
tutorial's per-pod query the HPA cannot read its metric past 1 replica and never scales in."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import scaling, upgrade
from vllm_stack_e2e.steps.stack import Stack

pytestmark = pytest.mark.e2e
EXTRA = ("fix-aggregated-query.yaml",)


# The HPA stamps a recommendation when its sync starts and writes the scale only after fetching
# the metric (through KEDA and Prometheus), and the sampler sees a change up to one tick late:
# the window, counted from the stamp, can end a little under `window` seconds after the scale-up
# became visible. Seen on the lab: the first drop 59.7 s after the scale-up wait returned, window 60 s.
WINDOW_SLACK = 3.0


def scale_down_violations(changes: list[tuple[float, int]], stopped_at: float, window: float,
                          percent: float, period: float, slack: float = WINDOW_SLACK) -> list[str]:
    """Breaches of a scale-down behavior in observed (time, spec.replicas) changes, `stopped_at`
    being when the replicas reached their peak and the load stopped."""
    problems = []
    drops = [(t, r, prev) for (t, r), (_, prev) in zip(changes[1:], changes[:-1]) if r < prev]
    if drops and drops[0][0] - stopped_at < window - slack:
        problems.append(f"first scale-down {drops[0][0] - stopped_at:.1f}s after the peak (the load stopped then), "
                        f"inside the {window:.0f}s stabilization window")
    for t, r, _ in drops:
        before = [rep for (ts, rep) in changes if t - period < ts < t] + \
                 [rep for (ts, rep) in changes if ts <= t - period][-1:]
        base = max(before) if before else r
        # The HPA controller truncates: int32(periodStartReplicas * (1 - percent/100)), so a 50 %
        # policy takes 5 replicas to 2 in one step.
        floor = int(base * (1 - percent / 100))
        if r < floor:
            problems.append(f"at +{t - stopped_at:.0f}s replicas went to {r}: more than {percent:g}% of {base} "
                            f"within {period:.0f}s (floor {floor})")
    return problems


def test_violations_detects_early_and_large_steps() -> None:
    """The checker itself fails on a behavior that is not respected (fast, no cluster)."""
    assert scale_down_violations([(0, 5), (70, 3), (90, 2), (110, 1)], 0, 60, 50, 20) == []
    assert scale_down_violations([(0, 5), (70, 2), (90, 1)], 0, 60, 50, 20) == []  # truncation: 5 → 2 is allowed
    assert scale_down_violations([(0, 5), (59.2, 2), (90, 1)], 0, 60, 50, 20) == []  # the HPA's own stamp
    assert scale_down_violations([(0, 5), (30, 3)], 0, 60, 50, 20)  # before the window
    assert scale_down_violations([(0, 5), (55, 2)], 0, 60, 50, 20)  # before the window, past the slack
    assert scale_down_violations([(0, 5), (70, 1)], 0, 60, 50, 20)  # 80 % at once
    assert scale_down_violations([(0, 4), (70, 2), (75, 1)], 0, 60, 50, 20)  # two steps in one period


@pytest.fixture(scope="module")
def behavior_run(keda_enabled: Stack) -> Iterator[dict[str, Any]]:
    stack = keda_enabled
    expected = stack.expected("hpa-behavior", EXTRA)
    so = upgrade.reset(stack, "hpa-behavior", extra=EXTRA)
    maximum = int(so["spec"]["maxReplicaCount"])
    threshold = float(so["spec"]["triggers"][0]["metadata"]["threshold"])
    polling = float(so["spec"].get("pollingInterval", 30))
    scale_down = expected.behavior["scaleDown"]  # type: ignore[index]
    tl = scaling.timeline(stack, "step7b-hpa-behavior", threshold=threshold).start()
    try:
        grown = scaling.drive_until_replicas(stack, tl, threshold * maximum, at_least=maximum,
                                             polling_interval=polling, max_concurrency=160)
        tl.event("load stopped")
        window = float(scale_down["stabilizationWindowSeconds"])
        policy = scale_down["policies"][0]
        steps = math.ceil(math.log2(maximum)) + 1
        budget = window + steps * (float(policy["periodSeconds"]) + stack.config.profile_settings.hpa_sync_seconds) \
            + 2 * polling + 60
        stack.kube.wait_for(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                            lambda d: ((d or {}).get("spec") or {}).get("replicas") == 1, budget,
                            f"scale-down from {maximum} back to 1 after the load")
        back_at = time.time()
    finally:
        tl.stop()
        tl.save(stack.config.run_dir / "timelines" / "step7b-hpa-behavior.json")
    changes: list[tuple[float, int]] = []
    for sample in tl.samples:
        if sample.spec_replicas is not None and (not changes or changes[-1][1] != sample.spec_replicas):
            changes.append((sample.t, sample.spec_replicas))
    if changes and changes[-1][1] != 1:
        changes.append((back_at, 1))  # seen by the watch before the sampler's next tick
    # The peak as the sampler saw it, which can be before the scale-up wait returned (it waits for
    # the queue in Prometheus first): the same clock as the drops it is compared with.
    peaks = [t for t, r in changes if r >= maximum]
    stopped_at = min(peaks[:1] + [grown.grew_at or time.time()])
    yield {"stack": stack, "expected": scale_down, "maximum": maximum, "stopped_at": stopped_at,
           "changes": changes, "policy": policy, "window": window}


def test_hpa_carries_the_behavior(behavior_run: dict[str, Any]) -> None:
    stack = behavior_run["stack"]
    hpa = stack.kube.get(*k.HPA, stack.config.hpa, stack.namespace)
    assert hpa is not None
    got = hpa["spec"]["behavior"]["scaleDown"]
    expected = behavior_run["expected"]
    assert got["stabilizationWindowSeconds"] == expected["stabilizationWindowSeconds"]
    assert got["policies"] == expected["policies"]


def test_replicas_reached_the_maximum(behavior_run: dict[str, Any]) -> None:
    assert max(r for _, r in behavior_run["changes"]) == behavior_run["maximum"], behavior_run["changes"]


def test_scale_down_respects_the_behavior(behavior_run: dict[str, Any]) -> None:
    run = behavior_run
    stopped = run["stopped_at"]
    after = [(t, r) for t, r in run["changes"] if t >= stopped - 1]
    steps = [(round(t - stopped), r) for t, r in after]
    run["stack"].echo(f"step 7b: observed scale-down (s after the peak and load stop, replicas): {steps}")
    assert [r for _, r in after][-1] == 1, steps
    problems = scale_down_violations(after, stopped, run["window"], float(run["policy"]["value"]),
                                     float(run["policy"]["periodSeconds"]))
    assert not problems, f"{problems}; steps {steps}"
