"""Step 6: generate load through the router (the tutorial's port-forward) and watch the engine
Deployment grow. Load is adaptive: concurrency rises until Prometheus shows the queue above the
trigger's threshold, then holds there until the claim is settled — a fixed burst of
100 × 3000-token requests may never queue on a large GPU and queues for minutes on a small one.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import kube as k
from .. import floors, load, waits
from ..defects import scope_to_namespace
from ..kube import Deployment
from ..prom import colon_names
from ..observed import observed
from ..timeline import Timeline
from ..context import Stack
from . import step1_observability

PROMPT_LEN = 3000  # the tutorial's --prompt-len
# As the page's load generator sends them (tutorials/assets/example-10-load-generator.py at a6c01db:
# `max_tokens=80, stream=True`). Streamed matters beyond fidelity: when the load stops, the router
# closes a streamed request's engine connection and vLLM aborts it, while a non-streamed one runs to
# the end on the engine (the router waits for its headers) — the next scenario would wait it out.
MAX_TOKENS = 80
STREAM = True


# The load's ceiling when the engines' capacity cannot be read (no `vllm:cache_config_info`): what
# the harness used before it read capacity, enough for the lab's small engine.
DEFAULT_CEILING = 96
# The most concurrent streams the load generator is asked to hold (one client process, async): a
# ceiling above it is cut to it, and the run says so.
LOAD_LIMIT = 1024
# Tokens one of the load's requests holds in KV at its end: prompt, output, the chat template's few.
REQUEST_TOKENS = PROMPT_LEN + MAX_TOKENS + 16


@dataclass(frozen=True)
class Capacity:
    """How many of the load's requests one engine runs at once, at most, and where that was read."""

    running: int | None  # None: unknown
    why: str


def engine_capacity(stack: Stack) -> Capacity:
    """The run's engines' capacity for the load's requests: their KV cache (vLLM's `vllm:cache_config_info`,
    `num_gpu_blocks` × `block_size`, the smallest engine's) in whole blocks per request, and the
    engine command's `--max-num-seqs` when it gives one (vLLM exports no metric of it). The step's
    token budget can only lower how many run, so this is an upper bound."""
    found = stack.prometheus().query(f'{{__name__=~"vllm[:_]cache_config_info",namespace="{stack.namespace}"}}')
    sizes = []
    for sample in found:
        try:
            sizes.append((int(sample.labels["num_gpu_blocks"]), int(sample.labels["block_size"])))
        except (KeyError, ValueError):
            continue
    if not sizes:
        return Capacity(None, "the engines export no vllm:cache_config_info with num_gpu_blocks and block_size")
    blocks, block_size = min(sizes)
    per_request = math.ceil(REQUEST_TOKENS / block_size)
    running = blocks // per_request
    why = (f"KV {blocks} blocks × {block_size} = {blocks * block_size} tokens / {per_request} blocks per "
           f"{PROMPT_LEN}+{MAX_TOKENS}-token request = {running}")
    flag = stack.engine.get().flag("--max-num-seqs")
    seqs = int(flag) if flag and flag.isdigit() else None
    if seqs is not None and seqs < running:
        running, why = seqs, f"{why}; --max-num-seqs {seqs}"
    return Capacity(max(running, 1), why + " running per engine at most")


@dataclass(frozen=True)
class Ceiling:
    """The load's most concurrent requests, and why that many."""

    concurrency: int
    why: str

    def __str__(self) -> str:
        return f"{self.concurrency} ({self.why})"


def load_ceiling(capacity: Capacity, target: float, at_least: int) -> Ceiling:
    """Enough concurrent requests to queue more than `target` with `at_least` engines each running
    all it can: at_least × running + 2 × target + 1, cut to LOAD_LIMIT."""
    if capacity.running is None:
        return Ceiling(DEFAULT_CEILING, f"the harness's default: {capacity.why}")
    wanted = at_least * capacity.running + math.ceil(2 * target) + 1
    why = f"{at_least} engines × {capacity.running} running + 2 × queue {target:g} + 1; {capacity.why}"
    if wanted > LOAD_LIMIT:
        return Ceiling(LOAD_LIMIT, f"cut from {wanted} to the load generator's limit of {LOAD_LIMIT}: {why}")
    return Ceiling(wanted, why)


def queue_query(stack: Stack) -> str:
    return f'sum(vllm:num_requests_waiting{{namespace="{stack.namespace}"}})'


def running_query(stack: Stack) -> str:
    """The engines' running requests: their series carry `model_name`; the router's own gauge of the
    same name (per `server`) does not, and would count every request twice."""
    return f'sum(vllm:num_requests_running{{namespace="{stack.namespace}",model_name!=""}})'


def timeline(stack: Stack, name: str, threshold: float | None = None) -> Timeline:
    cfg = stack.config
    tl = Timeline(name=name, kube=stack.kube, namespace=stack.namespace, deployment=cfg.engine_deployment,
                  scaledobject=cfg.scaledobject, hpa=cfg.hpa, prometheus=stack.prometheus,
                  keda=stack.backend.keda_metrics, queue_query=queue_query(stack),
                  running_query=running_query(stack), threshold=threshold)
    stack.timelines[name] = tl
    return tl


@dataclass
class LoadRun:
    """Adaptive load in the background; `stop()` ends it early and returns its result."""

    stack: Stack
    target: float
    budget: float
    max_concurrency: int | None = None  # None: from the engines' capacity (load_ceiling), read once
    at_least: int = 2  # engines the capacity-derived ceiling must be able to queue past `target`
    start_concurrency: int = 4
    step: int | None = None  # None: the ceiling in RAMP_STEPS steps, 8 at least
    step_interval: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _job: load.Background | None = None
    _ceiling: Ceiling | None = None
    error: str | None = None  # why the load stopped on its own (e.g. the router listed no model)

    RAMP_STEPS = 12  # the ramp reaches its ceiling in 12 steps of step_interval: the queue budget counts it

    @property
    def ceiling(self) -> Ceiling:
        """The most concurrent requests the load sends, and why (printed when the load starts)."""
        if self._ceiling is None:
            self._ceiling = (Ceiling(self.max_concurrency, "set by the scenario") if self.max_concurrency is not None
                             else load_ceiling(engine_capacity(self.stack), self.target, self.at_least))
        return self._ceiling

    @property
    def step_size(self) -> int:
        return self.step or max(8, math.ceil((self.ceiling.concurrency - self.start_concurrency) / self.RAMP_STEPS))

    def start(self) -> "LoadRun":
        query = queue_query(self.stack)
        ceiling, step = self.ceiling.concurrency, self.step_size
        config = load.LoadConfig(base_url=self.stack.router_base(), num_requests=100_000, prompt_len=PROMPT_LEN,
                                 max_tokens=MAX_TOKENS, stream=STREAM, timeout=self.budget + 60)
        self._job = load.Background("load", lambda: load.drive(
            config, lambda: self.stack.prometheus().scalar(query), target=self.target, hold=self.budget,
            start_concurrency=self.start_concurrency, step=step, step_interval=self.step_interval,
            max_concurrency=ceiling,
            max_requests=20_000, budget=self.budget, probe_interval=1.0, stop=self._stop))
        return self

    @property
    def ramp_seconds(self) -> float:
        """How long the load takes to reach its ceiling from its first concurrency."""
        steps = math.ceil(max(self.ceiling.concurrency - self.start_concurrency, 0) / self.step_size)
        return steps * self.step_interval

    @property
    def rise(self) -> floors.Budget:
        """The budget for the queue to show above the threshold once the load starts (floors.queue_rise)."""
        return floors.queue_rise(self.ramp_seconds, reading_lag(self.stack))

    def failed(self) -> str | None:
        """Why the load ended by itself before it was stopped (None while it runs or ran well)."""
        job = self._job
        if job is not None and job.done and job.error is not None:
            return f"{type(job.error).__name__}: {job.error}"
        return None

    def stop(self) -> load.AdaptiveResult | None:
        """End the load and return its result; a load that could not run is recorded in `error`
        (an observation of the scenario, never an error of its fixture)."""
        self._stop.set()
        if self._job is None:
            return None
        try:
            return self._job.join(timeout=60)
        except load.LoadError as exc:
            self.error = str(exc)
            return None


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
    load_error: str | None = None  # the load could not run (no model listed, router unreachable)
    ceiling: Ceiling | None = None  # the load's most concurrent requests, and why

    @property
    def load_line(self) -> str:
        """The load against the engines: its concurrency (peak, ceiling and why) and, from the timeline,
        the requests the engines ran and queued at their peak — "the load was too small" told apart
        from "the metric is missing"."""
        peak = max((int(c) for _, _, c in self.load.get("samples") or []), default=None)
        running = [s.running for s in self.timeline.samples if s.running is not None]
        queued = [s.queue for s in self.timeline.samples if s.queue is not None]
        parts = [f"load concurrency up to {peak if peak is not None else '?'}"
                 + (f" of ceiling {self.ceiling}" if self.ceiling else ""),
                 f"engines running at most {max(running):g}" if running else "engines' running requests never read",
                 f"queue at most {max(queued):g}" if queued else "queue never read"]
        return "; ".join(parts)

    @property
    def crossed_at(self) -> float | None:
        return self.queue.at if self.queue.reached else None

    @property
    def grew_at(self) -> float | None:
        return self.grew.at if observed(self.grew) else None

    @property
    def grown_to(self) -> int:
        return Deployment(self.grew.state).spec_replicas if self.grew is not None else 0

    @property
    def reaction_seconds(self) -> float | None:
        return self.grew.elapsed if observed(self.grew) else None

    def grew_within_budget(self) -> bool:
        return self.reaction_seconds is not None and self.grown_to >= self.at_least

    def explain(self) -> str:
        """What was seen, in one line, for the claim's assertion message."""
        if self.load_error and not self.queue.reached:
            return f"the load could not drive the queue: {self.load_error}; {self.queue.explain()}"
        if not self.queue.reached:
            return f"the load never got the queue above {self.threshold:g}: {self.queue.explain()}; {self.load_line}"
        assert self.grew is not None
        return self.grew.explain()




def reading_lag(stack: Stack) -> float:
    """How long a change in the queue takes to show in Prometheus: the longest scrape interval of
    the run's targets (5 s on the lab's first edition and the fast profile, the chart's 30 s
    ServiceMonitor default otherwise), plus 1 s for the scrape itself; with no target at all (a
    Prometheus that selects none of the release's ServiceMonitors), what those ask for."""
    intervals = [t.scrape_interval for t in stack.prometheus().targets()
                 if t.labels.get("namespace") == stack.namespace and t.scrape_interval > 0]
    return max(intervals) + 1.0 if intervals else step1_observability.monitors_lag(stack)


@dataclass
class SeriesMatch:
    """What the trigger's own query returned while an engine ran: KEDA reads an empty result as 0
    (`ignoreNullValues` defaults to true), and a series nobody scrapes any more keeps its last
    value for Prometheus's 5-minute lookback — so "the queue reads 0" is only a reading when the
    query matched a series that is being scraped."""

    query: str  # the trigger's query as deployed, scoped to the run's namespace
    series: int  # how many series it matched at the reading
    fresh: waits.Held[float | None]  # series of its metric scraped within `lag`, until a step-4 change shows
    lag: float

    @property
    def matched(self) -> bool:
        return self.series > 0 and self.fresh.held

    def explain(self) -> str:
        if self.series == 0:
            return (f"the trigger's query `{self.query}` matched no series while an engine ran — KEDA reads that "
                    f"as 0 (ignoreNullValues defaults to true), whatever the queue is")
        if not self.fresh.held:
            return (f"the trigger's query `{self.query}` matched {self.series} series, but at "
                    f"+{self.fresh.broke_at:.0f}s none of them had been scraped in the last {self.lag:g}s "
                    f"({self.fresh.breaking}): Prometheus no longer scrapes the engines, and KEDA reads their "
                    f"last value until the series go stale")
        return (f"the trigger's query `{self.query}` matched {self.series} series, scraped within {self.lag:g}s "
                f"throughout {self.fresh.window:.0f}s")


def trigger_series(stack: Stack, query: str) -> SeriesMatch:
    """Read the trigger's `query` (scoped to the run's namespace: other stacks may share the
    cluster) and whether its metric's series are being scraped, holding that until a change of the
    last upgrade has surely reached Prometheus (floors.scrape_change after the upgrade, then one
    lag for a series left behind to age past it) — so a ServiceMonitor the upgrade removed is seen
    however soon after it the reading comes. Costs nothing when that time has already passed."""
    prom = stack.prometheus()
    lag = reading_lag(stack)
    scoped = scope_to_namespace(query, stack.namespace)
    names = colon_names(query) or ["vllm:num_requests_waiting"]
    fresh_query = f"count(time() - timestamp({scope_to_namespace(names[0], stack.namespace)}) <= {lag:g})"
    settled = (stack.upgraded_at or 0.0) + floors.scrape_change(lag).seconds + lag
    window = max(0.0, settled - time.time())
    fresh = waits.holds(waits.polling(lambda: prom.scalar(fresh_query), 1.0), lambda v: v is not None and v >= 1,
                        window, f"series of {names[0]} scraped within {lag:g}s ({window:.0f}s)",
                        show=lambda v: "no series scraped within the lag" if v is None else f"{v:g} series")
    return SeriesMatch(scoped, len(prom.query(scoped)), fresh, lag)


def scale_up_budget(stack: Stack, polling_interval: float) -> floors.Budget:
    """Step 6's budget for the replicas to follow a queue above the threshold (floors.replicas_follow)."""
    return floors.replicas_follow(polling_interval, stack.config.profile_settings.hpa_sync_seconds)


def drive_until_replicas(stack: Stack, tl: Timeline, threshold: float, at_least: int, polling_interval: float,
                         max_concurrency: int | None = None) -> ScaleUp:
    """Drive the queue above `threshold`, then watch for spec.replicas ≥ `at_least`: the observation.
    Each wait's budget is derived from what is deployed and printed (vllm_stack_e2e.floors)."""
    cfg = stack.config
    follow = scale_up_budget(stack, polling_interval)
    run = LoadRun(stack, target=threshold, budget=0.0, max_concurrency=max_concurrency, at_least=at_least)
    rise = run.rise
    run.budget = rise.seconds + follow.seconds + floors.MARGIN
    run.start()
    stack.echo(f"driving load through svc/{cfg.router_service} until the queue is above {threshold:g}; concurrency "
               f"up to {run.ceiling}, +{run.step_size} every {run.step_interval:g}s; budgets: queue {rise}; "
               f"replicas {follow}")
    started = time.time()
    grew = None
    try:
        # A load that ended by itself (no model to send to) ends the wait: the scenario records why.
        queue = stack.prometheus().reach_value(queue_query(stack),
                                               lambda v: (v is not None and v > threshold) or run.failed() is not None,
                                               rise.seconds, f"queue {queue_query(stack)} above {threshold:g} "
                                               f"(budget {rise})")
        if run.failed() is not None:
            queue.reached = False
        if queue.reached:
            tl.event(f"queue above {threshold:g}")
            grew = stack.engine.reach(k.spec_replicas("≥", at_least), follow.seconds,
                                      f"Deployment {cfg.engine_deployment} spec.replicas ≥ {at_least} (budget {follow})",
                                      hint="see the HPA's events and the ScaledObject's conditions",
                                      context=lambda: _queue_against(tl, threshold))
            if grew.reached:
                tl.event(f"spec.replicas ≥ {at_least}")
    finally:
        result = run.stop()
        if result is not None:
            record_load(tl, run, result)
    return ScaleUp(threshold=threshold, at_least=at_least, budget=follow.seconds, queue=queue, grew=grew,
                   load=result.to_dict() if result else {"started": started}, timeline=tl, load_error=run.error,
                   ceiling=run.ceiling)


def record_load(tl: Timeline, run: LoadRun, result: load.AdaptiveResult) -> None:
    """A finished load on the timeline: its phases as spans, its concurrency and ceiling."""
    for phase in result.phases:
        tl.span(f"load:{phase.name}", phase.start, phase.end)
    tl.load_concurrency(result.samples, run.ceiling.concurrency)


def _queue_against(tl: Timeline, threshold: float) -> str:
    """The live line's queue fact: `queue 12.0 > 5` or `queue 4.0 ≤ 5` (empty before a sample)."""
    if not tl.samples or tl.samples[-1].queue is None:
        return ""
    queue = tl.samples[-1].queue
    return f"queue {queue:g} {'>' if queue > threshold else '≤'} {threshold:g}"
