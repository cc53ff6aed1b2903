"""The simulated vLLM engine: vLLM V1's step-by-step scheduler (`scheduler.py`), timed, and its metrics.

The engine runs steps as vLLM's engine core does (schedule, execute, update): each step the
scheduler decides how many tokens each request computes within `max_num_batched_tokens`, the
step "executes" for the time the cost model below gives, then every request whose tokens are all
computed gets one output token, finished requests leave, and the gauges publish the state after
the step. New requests join the waiting queue at any time; the next step sees them.

Step cost model (what a step lasts; a model of the GPU's time, not of its arithmetic):

    step_s = inter_token_latency + prefill_tokens / prefill_tokens_per_s

- `inter_token_latency` is the fixed cost of one forward pass. A decode step is memory-bound
  (reading the weights and the KV cache), so at these batch sizes it costs about the same for 1
  or 256 sequences; the simulator takes a decode's own cost as 0, so a step with only decodes
  lasts exactly `inter_token_latency` at any batch size, and a decoding request gets a token
  every `inter_token_latency`, as `--sim-inter-token-latency` says.
- `prefill_tokens` (prompt chunks and recomputes in the step) add compute at
  `prefill_tokens_per_s`. A prompt of N tokens therefore costs N / prefill_tokens_per_s plus one
  `inter_token_latency` per step it spans (N / max_num_batched_tokens, rounded up): the tutorial's
  3000 tokens at 8000 tokens/s, alone on the engine, take 0.375 s + 2 × 0.03 s.
- Decodes sharing a step with a prefill chunk wait for it: their gap grows to
  inter_token_latency + chunk / prefill_tokens_per_s (vLLM's stall under chunked prefill); the
  budget bounds it (2048 tokens at 8000 tokens/s: 0.256 s).
- Steps chain on a nominal clock (each starts when the previous one was due to end), so the event
  loop's lateness does not accumulate. `itl_gaps`/`itl_abs_deviation` compare each decode gap with
  the gap the cost model meant (`inter_token_latency` when only decodes run): the timing error.

Idle, the engine has no timer and no task: `add_request` starts the next step.

`max_num_batched_tokens` defaults to 2048, vLLM's default for `vllm serve` on GPUs under 70 GiB
(and any A100): the tier whose `max_num_seqs` default (256) the simulator already uses, and the
size of GPU the lab simulates (24576 KV tokens, a 24 GB L4/A10's cache). With it the tutorial's
3000-token prompts take two steps each, so prefill still paces admission at
`prefill_tokens_per_s`, as before. H100-class GPUs get 8192 (with `max_num_seqs` 1024).

Requests finish with reason ``length`` after `max_tokens` tokens or at `max_model_len` (there
is no EOS), or ``abort`` when their client goes away or the engine shuts down (`abort_all`,
`add_aborted`; `sim.shutdown` says when). Every finish counts in `vllm:request_success_total` under
its reason, aborts included. `halt` stops the steps for good (vLLM ≤ 0.17's SIGTERM: the engine
processes are gone, requests in flight get no more tokens). All state lives on the asyncio loop that
serves the requests; none of it is thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from .scheduler import Scheduler, Sequence, StepPlan  # Sequence: api.py takes it from here

# Names exactly as vLLM V1 exposes them (prometheus_client adds `_total` to counters).
METRIC_NAMES = {
    "gauge": ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"),
    "counter": (
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
        "vllm:request_success_total", "vllm:num_preemptions_total",
    ),
    "histogram": (
        "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
        "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
    ),
}
# Info gauges (value 1, facts in their labels; no model_name label, as vLLM's).
INFO_METRICS = ("vllm:cache_config_info",)
LABELS = ("model_name", "engine")
FINISH_REASONS = ("stop", "length", "abort")

_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                    50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


def stored_metric_names() -> set[str]:
    """The sample names a scrape of an engine yields (histograms as _bucket/_sum/_count)."""
    names = set(METRIC_NAMES["gauge"]) | set(METRIC_NAMES["counter"]) | set(INFO_METRICS)
    for hist in METRIC_NAMES["histogram"]:
        names |= {f"{hist}_bucket", f"{hist}_sum", f"{hist}_count"}
    return names


@dataclass(frozen=True)
class EngineConfig:
    """One engine's model and simulated hardware. Times in seconds.

    `max_num_seqs` 256 and `max_num_batched_tokens` 2048 are vLLM's `vllm serve` defaults for a
    GPU under 70 GiB (module docstring); `block_size` 16 is vLLM's KV block on CUDA."""

    model: str = "sim-model"
    served_model_names: tuple[str, ...] = ()
    max_num_seqs: int = 256
    max_model_len: int = 16384
    kv_cache_tokens: int = 65536
    prefill_tokens_per_s: float = 8000.0
    inter_token_latency: float = 0.03
    engine_id: str = "0"
    default_max_tokens: int = 16
    startup_delay: float = 0.0
    max_num_batched_tokens: int = 2048
    block_size: int = 16

    @property
    def model_name(self) -> str:
        """The name in `model_name` labels and responses: the first served name, else the model."""
        return self.served_model_names[0] if self.served_model_names else self.model

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may use for this engine's model."""
        return self.served_model_names or (self.model,)

    @property
    def num_kv_blocks(self) -> int:
        """Whole blocks in the KV cache, as vLLM counts them (a partial block is no block)."""
        return self.kv_cache_tokens // self.block_size

    def step_seconds(self, prefill_tokens: int) -> float:
        """How long a step lasts (module docstring): the forward pass, plus its prefill tokens."""
        return self.inter_token_latency + prefill_tokens / self.prefill_tokens_per_s

    def validate(self) -> None:
        """Raise ValueError naming the first setting a real vLLM would refuse to start with."""
        self._validate_sizes()
        if self.num_kv_blocks * self.block_size < self.max_model_len:
            raise ValueError(
                f"KV cache of {self.kv_cache_tokens} tokens ({self.num_kv_blocks} blocks of {self.block_size}) "
                f"cannot hold one request of max_model_len {self.max_model_len} — raise --sim-kv-cache-tokens "
                "or lower --max-model-len"
            )
        if self.max_num_batched_tokens < self.max_num_seqs:  # vLLM's SchedulerConfig refuses it too
            raise ValueError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) must be greater than or equal to "
                f"max_num_seqs ({self.max_num_seqs}) — raise --max-num-batched-tokens or lower --max-num-seqs"
            )
        if self.prefill_tokens_per_s <= 0:
            raise ValueError(f"prefill_tokens_per_s must be > 0, got {self.prefill_tokens_per_s}")
        if self.inter_token_latency < 0:
            raise ValueError(f"inter_token_latency must be ≥ 0, got {self.inter_token_latency}")

    def _validate_sizes(self) -> None:
        for name, minimum in (("max_num_seqs", 1), ("max_model_len", 2), ("max_num_batched_tokens", 1),
                              ("block_size", 1), ("default_max_tokens", 1)):
            value = getattr(self, name)
            if value < minimum:
                raise ValueError(f"{name} must be ≥ {minimum}, got {value}")


class _WithoutCreated:
    """A registry view without `_created` samples: vLLM exposes through prometheus_client's
    multiprocess collector, which has none, so a real engine's scrape has none either."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class EngineMetrics:
    """vLLM V1's engine metrics for one (model_name, engine) pair, in their own registry."""

    def __init__(self, registry: CollectorRegistry, model_name: str, engine_id: str) -> None:
        labels = (model_name, engine_id)
        self.registry = registry
        self.exposition = _WithoutCreated(registry)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, LABELS, registry=registry)

        self.running = gauge("vllm:num_requests_running", "Requests in the model execution batch.").labels(*labels)
        self.waiting = gauge("vllm:num_requests_waiting", "Requests waiting to be scheduled.").labels(*labels)
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "Fraction of KV-cache in use (1 = full).").labels(*labels)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prefill tokens processed.", LABELS,
                                     registry=registry).labels(*labels)
        self.generation_tokens = Counter("vllm:generation_tokens", "Generation tokens processed.", LABELS,
                                         registry=registry).labels(*labels)
        success = Counter("vllm:request_success", "Finished requests, by finish reason.",
                          (*LABELS, "finished_reason"), registry=registry)
        self.success = {reason: success.labels(*labels, reason) for reason in FINISH_REASONS}
        self.preemptions = Counter("vllm:num_preemptions", "Preemptions of running requests.", LABELS,
                                   registry=registry).labels(*labels)


        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, LABELS, buckets=buckets, registry=registry)

        self.ttft = histogram("vllm:time_to_first_token_seconds", "Time to first token.", _TTFT_BUCKETS).labels(*labels)
        self.itl = histogram("vllm:inter_token_latency_seconds", "Time between output tokens.", _ITL_BUCKETS).labels(*labels)
        self.e2e = histogram("vllm:e2e_request_latency_seconds", "Arrival to finish.", _LATENCY_BUCKETS).labels(*labels)
        self.queue = histogram("vllm:request_queue_time_seconds", "Time spent waiting.", _LATENCY_BUCKETS).labels(*labels)
        self.prefill = histogram("vllm:request_prefill_time_seconds", "Time spent prefilling.", _LATENCY_BUCKETS).labels(*labels)
        self.decode = histogram("vllm:request_decode_time_seconds", "Time spent decoding.", _LATENCY_BUCKETS).labels(*labels)

    def cache_config(self, config: "EngineConfig") -> None:
        """vLLM's `vllm:cache_config_info`: an info gauge (value 1) whose labels carry the KV cache's
        size — `num_gpu_blocks` × `block_size` tokens — with no `model_name` label, as vLLM's has none."""
        info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", CACHE_CONFIG_LABELS,
                     registry=self.registry)
        info.labels(engine=config.engine_id, block_size=str(config.block_size), num_gpu_blocks=str(config.num_kv_blocks),
                    kv_cache_size_tokens=str(config.num_kv_blocks * config.block_size)).set(1)


# Of the labels vLLM's carries (every CacheConfig field), those the simulator can state truthfully.
CACHE_CONFIG_LABELS = ("engine", "block_size", "num_gpu_blocks", "kv_cache_size_tokens")


class Engine:
    """A simulated vLLM engine: steps of vLLM V1's scheduler on the event loop, and their metrics."""

    def __init__(self, config: EngineConfig, registry: CollectorRegistry | None = None) -> None:
        config.validate()
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = EngineMetrics(self.registry, config.model_name, config.engine_id)
        self.metrics.cache_config(config)
        self.started_at = time.time()
        self.scheduler = Scheduler(
            max_num_seqs=config.max_num_seqs, max_num_batched_tokens=config.max_num_batched_tokens,
            num_blocks=config.num_kv_blocks, block_size=config.block_size, max_model_len=config.max_model_len,
        )
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._step_handle: asyncio.Handle | None = None  # None: idle, no step due
        self._step_start = 0.0  # nominal start of the step being planned
        self._published: tuple[int, int, float] = (0, 0, 0.0)
        self.steps = 0
        self.finished_requests = 0
        self.aborted_requests = 0
        # Timing quality: decode gaps seen and their summed |gap - the gap the cost model meant|.
        self.itl_gaps = 0
        self.itl_abs_deviation = 0.0
        self.last_scrape_accept: str | None = None
        self.halted = False  # halt(): no step runs again

    # -- state -------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self.scheduler.running)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def kv_used(self) -> int:
        """KV tokens held, in whole blocks (a block is taken by its first token)."""
        return self.scheduler.used_blocks * self.config.block_size

    @property
    def kv_usage(self) -> float:
        """KV cache in use, 0–1: used blocks over all blocks, as vLLM's block pool reports it."""
        return self.scheduler.used_blocks / self.scheduler.num_blocks

    @property
    def idle(self) -> bool:
        """No step running or due: no timer on the loop."""
        return self._step_handle is None

    def refresh_gauges(self) -> None:
        """Set the gauges to the state after the last step (vLLM publishes its scheduler stats
        once per step, after it); called before every exposition."""
        running, waiting, usage = self._published
        self.metrics.running.set(running)
        self.metrics.waiting.set(waiting)
        self.metrics.kv_usage.set(usage)

    def stats(self) -> dict[str, object]:
        """The scheduler's state now as plain data, for `/sim/state` and tests."""
        return {
            "model": self.config.model_name, "engine": self.config.engine_id,
            "running": self.num_running, "waiting": self.num_waiting,
            "kv_used": self.kv_used, "kv_total": self.config.num_kv_blocks * self.config.block_size,
            "kv_blocks_used": self.scheduler.used_blocks, "kv_blocks_total": self.scheduler.num_blocks,
            "kv_usage": round(self.kv_usage, 4), "steps": self.steps, "finished": self.finished_requests,
            "aborted": self.aborted_requests, "last_scrape_accept": self.last_scrape_accept,
            "itl_gaps": self.itl_gaps, "itl_abs_deviation": self.itl_abs_deviation, "halted": self.halted,
        }

    # -- requests ----------------------------------------------------------------------
    def add_request(self, prompt_tokens: int, max_tokens: int, request_id: str | None = None) -> Sequence:
        """Queue a request (on the running loop); an idle engine starts a step for it."""
        loop = self._bind_loop()
        if not 0 < prompt_tokens < self.config.max_model_len or max_tokens < 1:
            raise ValueError(f"a request needs 1 ≤ prompt_tokens < max_model_len ({self.config.max_model_len}) "
                             f"and max_tokens ≥ 1; got {prompt_tokens} and {max_tokens}")
        seq = Sequence(request_id or f"req-{next(self._ids)}", prompt_tokens, max_tokens, arrival=loop.time())
        self.scheduler.add(seq)
        self._wake()
        return seq

    async def tokens(self, seq: Sequence) -> AsyncIterator[int]:
        """Yield how many new tokens `seq` produced since the last yield, until it finishes."""
        seen = 0
        while True:
            await seq.wake.wait()
            seq.wake.clear()
            new = seq.generated - seen
            if new:
                seen = seq.generated
                yield new
            if seq.finished:
                return

    def abort(self, seq: Sequence) -> None:
        """Drop a request whose client went away (no-op once finished): its blocks are free for
        the next step."""
        if seq.finished:
            return
        self.scheduler.remove(seq)
        self._finish(seq)
        self.aborted_requests += 1
        self._wake()
        if self.idle:
            self._publish()

    # -- shutdown (sim.shutdown decides when) -------------------------------------------
    def abort_all(self) -> int:
        """End every request in flight now, running or waiting, with finish_reason `abort` and the
        tokens it has (vLLM ≥ 0.18 on SIGTERM with `--shutdown-timeout 0`); returns how many."""
        seqs = [*self.scheduler.running, *self.scheduler.waiting]
        for seq in seqs:
            self.abort(seq)
        return len(seqs)

    def add_aborted(self, prompt_tokens: int, max_tokens: int, request_id: str | None = None) -> Sequence:
        """A request that arrives while the engine shuts down (vLLM ≥ 0.18): finished at once with
        finish_reason `abort` and no token; it never enters the scheduler. Counted like any abort."""
        loop = self._bind_loop()
        seq = Sequence(request_id or f"req-{next(self._ids)}", prompt_tokens, max_tokens, arrival=loop.time())
        seq.state, seq.finish_reason = "finished", "abort"
        self._finish(seq)
        self.aborted_requests += 1
        return seq

    def halt(self) -> None:
        """Stop stepping for good (vLLM ≤ 0.17 on SIGTERM: the engine processes are shut down). Requests
        in flight stay where they are and get no token; a client that leaves still frees its slot."""
        self.halted = True
        if self._step_handle is not None:
            self._step_handle.cancel()
            self._step_handle = None
        self._publish()

    # -- the step loop -----------------------------------------------------------------
    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an Engine serves one event loop; this request came from another")
        return loop

    def _wake(self) -> None:
        """Start a step soon when idle with work to do (a running step picks new work up itself)."""
        if self.idle and self.scheduler.has_work and not self.halted:
            assert self._loop is not None
            self._step_start = self._loop.time()
            self._step_handle = self._loop.call_soon(self._begin_step)

    def _begin_step(self) -> None:
        """Schedule one step and set a timer for its end; with nothing to schedule, go idle."""
        assert self._loop is not None
        self._step_handle = None
        plan = self.scheduler.schedule()
        if plan.preempted:
            self.metrics.preemptions.inc(len(plan.preempted))
        if not plan.tokens:  # nothing running or waiting (one request alone always fits)
            self._publish()
            return
        for seq in plan.admitted:
            if seq.scheduled_at is None:  # a late loop's nominal clock may trail the arrival
                seq.scheduled_at = max(self._step_start, seq.arrival)
        end = self._step_start + self.config.step_seconds(plan.prefill_tokens)
        self._step_handle = self._loop.call_at(end, self._end_step, plan, end)

    def _end_step(self, plan: StepPlan, end: float) -> None:
        """The step's time is up: apply it, count its tokens, publish, and start the next one."""
        assert self._loop is not None
        now = self._loop.time()
        out = self.scheduler.update(plan)
        for seq in out.sampled:
            self._on_token(seq, now, end, after_decode=seq in plan.decodes)
        self.steps += 1
        self._publish()
        self._step_start = end
        self._begin_step()

    def _publish(self) -> None:
        """Take the state the gauges show until the next step ends."""
        self._published = (self.num_running, self.num_waiting, self.kv_usage)
        self.refresh_gauges()

    # -- tokens and finishes -----------------------------------------------------------
    def _on_token(self, seq: Sequence, now: float, due: float, after_decode: bool) -> None:
        """Count a sampled token; `after_decode`: it followed a token, not a (re)prefill."""
        m = self.metrics
        if seq.first_token_at is None:
            scheduled = seq.scheduled_at if seq.scheduled_at is not None else now
            seq.first_token_at = now
            m.ttft.observe(now - seq.arrival)
            m.queue.observe(scheduled - seq.arrival)
            m.prefill.observe(now - scheduled)
            m.prompt_tokens.inc(seq.prompt_tokens)
        elif seq.last_token_at is not None:
            gap = now - seq.last_token_at
            m.itl.observe(gap)
            if after_decode and seq.last_token_due is not None:
                self.itl_gaps += 1
                self.itl_abs_deviation += abs(gap - (due - seq.last_token_due))
        seq.last_token_at, seq.last_token_due = now, due
        m.generation_tokens.inc()
        if seq.finished:
            self.finished_requests += 1
            self._finish(seq)
        else:
            seq.wake.set()

    def _finish(self, seq: Sequence) -> None:
        """Record the end of a request the scheduler finished (`length`) or removed (`abort`)."""
        now = self._loop.time() if self._loop is not None else time.monotonic()
        reason = seq.finish_reason or "abort"
        seq.finished_at = now
        m = self.metrics
        m.success[reason].inc()
        if reason != "abort":  # latency histograms describe requests that ran to the end
            m.e2e.observe(now - seq.arrival)
            if seq.first_token_at is not None:
                m.decode.observe(now - seq.first_token_at)
        seq.wake.set()
