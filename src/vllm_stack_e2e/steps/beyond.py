"""Beyond the page: what the tutorial's configuration does in situations its users report and the
page does not cover. Each scenario starts from the tutorial's step-4 stack (with the harness fixes
of the upstream defects its claim is not about, printed as every overlay), acts, and returns a
typed observation; the tests (tests/e2e/test_beyond_*.py, marker `beyond`) judge it.

- activation: load that keeps the queue above 0 but at or below the threshold does not scale.
- pause: `autoscaling.keda.sh/paused-replicas` (then `paused`) holds the Deployment under load;
  removing it lets the scale-up happen.
- broken neighbour: another namespace's ScaledObject whose trigger cannot reach its server does
  not delay the tutorial's scale-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import kube as k
from .. import waits
from ..context import Stack
from ..timeline import Timeline
from . import step6_scale_up
from .step7_advanced import FIXED_FOR_MULTI_REPLICA, reset

PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED = "autoscaling.keda.sh/paused"
# When Prometheus does not say how often it scrapes the run's pods: the chart's ServiceMonitor default.
DEFAULT_SCRAPE_SECONDS = 30.0
# The page's queue threshold (step 4's trigger, '5'): the activation scenario's load must stay at or
# below it. Judged against the page's number, not the deployed one, so an overlay that lowers the
# deployed threshold (values/break-activation.yaml) breaks the claim and leaves the premise standing.
PAGE_THRESHOLD = 5.0


def reading_lag(stack: Stack) -> float:
    """How long a change in the queue takes to show in Prometheus: the longest scrape interval of
    the run's targets (5 s on the lab's first edition and the fast profile, the chart's 30 s
    ServiceMonitor default otherwise), plus 1 s for the scrape itself."""
    intervals = [t.scrape_interval for t in stack.prometheus().targets()
                 if t.labels.get("namespace") == stack.namespace and t.scrape_interval > 0]
    return (max(intervals) if intervals else DEFAULT_SCRAPE_SECONDS) + 1.0


def hold_window(stack: Stack, polling: float) -> float:
    """Two KEDA polls and two HPA syncs, and 5 s of margin: a scale-up the metric asked for would
    have happened within it."""
    return 2 * (polling + stack.config.profile_settings.hpa_sync_seconds) + 5


@dataclass
class QueueSpan:
    """The queue as the timeline sampled it between two wall-clock times."""

    values: list[float]

    @property
    def peak(self) -> float | None:
        return max(self.values) if self.values else None

    @property
    def nonzero(self) -> bool:
        return any(v > 0 for v in self.values)


# A hold that breaks at once has no sample of its own: the queue it is judged with includes the
# timeline's last 10 s before it started (several samples; the timeline samples every second or two).
QUEUE_LOOKBACK = 10.0


def queue_between(tl: Timeline, start: float, end: float) -> QueueSpan:
    """The queue the timeline sampled from QUEUE_LOOKBACK s before `start` to `end`."""
    return QueueSpan([s.queue for s in tl.samples if s.queue is not None and start - QUEUE_LOOKBACK <= s.t <= end])


def _finish(stack: Stack, tl: Timeline, run: step6_scale_up.LoadRun) -> None:
    """Stop the scenario's load (its phases go on the timeline), then the timeline, and save it."""
    loaded = run.stop()
    if loaded is not None:
        for phase in loaded.phases:
            tl.span(f"load:{phase.name}", phase.start, phase.end)
    tl.stop()
    tl.save(stack.config.run_dir / "timelines" / f"{tl.name}.json")


# ---- activation -----------------------------------------------------------------------------------
@dataclass
class Activation:
    threshold: float
    window: float
    queued: waits.Seen[float | None]  # the queue above 0
    held: waits.Held[k.Obj | None] | None = None  # spec.replicas == 1 for the window
    queue: QueueSpan = field(default_factory=lambda: QueueSpan([]))
    timeline: Timeline | None = None

    def load_stayed_in_band(self) -> bool:
        """The scenario's premise: the queue was non-zero and never above the threshold."""
        return self.queue.nonzero and self.queue.peak is not None and self.queue.peak <= self.threshold


def activation(stack: Stack) -> Activation:
    extra = stack.fixes(None, FIXED_FOR_MULTI_REPLICA)
    so = k.ScaledObject(reset(stack, None, extra=extra))
    threshold = PAGE_THRESHOLD
    window = hold_window(stack, so.polling_interval)
    cfg = stack.config
    # The load rises by one request per reading lag, so each step shows before the next one and the
    # queue stops just above 0 instead of overshooting the threshold it must stay under.
    step = reading_lag(stack)
    ramp = 12 * step + 30  # up to twelve steps past the first concurrency, and the first reading
    tl = step6_scale_up.timeline(stack, "beyond-activation", threshold=threshold).start()
    run = step6_scale_up.LoadRun(stack, target=0.0, budget=window + ramp + 60, max_concurrency=64, start_concurrency=4,
                                 step=1, step_interval=step).start()
    try:
        queued = stack.prometheus().reach_value(step6_scale_up.queue_query(stack), lambda v: v is not None and v > 0,
                                                ramp, f"the queue above 0 (load stepped by one request every "
                                                f"{step:g}s, the scrape interval + 1 s)")
        result = Activation(threshold, window, queued, timeline=tl)
        if queued.reached:
            tl.event("queue above 0: holding")
            started = time.time()
            result.held = stack.kube.hold(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                                          k.spec_replicas("==", 1), window,
                                          f"engine replicas stay 1 with the queue at or below {threshold:g} "
                                          f"({window:.0f}s)")
            result.queue = queue_between(tl, started, time.time())
            tl.event("hold window over")
        return result
    finally:
        _finish(stack, tl, run)


# ---- pause ----------------------------------------------------------------------------------------
@dataclass
class PausePhase:
    annotation: str
    value: str
    paused: waits.Seen[k.Obj | None]  # ScaledObject Paused=True
    held: waits.Held[k.Obj | None] | None = None  # spec.replicas == 1 under load
    queue: QueueSpan = field(default_factory=lambda: QueueSpan([]))
    hpa_present: bool | None = None  # whether KEDA kept its HPA while paused


@dataclass
class Pause:
    threshold: float
    window: float
    queued: waits.Seen[float | None]
    phases: list[PausePhase] = field(default_factory=list)
    unpaused: waits.Seen[k.Obj | None] | None = None  # Paused=False once the annotations are gone
    resumed: waits.Seen[k.Obj | None] | None = None  # spec.replicas ≥ 2 after that
    resume_seconds: float | None = None
    timeline: Timeline | None = None
    not_run: dict[str, str] = field(default_factory=dict)


def pause(stack: Stack) -> Pause:
    extra = stack.fixes(None, FIXED_FOR_MULTI_REPLICA)
    so = k.ScaledObject(reset(stack, None, extra=extra))
    cfg = stack.config
    threshold = float(so.triggers[0]["metadata"]["threshold"])
    window = hold_window(stack, so.polling_interval)
    budget = step6_scale_up.scale_up_budget(stack, so.polling_interval)
    so_ref = (*k.SCALEDOBJECT, cfg.scaledobject, stack.namespace)
    tl = step6_scale_up.timeline(stack, "beyond-pause", threshold=threshold).start()
    stack.kube.annotate(*so_ref, {PAUSED_REPLICAS: "1"})
    tl.event(f"{PAUSED_REPLICAS}=1")
    run = step6_scale_up.LoadRun(stack, target=threshold, budget=3 * window + budget + 240).start()
    try:
        queued = stack.prometheus().reach_value(step6_scale_up.queue_query(stack),
                                                lambda v: v is not None and v > threshold, 150,
                                                f"the queue above {threshold:g} while paused")
        result = Pause(threshold, window, queued, timeline=tl)
        if not queued.reached:
            result.not_run["resume"] = "the load never raised the queue above the threshold"
            return result
        for annotation, value in ((PAUSED_REPLICAS, "1"), (PAUSED, "true")):
            if annotation == PAUSED:
                stack.kube.annotate(*so_ref, {PAUSED_REPLICAS: None, PAUSED: "true"})
                tl.event(f"{PAUSED}=true (paused-replicas removed)")
            phase = PausePhase(annotation, value, stack.kube.reach(*so_ref, k.has_condition("Paused"), 60,
                                                                   f"ScaledObject Paused=True ({annotation})"))
            started = time.time()
            phase.held = stack.kube.hold(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                                         k.spec_replicas("==", 1), window,
                                         f"engine replicas held at 1 under load with {annotation}={value}")
            phase.queue = queue_between(tl, started, time.time())
            phase.hpa_present = stack.kube.get(*k.HPA, cfg.hpa, stack.namespace) is not None
            result.phases.append(phase)
        stack.kube.annotate(*so_ref, {PAUSED: None, PAUSED_REPLICAS: None})
        removed = time.time()
        tl.event("pause annotations removed")
        result.unpaused = stack.kube.reach(*so_ref, k.has_condition("Paused", "False"), 60,
                                           "ScaledObject Paused=False")
        result.resumed = stack.kube.reach(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                                          k.spec_replicas("≥", 2), budget,
                                          f"engine replicas ≥ 2 after the pause (budget {budget:.0f}s, as step 6)")
        if result.resumed.reached:
            result.resume_seconds = result.resumed.at - removed
            tl.event(f"scaled up {result.resume_seconds:.0f}s after the pause ended")
        return result
    finally:
        # Never leave a paused ScaledObject behind, whatever happened above.
        stack.kube.annotate(*so_ref, {PAUSED: None, PAUSED_REPLICAS: None})
        _finish(stack, tl, run)


# ---- a broken neighbour -------------------------------------------------------------------------
NEIGHBOUR_SERVER = "http://prometheus.nowhere.svc.cluster.local:9090"  # no such Service: lookups fail


def neighbour_objects(namespace: str) -> list[dict[str, Any]]:
    """A Deployment and a ScaledObject whose Prometheus trigger names a server that does not exist."""
    labels = {"app": "broken-neighbour"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "neighbour", "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "app", "image": "registry.invalid/neighbour:1"}]}}}},
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
         "metadata": {"name": "neighbour", "namespace": namespace},
         "spec": {"scaleTargetRef": {"name": "neighbour"}, "minReplicaCount": 1, "maxReplicaCount": 3,
                  "pollingInterval": 1,
                  "triggers": [{"type": "prometheus", "metadata": {
                      "serverAddress": NEIGHBOUR_SERVER, "query": "sum(up)", "threshold": "1"}}]}},
    ]


@dataclass
class BrokenNeighbour:
    namespace: str
    broken: waits.Seen[k.Obj | None]  # the neighbour's ScaledObject Ready=False
    scale_up: step6_scale_up.ScaleUp | None = None


def broken_neighbour(stack: Stack) -> BrokenNeighbour:
    extra = stack.fixes(None, FIXED_FOR_MULTI_REPLICA)
    so = k.ScaledObject(reset(stack, None, extra=extra))
    threshold = float(so.triggers[0]["metadata"]["threshold"])
    namespace = f"{stack.namespace}-neighbour"[:63]
    stack.kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": stack.namespace_object()["metadata"]["labels"]}})
    stack.record("namespace", namespace)
    try:
        for obj in neighbour_objects(namespace):
            stack.kube.apply(obj)
        broken = stack.kube.reach(*k.SCALEDOBJECT, "neighbour", namespace, k.has_condition("Ready", "False"), 90,
                                  "the neighbour's ScaledObject Ready=False (its server cannot be reached)")
        result = BrokenNeighbour(namespace, broken)
        tl = step6_scale_up.timeline(stack, "beyond-broken-neighbour", threshold=threshold).start()
        try:
            tl.event("neighbour broken; load starts")
            result.scale_up = step6_scale_up.drive_until_replicas(stack, tl, threshold, 2, so.polling_interval)
        finally:
            tl.stop()
            tl.save(stack.config.run_dir / "timelines" / "beyond-broken-neighbour.json")
        return result
    finally:
        if stack.kube.delete(*k.NAMESPACE, namespace):
            stack.kube.wait_gone(*k.NAMESPACE, namespace, None, budget=120)
        stack.forget("namespace", namespace)
