"""Step 6 — "Test autoscaling": load through `svc/vllm-router-service` (port-forwarded, as the
tutorial does) makes the engine Deployment grow "within a few minutes", never past
maxReplicaCount.

The module fixture acts and records (load, the queue, the Deployment, a hold window); each test
judges one claim on that record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import observed
from vllm_stack_e2e.steps import step6_scale_up as scaling

pytestmark = pytest.mark.e2e


@dataclass
class Step6:
    scale_up: scaling.ScaleUp
    within_max: waits.Held[k.Obj | None] | None  # None: the replicas never grew, nothing left to settle
    maximum: int
    series: scaling.SeriesMatch  # what the trigger's own query matched after the load, an engine up


@pytest.fixture(scope="module")
def step6(keda_enabled: Stack, tutorial_keda: dict[str, Any]) -> Step6:
    """Drive the queue above the threshold, watch the Deployment grow, then — when it grew — watch
    it a little longer while the stack settles after the load: two engines Ready, then a window as
    long as the longer of one poll and one HPA sync (a late scale-up past the maximum) and a reading
    lag and two polls and 5 s (the second engine's series reach KEDA: the page's per-pod query then
    returns two elements, defect 3). Right after the load it reads what the trigger's own query
    matches (scaling.trigger_series). The timeline samples the ScaledObject throughout."""
    stack = keda_enabled
    so = stack.scaledobject.get()
    threshold = float(tutorial_keda["triggers"][0]["metadata"]["threshold"])
    maximum = int(tutorial_keda["maxReplicaCount"])
    tl = scaling.timeline(stack, "step6-scale-up", threshold=threshold)
    with tl:
        run = scaling.drive_until_replicas(stack, tl, threshold, at_least=2, polling_interval=so.polling_interval)
        series = scaling.trigger_series(stack, so.query)
        within = None
        if observed(run.grew):
            poll, sync = so.polling_interval, stack.config.profile_settings.hpa_sync_seconds
            window = max(poll + sync, scaling.reading_lag(stack) + 2 * poll + 5)
            stack.engine.reach(k.ready_replicas_at_least(2), stack.config.profile_settings.engine_ready_seconds,
                               "2 engines Ready after the scale-up")
            within = stack.engine.hold(k.spec_replicas("≤", maximum), window=window,
                                       description=f"spec.replicas ≤ {maximum} ({window:.0f}s)")
    tl.save(stack.config.run_dir / "timelines" / "step6-scale-up.json")
    stack.echo(f"step 6: {run.explain()}")
    return Step6(run, within, maximum, series)


@pytest.mark.upstream_defect(6)
@pytest.mark.upstream_defect(12)
def test_trigger_query_matches_a_scraped_series(step6: Step6) -> None:
    """A queue of 0 is a reading only when the query matched a series someone scrapes: KEDA reads
    an empty result as 0, and a series no longer scraped as its last value."""
    assert step6.series.matched, step6.series.explain()


@pytest.mark.upstream_defect(6)
@pytest.mark.upstream_defect(12)
def test_queue_rises_above_threshold_under_load(step6: Step6) -> None:
    assert step6.scale_up.queue.reached, step6.scale_up.queue.explain()


@pytest.mark.upstream_defect(6)
@pytest.mark.upstream_defect(12)
@pytest.mark.upstream_defect(7)
@pytest.mark.upstream_defect(13)
def test_replicas_grow_under_load(step6: Step6) -> None:
    """"Within a few minutes": polling + HPA sync + one engine's readiness, twice, plus margin."""
    assert step6.scale_up.grew_within_budget(), step6.scale_up.explain()


def test_replicas_stay_within_max(step6: Step6) -> None:
    """Sampled through the load, and — after a scale-up — held for a poll and a sync while it settles."""
    seen = [s.spec_replicas for s in step6.scale_up.timeline.samples if s.spec_replicas is not None]
    assert seen and max(seen) <= step6.maximum, f"spec.replicas seen during the run: {seen} (max {step6.maximum})"
    if step6.within_max is not None:
        assert step6.within_max.held, step6.within_max.explain()


@pytest.mark.upstream_defect(3)
def test_scaledobject_stays_ready_past_one_replica(step6: Step6) -> None:
    """The ScaledObject stays Ready while the Deployment runs 2+ engines (so it can scale back),
    sampled through a window in which KEDA polls with both engines' series in Prometheus."""
    multi = [s for s in step6.scale_up.timeline.samples if (s.ready_replicas or 0) >= 2]
    assert multi, "no sample with 2+ ready engines: the claim needs the scale-up first"
    broken = [(s.ready_replicas, s.so_ready) for s in multi if s.so_ready != "True"]
    assert not broken, f"ScaledObject not Ready at 2+ engines in {len(broken)} of {len(multi)} samples: {broken[:5]}"
