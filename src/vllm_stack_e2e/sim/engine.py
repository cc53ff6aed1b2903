"""The simulated vLLM engine: a scheduler that queues like vLLM V1, and its metrics.

Scheduling model (what autoscaling can observe, not how a GPU computes):

- A request arrives *waiting*. Waiting requests are admitted strictly in FIFO order while
  fewer than `max_num_seqs` are running and the head request's KV (prompt + tokens already
  generated) fits in the free KV budget (`kv_cache_tokens`); the head blocks those behind it.
- Admitted requests prefill through one shared pipeline, in admission order, at
  `prefill_tokens_per_s` (chunked prefill shares the GPU's prefill throughput), so the time
  to first token grows with the prompt and with the prefills ahead of it. The end of
  prefill emits the first token.
- Each running request then emits one token every `inter_token_latency` seconds (each on
  its own clock, anchored at its first token, so timing error does not accumulate).
- A running request holds prompt + generated tokens of KV. When a token needs a KV slot
  and none is free, the most recently admitted running request is preempted (vLLM's
  recompute preemption): its KV is freed, it goes back to the front of the waiting queue,
  and when re-admitted it prefills prompt + generated tokens again before continuing.
- A request finishes with reason ``length`` after `max_tokens` tokens (there is no EOS),
  or ``abort`` when its client goes away.

All state lives on the asyncio loop that serves the requests; none of it is thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

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
    names = set(METRIC_NAMES["gauge"]) | set(METRIC_NAMES["counter"])
    for hist in METRIC_NAMES["histogram"]:
        names |= {f"{hist}_bucket", f"{hist}_sum", f"{hist}_count"}
    return names


@dataclass(frozen=True)
class EngineConfig:
    """One engine's model and simulated hardware. Times in seconds."""

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

    @property
    def model_name(self) -> str:
        """The name in `model_name` labels and responses: the first served name, else the model."""
        return self.served_model_names[0] if self.served_model_names else self.model

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may use for this engine's model."""
        return self.served_model_names or (self.model,)

    def validate(self) -> None:
        """Raise ValueError naming the first setting a real vLLM would refuse to start with."""
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be ≥ 1, got {self.max_num_seqs}")
        if self.max_model_len < 2:
            raise ValueError(f"max_model_len must be ≥ 2, got {self.max_model_len}")
        if self.kv_cache_tokens < self.max_model_len:
            raise ValueError(
                f"KV cache of {self.kv_cache_tokens} tokens cannot hold one request of max_model_len "
                f"{self.max_model_len} — raise --sim-kv-cache-tokens or lower --max-model-len"
            )
        if self.prefill_tokens_per_s <= 0:
            raise ValueError(f"prefill_tokens_per_s must be > 0, got {self.prefill_tokens_per_s}")
        if self.inter_token_latency < 0:
            raise ValueError(f"inter_token_latency must be ≥ 0, got {self.inter_token_latency}")
        if self.default_max_tokens < 1:
            raise ValueError(f"default_max_tokens must be ≥ 1, got {self.default_max_tokens}")


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


@dataclass(eq=False)
class Sequence:
    """One request inside the engine. Times are the loop's monotonic clock."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    arrival: float
    state: str = "waiting"  # waiting | running | finished
    generated: int = 0
    kv_held: int = 0
    admitted_order: int = 0
    scheduled_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    finished_at: float | None = None
    finish_reason: str | None = None
    prefill_start: float = 0.0
    prefill_end: float = 0.0
    next_token_at: float = 0.0
    preemptions: int = 0
    decoding: bool = False  # a token came since the last (re-)admission
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    handle: asyncio.TimerHandle | None = None

    @property
    def finished(self) -> bool:
        return self.state == "finished"


class Engine:
    """A simulated vLLM engine: admit, prefill, decode, preempt, and count it all."""

    def __init__(self, config: EngineConfig, registry: CollectorRegistry | None = None) -> None:
        config.validate()
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = EngineMetrics(self.registry, config.model_name, config.engine_id)
        self.started_at = time.time()
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._kv_used = 0
        self._prefill_free_at = 0.0
        self._ids = itertools.count()
        self._admissions = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished_requests = 0
        self.aborted_requests = 0
        # Timing quality: decode gaps seen and their summed |gap - inter_token_latency|.
        self.itl_gaps = 0
        self.itl_abs_deviation = 0.0
        self.last_scrape_accept: str | None = None

    # -- state -------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_used(self) -> int:
        return self._kv_used

    @property
    def kv_usage(self) -> float:
        """KV cache in use, 0–1."""
        return self._kv_used / self.config.kv_cache_tokens

    def refresh_gauges(self) -> None:
        """Set the gauges from the scheduler's state (called before every exposition)."""
        self.metrics.running.set(len(self._running))
        self.metrics.waiting.set(len(self._waiting))
        self.metrics.kv_usage.set(self.kv_usage)

    def stats(self) -> dict[str, object]:
        """The scheduler's state as plain data, for `/sim/state` and tests."""
        return {
            "model": self.config.model_name, "engine": self.config.engine_id,
            "running": len(self._running), "waiting": len(self._waiting),
            "kv_used": self._kv_used, "kv_total": self.config.kv_cache_tokens,
            "kv_usage": round(self.kv_usage, 4), "finished": self.finished_requests,
            "aborted": self.aborted_requests, "last_scrape_accept": self.last_scrape_accept,
            "itl_gaps": self.itl_gaps, "itl_abs_deviation": self.itl_abs_deviation,
        }

    # -- requests ----------------------------------------------------------------------
    def add_request(self, prompt_tokens: int, max_tokens: int, request_id: str | None = None) -> Sequence:
        """Queue a request (on the running loop) and schedule what can run."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an Engine serves one event loop; this request came from another")
        seq = Sequence(
            request_id=request_id or f"req-{next(self._ids)}", prompt_tokens=prompt_tokens,
            max_tokens=max_tokens, arrival=loop.time(),
        )
        self._waiting.append(seq)
        self._schedule()
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
        """Drop a request whose client went away (no-op once finished)."""
        if seq.finished:
            return
        if seq.state == "waiting":
            try:
                self._waiting.remove(seq)
            except ValueError:
                pass
        else:
            self._release(seq)
            self._running.remove(seq)
        self._finish(seq, "abort")
        self.aborted_requests += 1
        self._schedule()

    # -- scheduler ---------------------------------------------------------------------
    def _loop_time(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _schedule(self) -> None:
        """Admit waiting requests in FIFO order while a slot and their KV are free."""
        cfg = self.config
        while self._waiting and len(self._running) < cfg.max_num_seqs:
            head = self._waiting[0]
            need = head.prompt_tokens + head.generated
            if self._kv_used + need > cfg.kv_cache_tokens:
                break
            self._waiting.popleft()
            self._admit(head, need)

    def _admit(self, seq: Sequence, kv_tokens: int) -> None:
        now = self._loop_time()
        seq.state = "running"
        seq.decoding = False
        seq.admitted_order = next(self._admissions)
        seq.kv_held = kv_tokens
        self._kv_used += kv_tokens
        self._running.append(seq)
        if seq.scheduled_at is None:
            seq.scheduled_at = now
        seq.prefill_start = max(now, self._prefill_free_at)
        seq.prefill_end = seq.prefill_start + kv_tokens / self.config.prefill_tokens_per_s
        self._prefill_free_at = seq.prefill_end
        seq.next_token_at = seq.prefill_end
        assert self._loop is not None
        seq.handle = self._loop.call_at(seq.prefill_end, self._on_token, seq)

    def _release(self, seq: Sequence) -> None:
        if seq.handle is not None:
            seq.handle.cancel()
            seq.handle = None
        self._kv_used -= seq.kv_held
        seq.kv_held = 0
        # Give back the prefill pipeline's time if this was the last reservation, unfinished.
        now = self._loop_time()
        if seq.prefill_end == self._prefill_free_at and now < seq.prefill_end:
            self._prefill_free_at = max(now, seq.prefill_start)

    def _preempt(self, seq: Sequence) -> None:
        self._release(seq)
        self._running.remove(seq)
        seq.state = "waiting"
        seq.preemptions += 1
        self._waiting.appendleft(seq)
        self.metrics.preemptions.inc()

    def _on_token(self, seq: Sequence) -> None:
        seq.handle = None
        if seq.state != "running":
            return
        cfg = self.config
        while self._kv_used + 1 > cfg.kv_cache_tokens:
            victim = max(self._running, key=lambda s: s.admitted_order)
            self._preempt(victim)
            if victim is seq:
                return
        now = self._loop_time()
        m = self.metrics
        if seq.first_token_at is None:
            seq.first_token_at = now
            m.ttft.observe(now - seq.arrival)
            m.queue.observe((seq.scheduled_at or now) - seq.arrival)
            m.prefill.observe(now - (seq.scheduled_at or now))
            m.prompt_tokens.inc(seq.prompt_tokens)
        elif seq.last_token_at is not None:
            gap = now - seq.last_token_at
            m.itl.observe(gap)
            if seq.decoding:  # not the first token after a preemption
                self.itl_gaps += 1
                self.itl_abs_deviation += abs(gap - cfg.inter_token_latency)
        seq.decoding = True
        seq.last_token_at = now
        seq.generated += 1
        seq.kv_held += 1
        self._kv_used += 1
        m.generation_tokens.inc()
        if seq.generated >= seq.max_tokens:
            self._release(seq)
            self._running.remove(seq)
            self._finish(seq, "length")
            self.finished_requests += 1
            self._schedule()
            return
        seq.wake.set()
        seq.next_token_at += cfg.inter_token_latency
        assert self._loop is not None
        seq.handle = self._loop.call_at(seq.next_token_at, self._on_token, seq)

    def _finish(self, seq: Sequence, reason: str) -> None:
        now = self._loop_time() if self._loop is not None else time.monotonic()
        seq.state = "finished"
        seq.finish_reason = reason
        seq.finished_at = now
        m = self.metrics
        m.success[reason].inc()
        if reason != "abort":  # latency histograms describe requests that ran to the end
            m.e2e.observe(now - seq.arrival)
            if seq.first_token_at is not None:
                m.decode.observe(now - seq.first_token_at)
        seq.wake.set()
