"""Step 7, the tutorial's advanced configurations, as three scenarios that act and record:
scale to zero (7a), custom HPA behavior (7b), fallback (7c). Each returns a typed observation;
the tests judge the tutorial's claims on it. A scenario raises only when it cannot act (helm
fails, the stack cannot be reset); a claim that does not hold is recorded, not raised, and a
phase that depends on an earlier claim is recorded as not run, with the reason.

What they share with the scenarios beyond the page (the reset, the traffic, a broken metric
source, the budgets) is the kit, steps/scenario.py."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .. import kube as k
from .. import load, waits
from ..context import Stack
from ..observed import NotRun
from ..timeline import Timeline
from . import step6_scale_up
from .scenario import (FIXED_FOR_SCALE_TO_ZERO, ColdStart, Scenario, SteadyTraffic, broken_metric_source, cold_start,
                       idle_budget, rate_window)
from .step2_vllm import engine_selector, model_url, router_listing, router_selector


@dataclass
class RouterRestart:
    """The model back at zero, the router pod replaced, then the page's cold start again — the
    case of production-stack issue #1003: a router that starts while its model has no engine."""

    at_zero: waits.Seen[k.Obj | None]
    new_router: waits.Seen[list[k.Obj]] | None = None
    listing: list[str] | None = None  # the new router's /v1/models before the request
    cold: ColdStart | None = None


def restart_router_at_zero(stack: Stack, so: k.ScaledObject, model: str, budget: float) -> RouterRestart:
    """Wait for zero, delete the router pod (its Deployment starts another), wait for the new one
    Ready, then send the page's request from zero and repeat it until it succeeds."""
    run = RouterRestart(at_zero=stack.engine.reach(k.spec_replicas("==", 0),
                                                   idle_budget(rate_window(so), so.cooldown_period, so.polling_interval),
                                                   "engine Deployment back at 0 replicas before the router restart"))
    if not run.at_zero.reached:
        return run
    stack.kube.wait_for_list(*k.POD, stack.namespace, engine_selector(stack), lambda pods: not pods, 120,
                             "the last engine pod gone before the router restart")
    old = stack.kube.list(*k.POD, namespace=stack.namespace, label_selector=router_selector())
    for pod in old:
        stack.kube.delete(*k.POD, pod["metadata"]["name"], stack.namespace)
    gone = {pod["metadata"]["name"] for pod in old}
    run.new_router = stack.kube.reach_list(
        *k.POD, stack.namespace, router_selector(),
        lambda pods: bool(pods) and all(k.pod_ready(pod) and pod["metadata"]["name"] not in gone for pod in pods),
        stack.config.profile_settings.install_seconds, "a new router pod Ready (the old one gone)")
    if not run.new_router.reached:
        return run
    # The tutorial's port-forward ends with the old pod; the first look opens a new one.
    answered = waits.until(waits.polling(lambda: router_listing(stack), 0.5), lambda ids: isinstance(ids, list), 30,
                           "the new router answers /v1/models through the port-forward")
    run.listing = answered.state if isinstance(answered.state, list) else None
    run.cold = cold_start(stack, model, budget)
    return run


# ---- 7a: scale to zero ---------------------------------------------------------------------------
@dataclass
class ScaleToZero:
    """What the scale-to-zero scenario saw: idle → 0, the cold start, steady traffic holding ≥ 1."""

    min_replica_count: int
    max_replica_count: int
    triggers: int
    cooldown: float
    polling: float
    rate_window: float  # the keepalive's, from the deployed query
    timeline: Timeline
    at_zero: waits.Seen[k.Obj | None]  # Deployment spec.replicas 0 after the cooldown
    inactive: waits.Seen[k.Obj | None] | None = None  # ScaledObject Active=False
    hpa_min_replicas: int | None = None
    cold: ColdStart | None = None
    cold_budget: float = 0.0
    steady: waits.Held[k.Obj | None] | None = None  # replicas ≥ 1 under steady traffic
    traffic: load.LoadResult | None = None
    model: str = ""  # the id the router serves it under (the spec's modelURL)
    listing_at_zero: list[str] | None = None  # the router's /v1/models with no engine pod
    restart: RouterRestart | None = None
    not_run: dict[str, NotRun] = field(default_factory=dict)  # phase -> why it could not run


def scale_to_zero(stack: Stack) -> ScaleToZero:
    profile = stack.config.profile_settings
    with Scenario(stack, "scale-to-zero", fixed=FIXED_FOR_SCALE_TO_ZERO) as sc:
        so = sc.so
        tl = sc.timeline(step6_scale_up.timeline(stack, "step7a-scale-to-zero", threshold=5).start())
        at_zero = stack.engine.reach(k.spec_replicas("==", 0),
                                     idle_budget(rate_window(so), so.cooldown_period, so.polling_interval),
                                     "engine Deployment at 0 replicas after the cooldown with no traffic")
        run = ScaleToZero(min_replica_count=so.min_replica_count, max_replica_count=so.max_replicas,
                          triggers=len(so.triggers),
                          cooldown=so.cooldown_period, polling=so.polling_interval, rate_window=rate_window(so),
                          timeline=tl, at_zero=at_zero)
        if not at_zero.reached:
            run.not_run = dict.fromkeys(("inactive", "cold", "steady", "restart"),
                                        NotRun(f"the Deployment never reached 0 replicas: {at_zero.explain()}"))
            return run
        tl.event("at zero")
        run.inactive = stack.scaledobject.reach(k.has_condition("Active", "False"), 60, "ScaledObject Active=False")
        run.hpa_min_replicas = stack.hpa.get().min_replicas
        # Zero means no engine pod at all: the Deployment says 0 while its last pod still terminates.
        stack.kube.wait_for_list(*k.POD, stack.namespace, engine_selector(stack), lambda pods: not pods, 120,
                                 "the last engine pod gone before the cold start")
        run.cold_budget = 2 * run.polling + profile.hpa_sync_seconds + profile.engine_ready_seconds + run.rate_window
        run.listing_at_zero = router_listing(stack)
        run.model = model_url(stack)
        tl.event("cold-start request")
        run.cold = cold_start(stack, run.model, run.cold_budget)
        if run.cold.seconds_to_200 is None:
            run.not_run["steady"] = run.not_run["restart"] = NotRun(
                f"the cold start never got a 200: {run.cold.answered.explain()}")
            return run
        tl.event(f"first 200 after {run.cold.seconds_to_200:.1f}s")
        stack.echo(f"step 7a: cold start from zero: first answer {run.cold.first_status}, first 200 after "
                   f"{run.cold.seconds_to_200:.1f}s ({run.cold.attempts} attempts)")
        # After the cold start an engine is up; traffic from now on must keep it up for two cooldowns.
        stack.engine.wait_for(k.ready_replicas_at_least(1), profile.engine_ready_seconds,
                              "an engine Ready before the steady traffic starts")
        window = 2 * run.cooldown
        # The traffic outlasts the window by two of its own intervals, so the window never sees it stop.
        traffic = SteadyTraffic(stack, rate=0.5, duration=window + 4).start()
        tl.event("steady traffic starts")
        run.steady = stack.engine.hold(k.spec_replicas("≥", 1), window,
                                       f"engine replicas ≥ 1 under steady traffic for 2 cooldowns ({window:.0f}s)")
        run.traffic = traffic.join()
        tl.event("steady traffic ends")
        tl.event("router restart at zero")
        run.restart = restart_router_at_zero(stack, so, run.model, run.cold_budget)
        if run.restart.cold is not None:
            cold = run.restart.cold
            tl.event(f"restarted router: first answer {cold.first_status}")
            stack.echo(f"step 7a: router restarted at zero: first answer {cold.first_status}, first 200 after "
                       + (f"{cold.seconds_to_200:.1f}s" if cold.seconds_to_200 is not None else "never"))
        return run


# ---- 7b: custom HPA behavior ---------------------------------------------------------------------
# The HPA stamps a recommendation when its sync starts and writes the scale only after fetching
# the metric (through KEDA and Prometheus), and the sampler sees a change up to one tick late:
# the window, counted from the stamp, can end a little under `window` seconds after the scale-up
# became visible. Seen on the lab: the first drop 59.7 s after the scale-up wait returned, window 60 s.
WINDOW_SLACK = 3.0


def scale_down_violations(changes: list[tuple[float, int]], peak_at: float, window: float,
                          percent: float, period: float, slack: float = WINDOW_SLACK) -> list[str]:
    """Breaches of a scale-down behavior in observed (time, spec.replicas) changes, `peak_at`
    being when the replicas reached their peak and the load stopped."""
    problems = []
    drops = [(t, r, prev) for (t, r), (_, prev) in zip(changes[1:], changes[:-1]) if r < prev]
    if drops and drops[0][0] - peak_at < window - slack:
        problems.append(f"first scale-down {drops[0][0] - peak_at:.1f}s after the peak (the load stopped then), "
                        f"inside the {window:.0f}s stabilization window")
    for t, r, _ in drops:
        # The period's start, less the same slack: two steps one period apart, each seen a little
        # late or early, are two periods, not one.
        start = t - period + slack
        before = [rep for (ts, rep) in changes if start < ts < t] + [rep for (ts, rep) in changes if ts <= start][-1:]
        base = max(before) if before else r
        # The HPA controller truncates: int32(periodStartReplicas * (1 - percent/100)), so a 50 %
        # policy takes 5 replicas to 2 in one step.
        floor = int(base * (1 - percent / 100))
        if r < floor:
            problems.append(f"at +{t - peak_at:.0f}s replicas went to {r}: more than {percent:g}% of {base} "
                            f"within {period:.0f}s (floor {floor})")
    return problems


def replica_changes(timeline: Timeline, *watched: waits.Seen[k.Obj | None] | None) -> list[tuple[float, int]]:
    """(wall time, spec.replicas) at every change, in the order the API server wrote them.

    Two sources see the Deployment: the sampler (about once a second) and the watches of the waits
    (every change). Their clocks disagree by up to a sample's own duration, so a merge by time can put
    an older value after a newer one — seen on the lab: 1 → 4 → 5 reported as 5, 4, 5. Every reading
    carries the Deployment's metadata.generation, which the API server raises with each spec change
    it writes, so the readings are ordered by generation; a generation's time is the earliest any
    source saw it, and never earlier than the generation before it. Readings without a generation
    (no Deployment) are left out."""
    first: dict[int, tuple[float, int]] = {}  # generation -> (earliest wall time seen, spec.replicas)

    def add(t: float, generation: int | None, replicas: int) -> None:
        if generation is not None and (generation not in first or t < first[generation][0]):
            first[generation] = (t, replicas)

    for s in timeline.samples:
        if s.spec_replicas is not None:
            add(s.t, s.generation, s.spec_replicas)
    for seen in watched:
        if seen is None:
            continue
        start = seen.at - seen.elapsed
        for offset, obj in seen.history:
            if obj:
                view = k.Deployment(obj)
                add(start + offset, view.generation, view.spec_replicas)
    changes: list[tuple[float, int]] = []
    for generation in sorted(first):
        t, replicas = first[generation]
        t = max(t, changes[-1][0]) if changes else t
        if not changes or changes[-1][1] != replicas:
            changes.append((t, replicas))
    return changes


@dataclass
class HpaBehavior:
    """What the HPA-behavior scenario saw: the HPA's behavior, the scale-up to the maximum under
    load, and the scale-down after the load stopped."""

    expected: dict[str, Any]  # the tutorial's scaleDown behavior (with the profile's numbers)
    deployed: dict[str, Any]  # the HPA's spec.behavior.scaleDown as KEDA wrote it
    maximum: int
    timeline: Timeline
    grown: step6_scale_up.ScaleUp
    back: waits.Seen[k.Obj | None] | None = None  # back to 1 replica after the load
    changes: list[tuple[float, int]] = field(default_factory=list)
    peak_at: float | None = None  # when the replicas reached the maximum (the load stops then)
    not_run: dict[str, NotRun] = field(default_factory=dict)

    @property
    def window(self) -> float:
        return float(self.deployed.get("stabilizationWindowSeconds", 300))

    @property
    def policy(self) -> dict[str, Any]:
        return (self.deployed.get("policies") or [{"type": "Percent", "value": 100, "periodSeconds": 15}])[0]

    def steps_after_peak(self) -> list[tuple[int, int]]:
        peak = self.peak_at or 0.0
        return [(round(t - peak), r) for t, r in self.changes if t >= peak - 1]

    def violations(self) -> list[str]:
        """Breaches of the behavior the HPA carries (the claim that it carries the tutorial's is separate)."""
        after = [(t, r) for t, r in self.changes if self.peak_at is not None and t >= self.peak_at - 1]
        return scale_down_violations(after, self.peak_at or 0.0, self.window, float(self.policy["value"]),
                                     float(self.policy["periodSeconds"]))


def hpa_behavior(stack: Stack) -> HpaBehavior:
    """Load to the maximum, stop, watch the scale-down. Uses the aggregated query (defect 3): with
    the tutorial's per-pod query the HPA cannot read its metric past one replica and never scales in."""
    profile = stack.config.profile_settings
    with Scenario(stack, "hpa-behavior") as sc:
        so, threshold = sc.so, sc.threshold
        expected = dict(stack.expected("hpa-behavior", sc.extra).behavior["scaleDown"])  # type: ignore[index]
        maximum = int(so.spec["maxReplicaCount"])
        deployed = dict(stack.hpa.get().behavior.get("scaleDown") or {})
        tl = sc.timeline(step6_scale_up.timeline(stack, "step7b-hpa-behavior", threshold=threshold).start())
        grown = step6_scale_up.drive_until_replicas(stack, tl, threshold * maximum, at_least=maximum,
                                                    polling_interval=so.polling_interval)
        run = HpaBehavior(expected=expected, deployed=deployed, maximum=maximum, timeline=tl, grown=grown)
        tl.event("load stopped")
        if grown.grew_within_budget():
            # log2(maximum) halvings at the Percent policy's pace, after the window; two polls and a minute of margin.
            steps = math.ceil(math.log2(maximum)) + 1
            budget = run.window + steps * (float(run.policy["periodSeconds"]) + profile.hpa_sync_seconds) \
                + 2 * so.polling_interval + 60
            run.back = stack.engine.reach(k.spec_replicas("==", 1), budget,
                                          f"scale-down from {maximum} back to 1 after the load")
        else:
            run.not_run["scale-down"] = NotRun(f"the replicas never reached the maximum {maximum}: {grown.explain()}")
    run.changes = replica_changes(tl, grown.grew, run.back)
    # The peak as first seen, by the sampler or the watch: the same clock as the drops.
    peaks = [t for t, r in run.changes if r >= maximum]
    run.peak_at = min(peaks[:1] + ([grown.grew_at] if grown.grew_at else [])) if peaks or grown.grew_at else None
    stack.echo(f"step 7b: observed scale-down (s after the peak and load stop, replicas): {run.steps_after_peak()}")
    return run


# ---- 7c: fallback ----------------------------------------------------------------------------------
@dataclass
class Fallback:
    """What the fallback scenario saw while the metric source was really down, and after."""

    fallback: dict[str, Any]  # the ScaledObject's spec.fallback
    how: str  # how the metric source was broken
    timeline: Timeline
    condition: waits.Seen[k.Obj | None]  # Fallback=True
    settled: waits.Seen[k.Obj | None] | None = None  # spec == ready == fallback.replicas
    held: waits.Held[k.Obj | None] | None = None  # holds fallback.replicas while down
    cleared: waits.Seen[k.Obj | None] | None = None  # Fallback=False and Ready after the source returns
    followed: waits.Seen[k.Obj | None] | None = None  # back to 1 replica (the idle queue)
    settle_seconds: float | None = None
    not_run: dict[str, NotRun] = field(default_factory=dict)


@dataclass
class NoFallback:
    """The contrast: the tutorial's step-4 ScaledObject (no fallback), same failure."""

    has_fallback: bool
    how: str
    failed: waits.Seen[k.Obj | None]  # Ready=False while the source is down
    recovered: waits.Seen[k.Obj | None]  # Ready again after


def fallback(stack: Stack) -> Fallback:
    """Break the metric source for real with the tutorial's fallback block, watch KEDA fall back and
    recover. Uses the aggregated query (defect 3): at 2 replicas the per-pod query would itself
    fail and keep the fallback on after the source returns."""
    cfg, sync = stack.config, stack.config.profile_settings.hpa_sync_seconds
    with Scenario(stack, "fallback") as sc:
        spec, polling = dict(sc.so.fallback or {}), sc.so.polling_interval
        replicas = int(spec.get("replicas", 0))
        tl = sc.timeline(step6_scale_up.timeline(stack, "step7c-fallback", threshold=5).start())
        with broken_metric_source(stack, "fallback", sc.extra) as how:
            broke = time.time()
            tl.event(f"metric source broken ({how})")
            run = Fallback(spec, how, tl, stack.scaledobject.reach(
                k.has_condition("Fallback"), (int(spec.get("failureThreshold", 3)) + 3) * polling + 60,
                "ScaledObject Fallback=True"))
            run.settled = stack.engine.reach(
                k.spec_replicas("==", replicas) & k.ready_replicas_at_least(replicas),
                2 * (polling + sync) + cfg.profile_settings.engine_ready_seconds,
                f"Deployment settles at the fallback's {replicas} replicas")
            if run.settled.reached:
                run.settle_seconds = run.settled.at - broke
                tl.event(f"settled at {replicas} after {run.settle_seconds:.0f}s")
                # One poll (KEDA feeds the fallback value again) and one HPA sync (the HPA acts on it
                # again), with 5 s of margin: a Deployment that holds through both holds for good.
                run.held = stack.engine.hold(k.spec_replicas("==", replicas), polling + sync + 5,
                                             f"Deployment holds {replicas} replicas while the metric source is down")
            else:
                run.not_run["held"] = NotRun(f"the Deployment never settled at {replicas}: {run.settled.explain()}")
        tl.event("metric source restored")
        run.cleared = stack.scaledobject.reach(
            k.has_condition("Fallback", "False") & k.has_condition("Ready"), 3 * polling + 90,
            "ScaledObject Fallback=False and Ready after the source returns")
        # Back to 1 is a scale-down: the HPA holds it for its stabilization window (Kubernetes'
        # default 300 s; the fast profile's 20 s), then acts on its next sync.
        stabilization = stack.hpa.get().scale_down_window
        run.followed = stack.engine.reach(
            k.spec_replicas("==", 1), stabilization + 120 + 2 * (polling + sync),
            f"Deployment follows the metric (idle queue) back to 1 replica (the HPA's {stabilization:.0f}s "
            "scale-down window included)")
        if run.settle_seconds is not None:
            stack.echo(f"step 7c: fallback settled at {replicas} replicas {run.settle_seconds:.0f}s after the "
                       "metric source broke")
        return run


def no_fallback(stack: Stack) -> NoFallback:
    """The contrast, with the same aggregated query: a restarted Prometheus still serves the removed
    engines' last samples for five minutes (no staleness markers across a restart), which the
    per-pod query would count."""
    with Scenario(stack) as sc:
        polling = sc.so.polling_interval
        with broken_metric_source(stack, None, sc.extra) as how:
            failed = stack.scaledobject.reach(k.has_condition("Ready", "False"), 3 * polling + 60,
                                              f"ScaledObject Ready=False with the metric source broken ({how})")
        recovered = stack.scaledobject.reach(k.has_condition("Ready"), 3 * polling + 90,
                                             "ScaledObject Ready again after the source returns")
        return NoFallback(sc.so.fallback is not None, how, failed, recovered)
