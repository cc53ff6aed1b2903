"""Step 6: generate load through the router (the tutorial's port-forward) and watch the engine
Deployment grow. Load is adaptive: concurrency rises until Prometheus shows the queue above the
trigger's threshold, then holds there until the claim is settled — a fixed burst of
100 × 3000-token requests may never queue on a large GPU and queues for minutes on a small one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import kube as k
from .. import load, waits
from ..kube import Deployment
from ..timeline import Timeline
from ..context import Stack

PROMPT_LEN = 3000  # the tutorial's --prompt-len
MAX_TOKENS = 64


def queue_query(stack: Stack) -> str:
    return f'sum(vllm:num_requests_waiting{{namespace="{stack.namespace}"}})'


def timeline(stack: Stack, name: str, threshold: float | None = None) -> Timeline:
    cfg = stack.config
    tl = Timeline(name=name, kube=stack.kube, namespace=stack.namespace, deployment=cfg.engine_deployment,
                  scaledobject=cfg.scaledobject, hpa=cfg.hpa, prometheus=stack.prometheus,
                  keda=stack.backend.keda_metrics, queue_query=queue_query(stack), threshold=threshold)
    stack.timelines[name] = tl
    return tl


@dataclass
class LoadRun:
    """Adaptive load in the background; `stop()` ends it early and returns its result."""

    stack: Stack
    target: float
    budget: float
    max_concurrency: int = 96
    start_concurrency: int = 4
    step: int = 4
    step_interval: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _job: load.Background | None = None

    def start(self) -> "LoadRun":
        query = queue_query(self.stack)
        config = load.LoadConfig(base_url=self.stack.router_base(), num_requests=100_000, prompt_len=PROMPT_LEN,
                                 max_tokens=MAX_TOKENS, stream=False, timeout=self.budget + 60)
        self._job = load.Background("load", lambda: load.drive(
            config, lambda: self.stack.prometheus().scalar(query), target=self.target, hold=self.budget,
            start_concurrency=self.start_concurrency, step=self.step, step_interval=self.step_interval,
            max_concurrency=self.max_concurrency,
            max_requests=20_000, budget=self.budget, probe_interval=1.0, stop=self._stop))
        return self

    def stop(self) -> load.AdaptiveResult | None:
        self._stop.set()
        return self._job.join(timeout=60) if self._job is not None else None


@dataclass
class ScaleUp:
    """What a scale-up under load observed: the queue against the threshold, then the Deployment
    against the wanted count. Claims are judged by the tests; nothing here raises for them."""

    threshold: float
    at_least: int
    budget: float
    queue: waits.Seen[float | None]  # the queue above the threshold
    grew: waits.Seen[k.Obj | None] | None  # spec.replicas ≥ at_least (None: the queue never got there)
    load: dict[str, Any]
    timeline: Timeline

    @property
    def crossed_at(self) -> float | None:
        return self.queue.at if self.queue.reached else None

    @property
    def grew_at(self) -> float | None:
        return self.grew.at if self.grew is not None and self.grew.reached else None

    @property
    def grown_to(self) -> int:
        return Deployment(self.grew.state).spec_replicas if self.grew is not None else 0

    @property
    def reaction_seconds(self) -> float | None:
        return self.grew.elapsed if self.grew is not None and self.grew.reached else None

    def grew_within_budget(self) -> bool:
        return self.reaction_seconds is not None and self.grown_to >= self.at_least

    def explain(self) -> str:
        """What was seen, in one line, for the claim's assertion message."""
        if not self.queue.reached:
            return f"the load never got the queue above {self.threshold:g}: {self.queue.explain()}"
        assert self.grew is not None
        return self.grew.explain()


def scale_up_budget(stack: Stack, polling_interval: float) -> float:
    """Polling interval + HPA sync period + one engine's readiness, with margin for scheduling."""
    profile = stack.config.profile_settings
    return 2 * (polling_interval + profile.hpa_sync_seconds) + profile.engine_ready_seconds + 30


def drive_until_replicas(stack: Stack, tl: Timeline, threshold: float, at_least: int, polling_interval: float,
                         max_concurrency: int = 96) -> ScaleUp:
    """Drive the queue above `threshold`, then watch for spec.replicas ≥ `at_least`: the observation."""
    budget = scale_up_budget(stack, polling_interval)
    cfg = stack.config
    run = LoadRun(stack, target=threshold, budget=budget * 2 + 60, max_concurrency=max_concurrency).start()
    stack.echo(f"driving load through svc/{cfg.router_service} until the queue is above {threshold:g}")
    started = time.time()
    grew = None
    try:
        queue = stack.prometheus().reach_value(queue_query(stack), lambda v: v is not None and v > threshold, budget,
                                               f"queue {queue_query(stack)} above {threshold:g}")
        if queue.reached:
            tl.event(f"queue above {threshold:g}")
            grew = stack.kube.reach(*k.DEPLOYMENT, cfg.engine_deployment, stack.namespace,
                                    k.spec_replicas("≥", at_least), budget,
                                    f"Deployment {cfg.engine_deployment} spec.replicas ≥ {at_least} "
                                    f"(budget {budget:.0f}s = 2×(polling {polling_interval:g}s + HPA sync "
                                    f"{cfg.profile_settings.hpa_sync_seconds:g}s) + engine ready "
                                    f"{cfg.profile_settings.engine_ready_seconds:g}s + 30s)",
                                    hint="see the HPA's events and the ScaledObject's conditions",
                                    context=lambda: _queue_against(tl, threshold))
            if grew.reached:
                tl.event(f"spec.replicas ≥ {at_least}")
    finally:
        result = run.stop()
        if result is not None:
            for phase in result.phases:
                tl.span(f"load:{phase.name}", phase.start, phase.end)
    return ScaleUp(threshold=threshold, at_least=at_least, budget=budget, queue=queue, grew=grew,
                   load=result.to_dict() if result else {"started": started}, timeline=tl)


def _queue_against(tl: Timeline, threshold: float) -> str:
    """The live line's queue fact: `queue 12.0 > 5` or `queue 4.0 ≤ 5` (empty before a sample)."""
    if not tl.samples or tl.samples[-1].queue is None:
        return ""
    queue = tl.samples[-1].queue
    return f"queue {queue:g} {'>' if queue > threshold else '≤'} {threshold:g}"
