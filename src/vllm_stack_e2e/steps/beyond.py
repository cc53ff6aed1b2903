"""Beyond the page: what the tutorial's configuration does in situations its users report and the
page does not cover. Each scenario starts from the tutorial's step-4 stack (with the harness fixes
of the upstream defects its claim is not about, printed as every overlay), acts, and returns a
typed observation; the tests (tests/e2e/test_beyond_*.py, marker `beyond`) judge it.

- activation: load that keeps the queue above 0 but at or below the threshold does not scale.
- pause: `autoscaling.keda.sh/paused-replicas` (then `paused`) holds the Deployment under load;
  removing it lets the scale-up happen.
- broken neighbour: another namespace's ScaledObject whose trigger cannot reach its server does
  not delay the tutorial's scale-up.
- fallback with scale to zero: the page's scale-to-zero and fallback blocks together; the metric
  source goes down at 2 replicas (fallback holds them, no scale to zero), then at zero.

Every scenario's timeline reads KEDA's own metrics (vllm_stack_e2e.kedametrics); its healthy
phases carry the errors KEDA counted for the tutorial's ScaledObject (`KedaErrors`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import defects, floors, kedametrics, load, waits
from .. import kube as k
from ..context import Stack
from ..helm import HelmError
from ..observed import NotRun
from ..redaction import redact_text
from ..timeline import Timeline
from . import step2_vllm, step6_scale_up
from .scenario import (FIXED_FOR_MULTI_REPLICA, Scenario, broken_metric_source, idle_budget, rate_window, upgrade,
                       wake)
from .step2_vllm import engine_selector, model_url

PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED = "autoscaling.keda.sh/paused"
reading_lag = step6_scale_up.reading_lag
# The page's queue threshold (step 4's trigger, '5'): the activation scenario's load must stay at or
# below it. Judged against the page's number, not the deployed one, so an overlay that lowers the
# deployed threshold (values/break-activation.yaml) breaks the claim and leaves the premise standing.
PAGE_THRESHOLD = 5.0
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


def _stop_load(tl: Timeline, run: step6_scale_up.LoadRun) -> None:
    """Stop a scenario's load; its phases go on the timeline."""
    loaded = run.stop()
    if loaded is not None:
        step6_scale_up.record_load(tl, run, loaded)


def _remove_namespace(stack: Stack, namespace: str) -> None:
    """Delete a namespace the scenario made, wait until it is gone, and take it off the run's ledger."""
    if stack.kube.delete(*k.NAMESPACE, namespace):
        stack.kube.wait_gone(*k.NAMESPACE, namespace, None, budget=120)
    stack.forget("namespace", namespace)


def load_to_maximum(stack: Stack, so: k.ScaledObject, after: float
                    ) -> tuple[step6_scale_up.LoadRun, waits.Seen[k.Obj | None], NotRun | None]:
    """Start load that asks for threshold × maxReplicaCount — a whole step more than the maximum
    needs, so the HPA's recommendation stays there while the load's concurrency follows the queue —
    running for the scale-up's budget and `after` s more, and watch for spec.replicas to reach the
    maximum. Returns the running load (the caller stops it), the observation, and why the premise
    failed (None when it held)."""
    maximum = so.max_replicas
    follow = step6_scale_up.scale_up_budget(stack, so.polling_interval)
    run = step6_scale_up.LoadRun(stack, target=so.threshold * maximum, budget=0.0, at_least=maximum)
    scale = run.rise.seconds + 2 * follow.seconds
    run.budget = scale + after
    run.start()
    try:
        seen = stack.engine.reach(k.spec_replicas("==", maximum), scale,
                                  f"the HPA holds {maximum} replicas under load (budget {scale:.0f}s: queue {run.rise}, "
                                  f"then twice replicas {follow})")
    except BaseException:
        run.stop()
        raise
    why = None if seen.reached and not run.failed() else NotRun(
        f"the load never took the model to {maximum} replicas: {run.failed() or seen.explain()}")
    return run, seen, why


@dataclass
class KedaErrors:
    """The errors KEDA's operator counted for the tutorial's ScaledObject during one phase
    (`keda_scaled_object_errors_total`, read when the phase begins and ends; keda_errors)."""

    phase: str
    new: float | None  # None: KEDA's metrics could not be read
    unread: str | None = None  # why not
    lab: bool = True  # on the lab the operator's metrics are always reachable: unread is a failure

    @property
    def skip_reason(self) -> str | None:
        """Why a claim on the count cannot be judged here: only off the lab (a cluster whose KEDA
        metrics port the API server's pod proxy cannot reach), never on the lab."""
        if self.new is None and not self.lab:
            return f"KEDA's operator metrics not reachable through the API server ({self.unread}); " \
                   "the count of scaler errors cannot be judged on this cluster"
        return None

    def explain(self) -> str:
        if self.new is None:
            return f"{self.phase}: KEDA's metrics not read ({self.unread or 'no sample'})"
        return f"{self.phase}: KEDA counted {self.new:g} new error(s) for the ScaledObject"


def kedas_reading_stored(stack: Stack, since: float) -> waits.Seen[float | None]:
    """Whether the run's Prometheus stores what KEDA read for the tutorial's queue trigger over the
    last `since` seconds (`keda_scaler_metrics_value`, scraped from the operator: on the lab as job
    `keda-operator`; on a cluster where a ServiceMonitor selects KEDA). Its peak: above 0 under load."""
    query = (f'max(max_over_time(keda_scaler_metrics_value{{namespace="{stack.namespace}",'
             f'scaledObject="{stack.config.scaledobject}",triggerIndex="0"}}[{max(30, int(since) + 1)}s]))')
    return stack.prometheus().reach_value(query, lambda v: v is not None and v > 0, 30,
                                          "the run's Prometheus stores KEDA's non-zero reading of the queue")


@dataclass(frozen=True)
class ErrorCount:
    """KEDA's error counter for the tutorial's ScaledObject, read once straight from the operator."""

    asked: float  # wall clock
    answered: float
    value: float | None  # None: not read
    unread: str | None = None  # why not


def keda_count(stack: Stack) -> ErrorCount:
    """Read `keda_scaled_object_errors_total` for the tutorial's ScaledObject now."""
    asked = time.time()
    reading, unread = kedametrics.read(stack.backend.keda_metrics, stack.namespace, stack.config.scaledobject)
    return ErrorCount(asked, time.time(), reading.errors if reading else None, unread)


def keda_errors(stack: Stack, tl: Timeline, phase: str, since: ErrorCount, until: ErrorCount | None = None) -> KedaErrors:
    """The errors KEDA counted during a phase: two readings of the counter taken by the scenario itself
    when the phase began and when it ended (`until`, else now). Not the timeline's samples alone: the
    sampler also reads Prometheus, and with Prometheus stopped a sample can take seconds, so the
    samples of a short broken phase may all come after KEDA stopped counting (it stops once the
    fallback is active) and show no increase. The sampler's readings in between only reveal an
    operator restart (a counter that drops), which two readings alone would hide."""
    until = until or keda_count(stack)
    lab = stack.backend.name == "lab"
    if since.value is None or until.value is None:
        return KedaErrors(phase, None, since.unread or until.unread, lab=lab)
    readings = [since.value, *tl.keda_errors_read(since.answered, until.asked), until.value]
    return KedaErrors(phase, kedametrics.new_errors(readings), lab=lab)


# ---- activation -----------------------------------------------------------------------------------
@dataclass
class Activation:
    threshold: float
    window: float
    queued: waits.Seen[float | None]  # the queue above 0
    held: waits.Held[k.Obj | None] | None = None  # spec.replicas == 1 for the window
    queue: QueueSpan = field(default_factory=lambda: QueueSpan([]))
    timeline: Timeline | None = None
    errors: KedaErrors | None = None
    stored: waits.Seen[float | None] | None = None  # the run's Prometheus holds KEDA's reading of the queue

    def load_stayed_in_band(self) -> bool:
        """The scenario's premise: the queue was non-zero and never above the threshold."""
        return self.queue.nonzero and self.queue.peak is not None and self.queue.peak <= self.threshold


def activation(stack: Stack) -> Activation:
    with Scenario(stack) as sc:
        threshold = PAGE_THRESHOLD
        window = hold_window(stack, sc.so.polling_interval)
        # The load rises by one request per reading lag, so each step shows before the next one and the
        # queue stops just above 0 instead of overshooting the threshold it must stay under.
        step = reading_lag(stack)
        ramp = 12 * step + 30  # up to twelve steps past the first concurrency, and the first reading
        counted = keda_count(stack)
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-activation", threshold=threshold).start())
        run = step6_scale_up.LoadRun(stack, target=0.0, budget=window + ramp + 60, max_concurrency=64,
                                     start_concurrency=4, step=1, step_interval=step).start()
        sc.restore(_stop_load, tl, run)
        queued = stack.prometheus().reach_value(step6_scale_up.queue_query(stack), lambda v: v is not None and v > 0,
                                                ramp, f"the queue above 0 (load stepped by one request every "
                                                f"{step:g}s, the scrape interval + 1 s)")
        result = Activation(threshold, window, queued, timeline=tl)
        if queued.reached:
            tl.event("queue above 0: holding")
            started = time.time()
            result.held = stack.engine.hold(k.spec_replicas("==", 1), window,
                                            f"engine replicas stay 1 with the queue at or below {threshold:g} "
                                            f"({window:.0f}s)")
            result.queue = queue_between(tl, started, time.time())
            tl.event("hold window over")
        result.errors = keda_errors(stack, tl, "activation (load below the threshold)", counted)
        result.stored = kedas_reading_stored(stack, time.time() - tl.started_at)
        return result


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
    not_run: dict[str, NotRun] = field(default_factory=dict)
    errors: KedaErrors | None = None


def pause(stack: Stack) -> Pause:
    with Scenario(stack) as sc:
        threshold = sc.threshold
        window = hold_window(stack, sc.so.polling_interval)
        budget = step6_scale_up.scale_up_budget(stack, sc.so.polling_interval).seconds
        counted = keda_count(stack)
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-pause", threshold=threshold).start())
        stack.scaledobject.annotate({PAUSED_REPLICAS: "1"})
        tl.event(f"{PAUSED_REPLICAS}=1")
        run = step6_scale_up.LoadRun(stack, target=threshold, budget=3 * window + budget + 240).start()
        sc.restore(_stop_load, tl, run)
        # Never leave a paused ScaledObject behind, whatever happens below.
        sc.restore(stack.scaledobject.annotate, {PAUSED: None, PAUSED_REPLICAS: None})
        rise = run.rise
        queued = stack.prometheus().reach_value(step6_scale_up.queue_query(stack),
                                                lambda v: v is not None and v > threshold, rise.seconds,
                                                f"the queue above {threshold:g} while paused (budget {rise})")
        result = Pause(threshold, window, queued, timeline=tl)
        if not queued.reached:
            result.not_run["resume"] = NotRun(
                f"the load never raised the queue above the threshold: {queued.explain()}")
            return result
        for annotation, value in ((PAUSED_REPLICAS, "1"), (PAUSED, "true")):
            if annotation == PAUSED:
                stack.scaledobject.annotate({PAUSED_REPLICAS: None, PAUSED: "true"})
                tl.event(f"{PAUSED}=true (paused-replicas removed)")
            phase = PausePhase(annotation, value, stack.scaledobject.reach(k.has_condition("Paused"), 60,
                                                                           f"ScaledObject Paused=True ({annotation})"))
            started = time.time()
            phase.held = stack.engine.hold(k.spec_replicas("==", 1), window,
                                           f"engine replicas held at 1 under load with {annotation}={value}")
            phase.queue = queue_between(tl, started, time.time())
            phase.hpa_present = stack.hpa.get().exists
            result.phases.append(phase)
        stack.scaledobject.annotate({PAUSED: None, PAUSED_REPLICAS: None})
        removed = time.time()
        tl.event("pause annotations removed")
        result.unpaused = stack.scaledobject.reach(k.has_condition("Paused", "False"), 60, "ScaledObject Paused=False")
        result.resumed = stack.engine.reach(k.spec_replicas("≥", 2), budget,
                                            f"engine replicas ≥ 2 after the pause (budget {budget:.0f}s, as step 6)")
        if result.resumed.reached:
            result.resume_seconds = result.resumed.at - removed
            tl.event(f"scaled up {result.resume_seconds:.0f}s after the pause ended")
        result.errors = keda_errors(stack, tl, "pause and resume", counted)
        return result


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
    errors: KedaErrors | None = None  # the tutorial's ScaledObject's, beside the broken one


def broken_neighbour(stack: Stack) -> BrokenNeighbour:
    with Scenario(stack) as sc:
        namespace = f"{stack.namespace}-neighbour"[:63]
        stack.kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": stack.namespace_object()["metadata"]["labels"]}})
        stack.record("namespace", namespace)
        sc.restore(_remove_namespace, stack, namespace)
        for obj in neighbour_objects(namespace):
            stack.kube.apply(obj)
        broken = stack.kube.reach(*k.SCALEDOBJECT, "neighbour", namespace, k.has_condition("Ready", "False"), 90,
                                  "the neighbour's ScaledObject Ready=False (its server cannot be reached)")
        result = BrokenNeighbour(namespace, broken)
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-broken-neighbour", threshold=sc.threshold).start())
        tl.event("neighbour broken; load starts")
        counted = keda_count(stack)
        result.scale_up = step6_scale_up.drive_until_replicas(stack, tl, sc.threshold, 2, sc.so.polling_interval)
        result.errors = keda_errors(stack, tl, "scale-up beside the broken neighbour", counted)
        return result


# ---- fallback with scale to zero ------------------------------------------------------------------
# The page's two Advanced Configuration blocks together: scale to zero (minReplicaCount 0, the
# keepalive trigger) and fallback {failureThreshold 3, replicas 2}.
FALLBACK_OVERLAY = "scenario-fallback.yaml"
FALLBACK_BASE = "scale-to-zero"


@dataclass
class FallbackPhase:
    """The metric source down while the model stood at `start_replicas`."""

    name: str
    how: str = ""
    start_replicas: int | None = None
    start: waits.Seen[k.Obj | None] | None = None  # premise: the model at 2+ (at zero) before the break
    fallback: waits.Seen[k.Obj | None] | None = None  # ScaledObject Fallback=True
    settled: waits.Seen[k.Obj | None] | None = None  # spec.replicas == fallback.replicas
    held: waits.Held[k.Obj | None] | None = None  # ... and held for a cooldown and more
    settle_seconds: float | None = None  # from the break to spec.replicas == fallback.replicas
    healthy: KedaErrors | None = None  # before the break
    broken: KedaErrors | None = None  # while the source was down: KEDA must count errors
    not_run: NotRun | None = None


@dataclass
class FallbackWithZero:
    replicas: int  # fallback.replicas
    failure_threshold: int
    polling: float
    cooldown: float
    min_replica_count: int
    above: FallbackPhase = field(default_factory=lambda: FallbackPhase("at 2+"))
    at_zero: FallbackPhase = field(default_factory=lambda: FallbackPhase("at zero"))
    timeline: Timeline | None = None


def fallback_with_zero(stack: Stack) -> FallbackWithZero:
    """Reset to the page's scale-to-zero + fallback blocks; drive the model to 2+ replicas, break the
    metric source and watch the fallback (then restore it); let the model go to zero, break the source
    again and watch whether the fallback lifts it."""
    profile = stack.config.profile_settings
    sync = profile.hpa_sync_seconds
    overlay = (FALLBACK_OVERLAY,)
    fixes = stack.fixes(FALLBACK_BASE, FIXED_FOR_MULTI_REPLICA, extra=overlay)
    with Scenario(stack, FALLBACK_BASE, also=overlay, extra=fixes) as sc:
        so = sc.so
        extra = (*overlay, *fixes)  # what every later upgrade of the scenario renders (the broken source's)
        spec = dict(so.fallback or {})
        result = FallbackWithZero(replicas=int(spec.get("replicas", 0)),
                                  failure_threshold=int(spec.get("failureThreshold", 3)),
                                  polling=so.polling_interval, cooldown=so.cooldown_period,
                                  min_replica_count=so.min_replica_count)
        threshold = sc.threshold
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-fallback-with-zero", threshold=threshold).start())
        result.timeline = tl
        # Fallback=True once failures pass failureThreshold: that many polls and three more, and a minute.
        fallback_budget = (result.failure_threshold + 3) * result.polling + 60
        # -- at 2+: the source goes down with the model at two replicas or more ----------------------
        phase, counted = result.above, keda_count(stack)
        # A new ScaledObject with minReplicaCount 0 and no traffic goes to zero at once (it has no
        # lastActiveTime to cool down from): wake the model as the page does, keep it awake until the
        # load has begun, then load it.
        woke = wake(stack, model_url(stack), 2 * result.polling + sync + profile.engine_ready_seconds
                    + rate_window(so))
        tl.event("model woken and held awake" if woke.awake else "model did not wake")
        try:
            up = step6_scale_up.drive_until_replicas(stack, tl, threshold, 2, result.polling) if woke.awake else None
        finally:
            woke.stop()
        if up is None:
            phase.not_run = NotRun(f"the model was not woken and held awake: {woke.explain()}")
        elif up.grew is None or not up.grew.reached:
            phase.not_run = NotRun(f"the model never reached 2 replicas: {up.explain()}")
        else:
            phase.start, phase.start_replicas = up.grew, up.grown_to
            phase.healthy = keda_errors(stack, tl, "scale-up to 2+ (source up)", counted)
            _break_and_watch(stack, tl, phase, result, extra, fallback_budget,
                             hold=result.cooldown + result.polling + sync + 5)
        # -- at zero: the model idles to zero with the source up, then the source goes down ----------
        phase = result.at_zero
        at_zero = stack.engine.reach(k.spec_replicas("==", 0),
                                     idle_budget(rate_window(so), result.cooldown, result.polling) + 300 + 2 * sync,
                                     "engine Deployment at 0 replicas after the cooldown with no traffic "
                                     "(after the fallback's replicas scale down)")
        phase.start = at_zero
        if not at_zero.reached:
            phase.not_run = NotRun(f"the model never reached zero: {at_zero.explain()}")
            return result
        stack.kube.wait_for_list(*k.POD, stack.namespace, engine_selector(stack), lambda pods: not pods, 120,
                                 "the last engine pod gone")
        tl.event("at zero")
        phase.start_replicas = 0
        counted = keda_count(stack)
        # A zero that holds one poll and one sync with the source up: the healthy phase at zero.
        stack.engine.hold(k.spec_replicas("==", 0), result.polling + sync, "the model stays at zero")
        phase.healthy = keda_errors(stack, tl, "at zero (source up)", counted)
        _break_and_watch(stack, tl, phase, result, extra, fallback_budget, hold=result.polling + sync + 5)
        return result


def _break_and_watch(stack: Stack, tl: Timeline, phase: FallbackPhase, run: FallbackWithZero, extra: tuple[str, ...],
                     fallback_budget: float, hold: float) -> None:
    """Break the metric source; watch Fallback=True, the Deployment at fallback.replicas, and that it
    holds there for `hold` seconds; restore the source whatever happened."""
    sync = stack.config.profile_settings.hpa_sync_seconds
    counted = keda_count(stack)  # before the break: KEDA's first error can follow it within a poll
    with broken_metric_source(stack, FALLBACK_BASE, extra) as how:
        broke = time.time()
        phase.how = how
        tl.event(f"{phase.name}: metric source broken ({how})")
        phase.fallback = stack.scaledobject.reach(k.has_condition("Fallback"), fallback_budget,
                                                  f"ScaledObject Fallback=True ({phase.name})")
        # Scale-down to the fallback count waits out the HPA's stabilization window.
        stabilization = stack.hpa.get().scale_down_window
        budget = (fallback_budget + 2 * (run.polling + sync) + stack.config.profile_settings.engine_ready_seconds
                  + (stabilization if (phase.start_replicas or 0) > run.replicas else 0) + 30)
        phase.settled = stack.engine.reach(k.spec_replicas("==", run.replicas), budget,
                                           f"Deployment at the fallback's {run.replicas} replicas ({phase.name})")
        if phase.settled.reached:
            phase.settle_seconds = phase.settled.at - broke
            tl.event(f"{phase.name}: at {run.replicas} after {phase.settle_seconds:.0f}s")
            phase.held = stack.engine.hold(k.spec_replicas("==", run.replicas), hold,
                                           f"Deployment holds {run.replicas} replicas with the source down "
                                           f"({hold:.0f}s)")
        phase.broken = keda_errors(stack, tl, f"{phase.name}, source down", counted)
    tl.event(f"{phase.name}: metric source restored")
    stack.scaledobject.reach(k.has_condition("Fallback", "False") & k.has_condition("Ready"),
                             3 * run.polling + 90, "ScaledObject Fallback=False and Ready after the source returns")


# ---- KEDA disrupted mid-scale -------------------------------------------------------------------
# What a restart may take on top of a scale-up's own budget: the kubelet's back-off (the first
# restart at once, 10 s when the process crashed less than 10 minutes before) and the server's own
# start (cache sync, certificates): 40 s on the lab; a cluster also schedules a pod and may pull
# its image: 120 s.
RESTART_ALLOWANCE = {"lab": 40.0}
RESTART_ALLOWANCE_CLUSTER = 120.0
DISRUPTED = ("operator", "metrics-apiserver")


@dataclass
class Disruption:
    component: str  # "operator" or "metrics-apiserver"
    budget: float  # for the scale-up, counted from the crash
    queued: waits.Seen[float | None] | None = None  # the queue above the threshold: the crash follows
    how: str = ""
    crashed_at: float | None = None
    answered: waits.Seen[Any] | None = None  # the external metrics API answers the HPA's query again
    recovery_seconds: float | None = None
    gap: list[str] = field(default_factory=list)  # the HPA's ScalingActive, in order, crash → answer
    grew: waits.Seen[k.Obj | None] | None = None  # spec.replicas ≥ 2
    grow_seconds: float | None = None  # crash → spec.replicas ≥ 2
    timeline: Timeline | None = None
    not_run: NotRun | None = None


def external_metric_path(stack: Stack, hpa: k.Obj) -> str:
    """The path the HPA asks KEDA's metrics API server for the ScaledObject's first metric."""
    metric = ((hpa.get("spec") or {}).get("metrics") or [{}])[0].get("external", {}).get("metric", {})
    return (f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{stack.namespace}/{metric.get('name', '')}"
            f"?labelSelector=scaledobject.keda.sh%2Fname%3D{stack.config.scaledobject}")


def keda_disruption(stack: Stack, component: str) -> Disruption:
    """From step 4's stack: load until the queue passes the threshold, then crash one of KEDA's
    servers (lab: SIGKILL, restarted with a kubelet's back-off; cluster: its pods deleted) before the
    HPA has acted; watch KEDA answer the HPA again and the Deployment still grow to 2."""
    with Scenario(stack) as sc:
        threshold = sc.threshold
        allowance = RESTART_ALLOWANCE.get(stack.backend.name, RESTART_ALLOWANCE_CLUSTER)
        result = Disruption(component, step6_scale_up.scale_up_budget(stack, sc.so.polling_interval).seconds + allowance)
        path = external_metric_path(stack, stack.hpa.get().obj or {})
        tl = sc.timeline(step6_scale_up.timeline(stack, f"beyond-keda-{component}", threshold=threshold).start())
        result.timeline = tl
        run = step6_scale_up.LoadRun(stack, target=threshold, budget=result.budget + 240).start()
        sc.restore(_stop_load, tl, run)
        rise = run.rise
        result.queued = stack.prometheus().reach_value(step6_scale_up.queue_query(stack),
                                                       lambda v: v is not None and v > threshold, rise.seconds,
                                                       f"the queue above {threshold:g} (budget {rise})")
        if not result.queued.reached:
            result.not_run = NotRun(f"the load never raised the queue above the threshold: {result.queued.explain()}")
            return result
        result.how = stack.backend.disrupt_keda(component)
        result.crashed_at = time.time()
        tl.event(f"KEDA {component} crashed")
        stack.echo(f"beyond: KEDA {component}: {result.how}")
        result.answered = waits.until(waits.polling(lambda: stack.kube.raw(path), 0.5), lambda _answer: True,
                                      allowance + 60, f"KEDA's metrics API answers the HPA's query again ({path})",
                                      show=lambda _answer: "answered")
        if result.answered.reached:
            result.recovery_seconds = result.answered.at - result.crashed_at
            tl.event(f"KEDA answers again after {result.recovery_seconds:.1f}s")
        until = result.answered.at if result.answered.reached else time.time()
        for s in tl.samples:
            if result.crashed_at <= s.t <= until and s.hpa_scaling_active and (
                    not result.gap or result.gap[-1] != s.hpa_scaling_active):
                result.gap.append(s.hpa_scaling_active)
        remaining = max(1.0, result.budget - (time.time() - result.crashed_at))
        result.grew = stack.engine.reach(k.spec_replicas("≥", 2), remaining,
                                         f"engine replicas ≥ 2 after KEDA's {component} crashed "
                                         f"(budget {result.budget:.0f}s from the crash: step 6's + {allowance:g}s "
                                         "for the restart)")
        if result.grew.reached:
            result.grow_seconds = result.grew.at - result.crashed_at
            tl.event(f"spec.replicas ≥ 2, {result.grow_seconds:.1f}s after the crash")
        stack.echo(f"beyond: KEDA {component} crashed mid-scale: answering again after "
                   + (f"{result.recovery_seconds:.1f}s" if result.recovery_seconds is not None else "never")
                   + f", HPA ScalingActive in the gap: {' → '.join(result.gap) or 'not sampled'}, 2 replicas after "
                   + (f"{result.grow_seconds:.1f}s" if result.grow_seconds is not None else "never"))
        return result


# ---- an upgrade while scaled out ---------------------------------------------------------------
# The upgrades, in order: each overlay holds the changes before it, so each changes one thing more.
UPGRADES = (("an annotation of the Deployment (an unrelated setting)", "upgrade-unrelated"),
            ("the chart's replicaCount", "upgrade-replica-count"))


@dataclass
class UpgradePhase:
    """One `helm upgrade` while the HPA holds the Deployment scaled out, and what followed it: the
    Deployment and the HPA as the API server wrote them, from just before helm ran to a window after."""

    change: str
    scenario: str  # the values overlay (values/scenario-<name>.yaml)
    before: int  # spec.replicas when helm ran
    wanted: int  # the HPA's desiredReplicas when helm ran
    error: str = ""  # helm's refusal, when it refused
    replicas: waits.Held[k.Obj | None] | None = None  # spec.replicas ≥ before
    hpa: waits.Held[k.Obj | None] | None = None  # the same HPA (uid), desiredReplicas ≥ before
    owners: list[str] = field(default_factory=list)  # who owned spec.replicas after helm ran (managedFields)

    def explain(self) -> str:
        if self.error:
            return f"{self.change}: helm upgrade refused — {self.error}"
        parts = [f"spec.replicas owned by {', '.join(self.owners) or 'nobody'}"]
        for name, held in (("Deployment", self.replicas), ("HPA", self.hpa)):
            if held is not None:
                seq = " → ".join(dict.fromkeys(_replicas_words(o) for _t, o in held.history))
                parts.append(f"{name} {'held' if held.held else 'broke at +%.0fs' % (held.broke_at or 0)}: {seq}")
        return f"{self.change} at {self.before} replicas: " + "; ".join(parts)


def _replicas_words(obj: k.Obj | None) -> str:
    if obj is None:
        return "gone"
    if obj.get("kind") == "HorizontalPodAutoscaler":
        return f"desired {k.Hpa(obj).desired_replicas} (uid …{obj['metadata']['uid'][-6:]})"
    return f"spec.replicas {k.Deployment(obj).spec_replicas}"


@dataclass
class ScaledOutUpgrade:
    maximum: int  # the ScaledObject's maxReplicaCount: the count the load holds the HPA at
    scaled: waits.Seen[k.Obj | None] | None = None  # premise: spec.replicas == maximum under load
    phases: list[UpgradePhase] = field(default_factory=list)
    timeline: Timeline | None = None
    not_run: NotRun | None = None


def upgrade_while_scaled_out(stack: Stack) -> ScaledOutUpgrade:
    """From step 4's stack (with the fixes scaling past one replica needs): load that holds the HPA
    at maxReplicaCount (load_to_maximum); then, the load still on, each
    of UPGRADES as a user runs it (`helm upgrade` with the page's values and one setting changed).
    Each upgrade is watched from the state read just before helm ran (kube.hold's `since`: every
    change the API server wrote, in its order) for a hold window after it."""
    with Scenario(stack) as sc:
        so = sc.so
        result = ScaledOutUpgrade(so.max_replicas)
        window = hold_window(stack, so.polling_interval)
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-upgrade-scaled-out", threshold=sc.threshold).start())
        result.timeline = tl
        run, result.scaled, result.not_run = load_to_maximum(
            stack, so, after=len(UPGRADES) * (window + stack.config.profile_settings.install_seconds))
        sc.restore(_stop_load, tl, run)
        if result.not_run:
            return result
        tl.event(f"{result.maximum} replicas")
        for change, scenario in UPGRADES:
            result.phases.append(_upgrade_and_watch(stack, tl, change, scenario, sc.extra, window))
        return result


def _upgrade_and_watch(stack: Stack, tl: Timeline, change: str, scenario: str, extra: tuple[str, ...],
                       window: float) -> UpgradePhase:
    deployment, hpa = stack.engine.get(), stack.hpa.get()
    phase = UpgradePhase(change, scenario, deployment.spec_replicas, hpa.desired_replicas)
    uid = ((hpa.obj or {}).get("metadata") or {}).get("uid")
    tl.event(f"helm upgrade: {change}")
    try:
        upgrade(stack, scenario=scenario, extra=extra)
    except HelmError as exc:
        phase.error = redact_text(exc.stderr_tail)[:400]
        tl.event("helm upgrade refused")
    phase.replicas = stack.engine.hold(k.spec_replicas("≥", phase.before), window,
                                       f"spec.replicas ≥ {phase.before} after the upgrade ({window:.0f}s)",
                                       since=deployment.obj)
    same = waits.Check(lambda o: o is not None and o["metadata"]["uid"] == uid
                       and k.Hpa(o).desired_replicas >= phase.before,
                       f"the same HPA, desiredReplicas ≥ {phase.before}")
    # The HPA's changes since it was read are replayed in the API server's order: the window has passed.
    phase.hpa = stack.hpa.hold(same, 1.0, f"HPA {stack.config.hpa} kept through the upgrade", since=hpa.obj)
    # Owners of spec.replicas in every state the API server wrote after helm ran: the HPA takes the
    # field back with its next scale, so one reading at the end could miss helm's.
    states = [obj for _t, obj in phase.replicas.history[1:]] or [phase.replicas.history[-1][1]]
    phase.owners = list(dict.fromkeys(o for obj in states for o in k.field_owners(obj, ("spec", "replicas"))))
    stack.echo(f"beyond: upgrade while scaled out — {phase.explain()}")
    return phase


# ---- scale-in under traffic ---------------------------------------------------------------------
# The trickle that runs while the HPA scales in: streamed requests of TRICKLE_TOKENS tokens (about
# 9 s each on the lab's engine, 0.03 s a token) arriving at TRICKLE_RATE a second, so every engine
# streams a few answers when its pod is deleted — and each one is shorter than the harness's fix of
# defect 10 lets a scaled-in engine run on (fixes.SHUTDOWN_SECONDS).
TRICKLE_RATE = 1.0
TRICKLE_TOKENS = 300
TRICKLE_PROMPT = 200


@dataclass
class ScaleIn:
    """Load that takes the model to maxReplicaCount, then a trickle of long streamed requests while
    the HPA scales in: every answer's outcome, and when each engine pod was deleted."""

    maximum: int
    minimum: int
    scaled_out: waits.Seen[k.Obj | None] | None = None  # premise: spec.replicas == maximum under load
    scaled_in: waits.Seen[list[k.Obj]] | None = None  # premise: the engines down to the minimum, pods gone
    deleted: dict[str, float] = field(default_factory=dict)  # engine pod -> its deletionTimestamp (wall clock)
    trickle: load.LoadResult | None = None
    timeline: Timeline | None = None
    not_run: NotRun | None = None

    def outcomes(self) -> dict[str, list[load.RequestRecord]]:
        """Each answer of the trickle by what happened to it (`outcome`)."""
        out: dict[str, list[load.RequestRecord]] = {}
        for record in self.trickle.records if self.trickle is not None else []:
            out.setdefault(outcome(record), []).append(record)
        return out

    @property
    def lost(self) -> list[load.RequestRecord]:
        return [r for name, records in self.outcomes().items() if name != "completed" for r in records]

    def explain(self) -> str:
        if self.not_run:
            return self.not_run.explain()
        counts = {name: len(records) for name, records in self.outcomes().items()}
        first = min(self.deleted.values(), default=None)
        lines = [f"{len(self.trickle.records) if self.trickle else 0} answers: "
                 + ", ".join(f"{n} {name}" for name, n in sorted(counts.items())),
                 f"{len(self.deleted)} engine pod(s) deleted"
                 + (f", the first at {time.strftime('%H:%M:%S', time.gmtime(first))} UTC" if first else "")]
        for record in self.lost[:5]:
            offset = record.started - first if first else 0.0
            when = (f"{abs(offset):.1f}s {'after' if offset >= 0 else 'before'} the first deletion" if first
                    else "(no engine pod was deleted)")
            lines.append(f"request {record.index} ({outcome(record)}: {CAUSES[outcome(record)]}) started {when}, "
                         f"{record.output_tokens} of {TRICKLE_TOKENS} tokens"
                         + (f", {record.error}" if record.error else ""))
        return "; ".join(lines)


# What each outcome means for the client, and its cause (docs/termination.md).
CAUSES = {
    "completed": "the whole answer",
    "aborted": "finish_reason abort: its engine was shut down (SIGTERM) and ended it with the tokens it had",
    "cut": "the stream closed without [DONE]: its engine was killed, or stopped after its shutdown timeout",
    "refused": "an HTTP error status from the router (no engine, or every engine failed before answering)",
    "failed": "no answer: the connection failed",
    "cancelled": "cancelled by the harness at the end of the trickle",
}


def outcome(record: load.RequestRecord) -> str:
    if record.cancelled:
        return "cancelled"
    if record.aborted:
        return "aborted"
    if record.ok:
        return "completed"
    if record.status not in (None, 200):
        return "refused"
    if record.error and record.error.startswith("IncompleteStream"):
        return "cut"
    return "failed"


def scale_in_under_traffic(stack: Stack) -> ScaleIn:
    """From step 4's stack (with the fixes scaling past one replica needs, not defect 10's unless the
    run asked for it): load until the HPA holds maxReplicaCount, then — the load stopped — a trickle
    of long streamed requests while the HPA scales in to its minimum and the lab's kubelet terminates
    the deleted engine pods (SIGTERM, their grace period, SIGKILL: docs/termination.md)."""
    with Scenario(stack) as sc:
        so, cfg = sc.so, stack.config
        hpa = stack.hpa.get()
        result = ScaleIn(so.max_replicas, max(hpa.min_replicas or 1, 1))
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-scale-in", threshold=sc.threshold).start())
        result.timeline = tl
        loading: step6_scale_up.LoadRun | None
        loading, result.scaled_out, result.not_run = load_to_maximum(stack, so, after=60)

        def stop_loading() -> None:  # unless stopped already, for the trickle
            if loading is not None:
                _stop_load(tl, loading)

        sc.restore(stop_loading)
        if not result.not_run:
            result.scaled_out = stack.engine.reach(
                k.ready_replicas_at_least(result.maximum), cfg.profile_settings.engine_ready_seconds + 30,
                f"{result.maximum} engines Ready")
            if not result.scaled_out.reached:
                result.not_run = NotRun(f"the load never took the model to {result.maximum} Ready replicas: "
                                        f"{result.scaled_out.explain()}")
        if result.not_run:
            return result
        _stop_load(tl, loading)
        loading = None
        tl.event("load stopped; trickle starts")
        # Until the HPA's scale-down window has passed and it has acted, plus the pods' grace period.
        window = hpa.scale_down_window
        budget = window + 2 * (so.polling_interval + cfg.profile_settings.hpa_sync_seconds) + 30 + floors.MARGIN
        issue = budget + 5  # the trickle runs on past the scale-in: the last engine's answers count too
        config = load.LoadConfig(base_url=stack.router_base(), num_requests=int(TRICKLE_RATE * issue) + 1,
                                 prompt_len=TRICKLE_PROMPT, max_tokens=TRICKLE_TOKENS, stream=True,
                                 rate=TRICKLE_RATE, timeout=budget + 120)
        trickle = load.Background("trickle", lambda: load.run(config))
        result.scaled_in = stack.kube.reach_list(
            "v1", "Pod", stack.namespace, engine_selector(stack),
            lambda pods: len(pods) <= result.minimum and not any(p["metadata"].get("deletionTimestamp") for p in pods),
            budget, f"the engines scaled in to {result.minimum} and the deleted pods gone (budget {budget:.0f}s: "
                    f"scale-down window {window:g}s, 2 × (poll + HPA sync), 30s grace, margin)")
        for _t, pods in result.scaled_in.history:
            for pod in pods:
                stamp = pod["metadata"].get("deletionTimestamp")
                if stamp and pod["metadata"]["name"] not in result.deleted:
                    result.deleted[pod["metadata"]["name"]] = k.api_time(stamp)
        if result.scaled_in.reached:
            tl.event(f"scaled in to {result.minimum}")
        try:
            result.trickle = trickle.join(timeout=issue + TRICKLE_TOKENS + 120)
        except load.LoadError as exc:
            result.not_run = NotRun(f"the trickle could not run: {exc}")
        stack.echo(f"beyond: scale-in under traffic — {result.explain()}")
        return result


# ---- an empty query is not zero ---------------------------------------------------------------------
# The two configurations, each a fixture parameter: the page's trigger as published, and the
# recommendation — defect 11's fix (ignoreNullValues "false") with the page's fallback block.
NULL_CONFIGS = {"page": ((), ()), "null-is-an-error": ((11,), ("scenario-fallback.yaml",))}
NO_SUCH_POD = "vllm-stack-e2e.io/no-such-pod"


@dataclass
class VanishedQueue:
    """Load holds the model at maxReplicaCount; then the engines' series vanish (their Service made to
    select no pod, so Prometheus loses its targets) while the load goes on."""

    config: str  # a NULL_CONFIGS key
    maximum: int
    floor: int  # the replicas the model must keep: the fallback's, else the maximum it had
    scaled: waits.Seen[k.Obj | None] | None = None  # premise: spec.replicas == maximum under load
    vanished: waits.Seen[float | None] | None = None  # premise: the trigger's query matches no series
    held: waits.Held[k.Obj | None] | None = None  # spec.replicas ≥ floor while the series are gone
    fallback: waits.Seen[k.Obj | None] | None = None  # the ScaledObject's Fallback=True (with a fallback)
    keda_errors: float | None = None  # errors KEDA counted for the ScaledObject while the series were gone
    keda_unread: str = ""  # why KEDA's counter could not be read (then keda_errors is None)
    timeline: Timeline | None = None
    not_run: NotRun | None = None


@contextmanager
def engine_service_selects_nothing(stack: Stack) -> Iterator[str]:
    """The engines' series vanish for real: their Service gets one more selector key that no pod
    carries, so its endpoints empty and Prometheus (ServiceMonitor or the observability install's
    selection) loses the targets and marks their series stale. Routing is untouched (the router finds
    engines by pod). Restored on the way out — the key removed, helm's own keys never touched."""
    name = f"{stack.config.release}-{stack.config.model}-engine-service"
    stack.kube.patch("v1", "Service", name, stack.namespace, {"spec": {"selector": {NO_SUCH_POD: "scenario"}}})
    stack.echo(f"beyond: Service {name} selects no pod (selector {NO_SUCH_POD}=scenario)")
    try:
        yield name
    finally:
        stack.kube.patch("v1", "Service", name, stack.namespace, {"spec": {"selector": {NO_SUCH_POD: None}}})
        stack.echo(f"beyond: Service {name} selects the engines again")


def vanished_queue(stack: Stack, config: str) -> VanishedQueue:
    """From step 4's stack (fixes for 2+ replicas, and NULL_CONFIGS[config]): load until the HPA holds
    maxReplicaCount; break the engines' Service; wait until the trigger's query matches no series;
    then hold the Deployment at the floor for as long as a scale-in the empty reading asks for would
    take (the HPA's scale-down window, two polls and syncs, 5 s)."""
    numbers, also = NULL_CONFIGS[config]
    with Scenario(stack, fixed=(*FIXED_FOR_MULTI_REPLICA, *numbers), also=also) as sc:
        so, cfg = sc.so, stack.config
        fallback = int((so.fallback or {}).get("replicas") or 0)
        result = VanishedQueue(config, so.max_replicas, fallback or so.max_replicas)
        hpa = stack.hpa.get()
        lag = reading_lag(stack)
        tl = sc.timeline(step6_scale_up.timeline(stack, f"beyond-null-{config}", threshold=sc.threshold).start())
        result.timeline = tl
        gone = 3 * lag + floors.MARGIN  # targets dropped, then Prometheus's end-of-run staleness (2 intervals)
        window = hpa.scale_down_window + 2 * (so.polling_interval + cfg.profile_settings.hpa_sync_seconds) + 5
        run, result.scaled, result.not_run = load_to_maximum(stack, so, after=gone + window + 60)
        sc.restore(_stop_load, tl, run)
        if result.not_run:
            return result
        query = defects.scope_to_namespace(so.query, stack.namespace)
        since = keda_count(stack)
        with engine_service_selects_nothing(stack):
            tl.event("engine Service selects no pod")
            result.vanished = stack.prometheus().reach_value(
                query, lambda v: v is None, gone, f"the trigger's query {query} matches no series (budget "
                f"{gone:.0f}s: 3 reading lags of {lag:g}s, the targets dropped and their series marked stale, "
                f"+ margin {floors.MARGIN:g}s)")
            if not result.vanished.reached:
                result.not_run = NotRun(f"the engines' series never vanished: {result.vanished.explain()}")
                return result
            tl.event("the queue's series gone")
            result.held = stack.engine.hold(k.spec_replicas("≥", result.floor), window,
                                            f"spec.replicas ≥ {result.floor} while the queue's series are gone "
                                            f"({window:.0f}s: scale-down window, 2 polls and syncs, 5s)")
            if fallback:
                result.fallback = stack.scaledobject.reach(k.has_condition("Fallback"), 1.0,
                                                           f"ScaledObject {cfg.scaledobject} Fallback=True")
            until = keda_count(stack)
            if since.value is not None and until.value is not None:
                result.keda_errors = until.value - since.value
            else:
                result.keda_unread = since.unread or until.unread or "not read"
        stack.echo(f"beyond: empty query ({config}) — {'held' if result.held.held else 'scaled in'}: "
                   f"{result.held.explain()}; KEDA errors meanwhile: {result.keda_errors}")
        return result


# ---- two stacks on one cluster ---------------------------------------------------------------------
SECOND_RELEASE = "vllm2"  # the release name a second stack takes when the page's `vllm` is refused


@dataclass
class TwoStacks:
    """A second stack of the page beside the run's, in its own namespace: whether the page's own
    install command gives one (the same release name, `vllm`), and — with the second stack queueing
    and the run's idle — what the run's trigger query reads, as KEDA evaluates it."""

    namespace: str  # the second stack's
    same_name: str  # helm's answer to `helm install vllm` in the second namespace: "" when it installed
    release: str = ""  # the second stack's release (the page's, or SECOND_RELEASE when that was refused)
    queued: waits.Seen[float | None] | None = None  # the second stack's own queue above the threshold
    page_query: str = ""  # the run's deployed trigger query (trigger 0)
    read: list[tuple[str, float]] = field(default_factory=list)  # what it returned then: (namespace, value)
    scoped_query: str = ""  # the same query with the run's namespace selected (the fix of defect 9)
    scoped_read: list[tuple[str, float]] = field(default_factory=list)
    not_run: NotRun | None = None

    def foreign(self, reads: list[tuple[str, float]], own: str) -> list[tuple[str, float]]:
        return [(ns, v) for ns, v in reads if ns != own]


def _read_by_namespace(stack: Stack, query: str) -> list[tuple[str, float]]:
    """The query's result on the run's Prometheus, each element named by its namespace (an
    aggregated result has none: its one value is the run's only if nothing foreign went in)."""
    return [(s.labels.get("namespace", "(aggregated)"), s.value) for s in stack.prometheus().query(query)]


def _second_stack(stack: Stack, namespace: str, release: str) -> Stack:
    """A Stack for the second release: the run's chart, backend and run label, its own namespace,
    release name and report folder."""
    second = Stack(dataclasses.replace(stack.config, namespace=namespace, release=release,
                                       reports_dir=stack.config.run_dir / "second-stack"), stack.backend, stack.echo)
    second._chart = stack.chart
    return second


def two_stacks(stack: Stack) -> TwoStacks:
    """Install the page's step-2 release in a second namespace as a second team would (the page's
    command: `helm install vllm …`); if the cluster refuses it, install it under another release
    name. Load the second stack until its queue is above the threshold, then read the run's own
    trigger query — the page's, as the run deployed it at step 4 — on the run's Prometheus, and the
    same query with the run's namespace selected (the fix of defect 9)."""
    # The run's step-4 trigger, as the page (and FIX_DEFECTS) make it: no harness fix.
    with Scenario(stack, fixed=()) as sc:
        threshold = sc.threshold
        namespace = f"{stack.namespace}-b"[:63]
        second = _second_stack(stack, namespace, stack.config.release)
        stack.record("namespace", namespace)  # the run's own cleanup (and an interruption's) removes it
        result = TwoStacks(namespace, same_name="")

        def remove_second() -> None:
            second.close()
            if result.release:
                stack.backend.helm.uninstall(result.release, namespace=namespace)
            _remove_namespace(stack, namespace)

        sc.restore(remove_second)
        try:
            step2_vllm.install(second)
            result.release = second.config.release
        except HelmError as exc:  # the cluster's refusal is the observation
            said = str(exc)  # helm's own words, after the command line the harness prints first
            result.same_name = said[said.find("Error:"):] if "Error:" in said else said
            result.same_name = result.same_name.strip()[:500]
            stack.echo(f"beyond: a second `helm install {second.config.release}` in {namespace} was refused: "
                       f"{result.same_name}")
            second.close()
            stack.backend.helm.uninstall(second.config.release, namespace=namespace)
            second = _second_stack(stack, namespace, SECOND_RELEASE)
            step2_vllm.install(second)
            result.release = SECOND_RELEASE
        result.page_query = sc.so.query
        result.scoped_query = defects.scope_to_namespace(result.page_query, stack.namespace)
        tl = sc.timeline(step6_scale_up.timeline(stack, "beyond-two-stacks", threshold=threshold).start())
        run = step6_scale_up.LoadRun(second, target=threshold, budget=600).start()
        sc.restore(run.stop)
        rise = run.rise
        result.queued = second.prometheus().reach_value(
            step6_scale_up.queue_query(second), lambda v: v is not None and v > threshold, rise.seconds,
            f"the second stack's queue above {threshold:g} (budget {rise})")
        if not result.queued.reached:
            result.not_run = NotRun(f"the second stack never queued: {result.queued.explain()}")
            return result
        tl.event("second stack queueing")
        # The run's Prometheus scrapes the second stack too if its discovery reaches that namespace:
        # read once it holds the second stack's queue, or after two reading lags and the margin.
        lag = reading_lag(stack)
        foreign = f'{{__name__=~"vllm[:_]num_requests_waiting",namespace="{namespace}"}}'
        seen = waits.until(waits.polling(lambda: _read_by_namespace(stack, foreign), 1.0), bool,
                           2 * lag + floors.MARGIN, "the run's Prometheus holds the second stack's queue",
                           show=lambda reads: str(reads) if reads else "no series of the second stack")
        stack.echo(f"beyond: the run's Prometheus {'scrapes' if seen.reached else 'does not scrape'} the second "
                   f"stack's engines")
        result.read = _read_by_namespace(stack, result.page_query)
        result.scoped_read = _read_by_namespace(stack, result.scoped_query)
        stack.echo(f"beyond: with the second stack queueing, the run's trigger query {result.page_query!r} reads "
                   f"{result.read}; with its namespace selected {result.scoped_read}")
        return result


