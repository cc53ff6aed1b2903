"""Load generator for the OpenAI API of the router (or one engine): async httpx.

Flags shared with the tutorial's load generator keep its meaning and defaults:
`--openai_api_base` (http://localhost:30080/v1/), `--openai_api_key` (EMPTY), `--num-requests`
(100), `--prompt-len` (10000: the prompt repeats the word "Hi" that many times, about one
token each), and like it we send streaming completions with `max_tokens` 80, all requests
in flight at once. Differences: the tutorial's script sends the batch to every model listed
by /v1/models; this one sends to one model (`--model`, default the first listed).

Added: `--concurrency` (closed loop: at most N in flight), `--rate` (open loop: Poisson
arrivals at N/s), `--duration` (stop after N s, cancelling what is in flight), `--max-tokens`,
`--stream/--no-stream`, `--endpoint completions|chat`, `--json OUT`.

`drive_queue` is the adaptive mode for the e2e tests: raise concurrency until a probe (say,
a Prometheus query of the queue length) reads above a target, hold it there for a while,
then stop — bounded in requests and time, with the phases' timestamps in the result.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import random
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from .errors import HarnessError

DEFAULT_BASE = "http://localhost:30080/v1/"


class LoadError(HarnessError):
    """The load could not start (API unreachable, no model)."""


class ClientPool:
    """httpx AsyncClients leased one request at a time.

    One AsyncClient with many concurrent connections slows down badly (about 4x at 32
    connections on httpx 0.28), so each in-flight request gets a client of its own, kept for
    reuse (and keep-alive). Clients share one SSL context: building one per client costs ~40 ms.
    `size` bounds how many exist (and so how many requests are in flight); None is unbounded."""

    _ssl_context = None

    def __init__(self, size: int | None = None, timeout: httpx.Timeout | None = None) -> None:
        if ClientPool._ssl_context is None:
            ClientPool._ssl_context = httpx.create_ssl_context()
        self._timeout = timeout or httpx.Timeout(600.0, connect=10.0)
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._size = size
        self._slots: asyncio.Semaphore | None = None

    async def acquire(self) -> httpx.AsyncClient:
        if self._size is not None:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self._size)
            await self._slots.acquire()
        if self._idle:
            return self._idle.pop()
        client = httpx.AsyncClient(timeout=self._timeout, verify=ClientPool._ssl_context,
                                   limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self._all.append(client)
        return client

    def release(self, client: httpx.AsyncClient) -> None:
        self._idle.append(client)
        if self._slots is not None:
            self._slots.release()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        client = await self.acquire()
        try:
            yield client
        finally:
            self.release(client)

    async def aclose(self) -> None:
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> "ClientPool":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


@dataclass
class LoadConfig:
    """What to send, how much, how fast. Times in seconds."""

    base_url: str = DEFAULT_BASE
    api_key: str = "EMPTY"
    model: str | None = None
    num_requests: int = 100
    prompt_len: int = 10000
    max_tokens: int = 80
    stream: bool = True
    concurrency: int | None = None  # None: every request in flight at once, as the tutorial does
    rate: float | None = None  # requests/s with Poisson arrivals (open loop)
    duration: float | None = None  # stop and cancel in-flight requests after this long
    endpoint: str = "completions"  # or "chat"
    timeout: float = 600.0
    seed: int = 0

    @property
    def url(self) -> str:
        path = "completions" if self.endpoint == "completions" else "chat/completions"
        return f"{self.base_url.rstrip('/')}/{path}"


def make_prompt(index: int, prompt_len: int) -> str:
    """Request `index`'s prompt: a short header plus `prompt_len` repetitions of "Hi"."""
    return f"Request {index}: " + "Hi " * prompt_len + "thank you."


@dataclass
class RequestRecord:
    """One request's outcome. `started` is wall-clock; durations in seconds."""

    index: int
    started: float
    latency: float | None = None
    ttft: float | None = None
    status: int | None = None
    error: str | None = None
    output_tokens: int = 0
    cancelled: bool = False
    finish_reason: str | None = None  # the last one the answer gave ("stop", "length", "abort")

    @property
    def ok(self) -> bool:
        """Answered in full by the API's rules: HTTP 200, the body complete. An answer vLLM ended
        with finish_reason "abort" (an engine shutting down) is ok by this test: see `aborted`."""
        return self.status == 200 and self.error is None and not self.cancelled

    @property
    def aborted(self) -> bool:
        """The engine ended the answer early (finish_reason "abort"): the client has part of it, or none."""
        return self.ok and self.finish_reason == "abort"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class LoadResult:
    """Everything a run did, with the summary figures derived from it."""

    config: LoadConfig
    model: str
    started: float
    ended: float
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max(self.ended - self.started, 1e-9)

    @property
    def completed(self) -> int:
        return sum(r.ok for r in self.records)

    @property
    def cancelled(self) -> int:
        return sum(r.cancelled for r in self.records)

    @property
    def failed(self) -> int:
        return sum(not r.ok and not r.cancelled for r in self.records)

    def failures(self) -> dict[str, int]:
        """Failed requests by HTTP status (e.g. '503') or error kind (e.g. 'ConnectError')."""
        tally = Tally(str(r.status) if r.status not in (None, 200) else (r.error or "error").split(":")[0]
                      for r in self.records if not r.ok and not r.cancelled)
        return dict(tally)

    @property
    def throughput(self) -> float:
        """Completed requests per second."""
        return self.completed / self.duration

    @property
    def output_tokens_per_s(self) -> float:
        return sum(r.output_tokens for r in self.records if r.ok) / self.duration

    def percentiles(self, what: str) -> dict[str, float | None]:
        """p50/p90/p99 of 'ttft' or 'latency' over completed requests."""
        values = [getattr(r, what) for r in self.records if r.ok and getattr(r, what) is not None]
        return {f"p{q}": percentile(values, q) for q in (50, 90, 99)}

    def summary(self) -> str:
        """A short human-readable report."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.0f} ms"

        lines = [
            f"model {self.model} at {self.config.url}",
            f"requests: {len(self.records)} sent, {self.completed} completed, {self.failed} failed"
            + (f" {self.failures()}" if self.failed else "") + (f", {self.cancelled} cancelled" if self.cancelled else ""),
            f"duration {self.duration:.1f} s, throughput {self.throughput:.2f} req/s, "
            f"{self.output_tokens_per_s:.0f} output tokens/s",
        ]
        for what in ("ttft", "latency"):
            p = self.percentiles(what)
            label = "TTFT" if what == "ttft" else "end-to-end"
            lines.append(f"{label:<10} p50 {ms(p['p50'])}  p90 {ms(p['p90'])}  p99 {ms(p['p99'])}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config), "model": self.model, "started": self.started, "ended": self.ended,
            "sent": len(self.records), "completed": self.completed, "failed": self.failed,
            "cancelled": self.cancelled, "failures": self.failures(), "throughput_rps": self.throughput,
            "output_tokens_per_s": self.output_tokens_per_s, "ttft": self.percentiles("ttft"),
            "latency": self.percentiles("latency"), "records": [asdict(r) for r in self.records],
        }


class Progress:
    """One progress line: rewritten in place on a TTY, else printed every `quiet_interval` s."""

    def __init__(self, stream: TextIO | None = None, quiet_interval: float = 5.0, tty_interval: float = 0.5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = tty_interval if self.tty else quiet_interval
        self._last = 0.0 if self.tty else time.monotonic()  # quiet mode: first line after one interval

    def update(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _error_text(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace")
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        err = err.get("message", err)
    return str(err)[:200]


class _Runner:
    """Sends requests and keeps their records; shared by the fixed and adaptive modes."""

    def __init__(self, config: LoadConfig, pool: ClientPool, model: str) -> None:
        self.config = config
        self.pool = pool
        self.model = model
        self.records: list[RequestRecord] = []
        self.inflight: set[asyncio.Task[None]] = set()
        self.issued = 0
        self.headers = {"Authorization": f"Bearer {config.api_key}"}

    def body(self, index: int) -> dict[str, Any]:
        cfg = self.config
        prompt = make_prompt(index, cfg.prompt_len)
        body: dict[str, Any] = {"model": self.model, "max_tokens": cfg.max_tokens, "temperature": 0,
                                "stream": cfg.stream}
        if cfg.endpoint == "completions":
            body["prompt"] = prompt
        else:
            body["messages"] = [{"role": "user", "content": prompt}]
        if cfg.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def launch(self, index: int) -> asyncio.Task[None]:
        self.issued += 1
        task = asyncio.ensure_future(self.one(index))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task

    async def one(self, index: int) -> None:
        record = RequestRecord(index=index, started=time.time())
        self.records.append(record)
        try:
            async with self.pool.lease() as client:
                t0 = time.perf_counter()
                if self.config.stream:
                    await self._streamed(client, record, t0, index)
                    record.latency = time.perf_counter() - t0
                    return
                resp = await client.post(self.config.url, json=self.body(index), headers=self.headers)
                record.status = resp.status_code
                if resp.status_code == 200:
                    body = resp.json()
                    record.output_tokens = int(body.get("usage", {}).get("completion_tokens", 0))
                    record.finish_reason = ((body.get("choices") or [{}])[0] or {}).get("finish_reason")
                else:
                    record.error = _error_text(resp.content)
                record.latency = time.perf_counter() - t0
        except asyncio.CancelledError:
            record.cancelled = True
            raise
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:200]
        except ValueError as exc:  # a body that is not the JSON the API promises
            record.error = f"BadResponse: {exc}"[:200]

    async def _streamed(self, client: httpx.AsyncClient, record: RequestRecord, t0: float, index: int) -> None:
        async with client.stream("POST", self.config.url, json=self.body(index), headers=self.headers) as resp:
            record.status = resp.status_code
            if resp.status_code != 200:
                record.error = _error_text(await resp.aread())
                return
            finished = False
            try:
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        record.error = str(chunk["error"])[:200]
                        return
                    choices = chunk.get("choices") or []
                    if choices:
                        record.finish_reason = choices[0].get("finish_reason") or record.finish_reason
                        piece = choices[0].get("text")
                        if piece is None:
                            piece = (choices[0].get("delta") or {}).get("content")
                        if piece:
                            if record.ttft is None:
                                record.ttft = time.perf_counter() - t0
                            record.output_tokens += 1
                    usage = chunk.get("usage")
                    if usage and usage.get("completion_tokens") is not None:
                        record.output_tokens = int(usage["completion_tokens"])
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # The connection closed mid-body: the router cuts the client's body when the engine behind
                # it breaks (docs/termination.md, "Mid-stream"), as does an engine that is killed.
                record.error = (f"IncompleteStream: connection closed after {record.output_tokens} tokens without "
                                f"[DONE] ({type(exc).__name__})")
                return
            if not finished:  # a body that ended properly but without [DONE]
                record.error = f"IncompleteStream: ended after {record.output_tokens} tokens without [DONE]"

    async def cancel_inflight(self) -> None:
        tasks = list(self.inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def progress_line(self, started: float, extra: str = "") -> str:
        done = [r for r in self.records if r.latency is not None or r.error or r.cancelled]
        ok = sum(r.ok for r in done)
        elapsed = time.monotonic() - started
        return (f"[load] {len(done)}/{self.issued} done ({ok} ok, {len(done) - ok} not) · {len(self.inflight)} in flight"
                f" · {ok / max(elapsed, 1e-9):.1f} req/s · {elapsed:.0f}s{extra}")


def _pool(config: LoadConfig, size: int) -> ClientPool:
    return ClientPool(size, httpx.Timeout(config.timeout, connect=10.0))


async def resolve_model(pool: ClientPool, base_url: str, api_key: str = "EMPTY") -> str:
    """The first model listed by `base_url`/models."""
    url = f"{base_url.rstrip('/')}/models"
    try:
        async with pool.lease() as client:
            resp = await client.get(url, headers={"Authorization": f"Bearer {api_key}"})
        resp.raise_for_status()
        models = [m["id"] for m in resp.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise LoadError(f"cannot list models at {url}: {type(exc).__name__}: {exc} — is the router reachable "
                        "(port-forward running)? or pass --model") from None
    if not models:
        raise LoadError(f"{url} lists no models — is an engine up? pass --model to send anyway")
    return models[0]


async def run_load(config: LoadConfig, progress: Progress | None = None) -> LoadResult:
    """Send the configured load and return what happened. Stops by itself (count, duration)."""
    concurrency = max(1, config.concurrency or config.num_requests)
    async with _pool(config, concurrency) as pool:
        model = config.model or await resolve_model(pool, config.base_url, config.api_key)
        runner = _Runner(config, pool, model)
        started_wall, started = time.time(), time.monotonic()
        deadline = started + config.duration if config.duration else None
        stopper = asyncio.ensure_future(_progress_loop(runner, progress, started)) if progress else None
        try:
            work = _open_loop(runner, concurrency) if config.rate else _closed_loop(runner, concurrency)
            if deadline is None:
                await work
            else:
                try:
                    await asyncio.wait_for(work, timeout=max(deadline - time.monotonic(), 0))
                except asyncio.TimeoutError:
                    pass
        finally:
            await runner.cancel_inflight()
            if stopper is not None:
                stopper.cancel()
                progress.update(runner.progress_line(started), force=True)  # type: ignore[union-attr]
                progress.close()  # type: ignore[union-attr]
        return LoadResult(config=config, model=model, started=started_wall, ended=time.time(),
                          records=sorted(runner.records, key=lambda r: r.index))


async def _closed_loop(runner: _Runner, concurrency: int) -> None:
    total = runner.config.num_requests
    counter = iter(range(total))

    async def worker() -> None:
        for index in counter:
            await runner.launch(index)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))


async def _open_loop(runner: _Runner, _concurrency: int) -> None:
    cfg = runner.config
    rng = random.Random(cfg.seed)
    tasks = []  # the client pool holds arrivals beyond `concurrency` until a request finishes
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for index in range(cfg.num_requests):
        next_at += rng.expovariate(cfg.rate)  # type: ignore[arg-type]
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        runner.issued += 1
        task = asyncio.ensure_future(runner.one(index))
        runner.inflight.add(task)
        task.add_done_callback(runner.inflight.discard)
        tasks.append(task)
    await asyncio.gather(*tasks, return_exceptions=True)


async def _progress_loop(runner: _Runner, progress: Progress | None, started: float, extra: Callable[[], str] | None = None) -> None:
    while progress is not None:
        progress.update(runner.progress_line(started, extra() if extra else ""))
        await asyncio.sleep(min(progress.interval, 0.5))


# -- adaptive mode ------------------------------------------------------------------------
Probe = Callable[[], float | None | Awaitable[float | None]]


@dataclass
class Phase:
    """A named stretch of the run, wall-clock seconds (end None while open)."""

    name: str  # ramp | hold | stop
    start: float
    end: float | None = None


@dataclass
class AdaptiveResult:
    """The adaptive run: its load, phases, the probe's readings and why it stopped."""

    load: LoadResult
    phases: list[Phase]
    target: float
    reached: bool
    stop_reason: str  # held | budget | max_requests | stopped
    samples: list[tuple[float, float | None, int]]  # (wall time, probe value, concurrency)
    probe_errors: list[str] = field(default_factory=list)

    @property
    def peak(self) -> float | None:
        values = [v for _, v, _ in self.samples if v is not None]
        return max(values) if values else None

    @property
    def max_concurrency(self) -> int:
        return max((c for _, _, c in self.samples), default=0)

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def describe(self) -> str:
        """One line for logs and failure messages."""
        spans = ", ".join(f"{p.name} {p.start - self.phases[0].start:.1f}→"
                          f"{(p.end or p.start) - self.phases[0].start:.1f}s" for p in self.phases)
        return (f"target >{self.target:g} {'reached' if self.reached else 'NOT reached'} (peak {self.peak}), "
                f"stopped: {self.stop_reason}; concurrency up to {self.max_concurrency}; "
                f"{self.load.completed} completed, {self.load.failed} failed, {self.load.cancelled} cancelled; {spans}")

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "reached": self.reached, "stop_reason": self.stop_reason,
                "phases": [asdict(p) for p in self.phases], "samples": self.samples,
                "probe_errors": self.probe_errors, "load": self.load.to_dict()}


async def _read_probe(probe: Probe) -> float | None:
    if inspect.iscoroutinefunction(probe):
        value = await probe()  # type: ignore[misc]
    else:
        value = await asyncio.to_thread(probe)
        if inspect.isawaitable(value):
            value = await value
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass
class QueueController:
    """The adaptive load's decisions from a clock and the probe's readings alone (no HTTP), so
    they can be tested on made-up readings: grow concurrency by `step` every `step_interval` s
    while the reading is at or below `target` (also during the hold), up to `max_concurrency`;
    the hold starts at the first reading above `target` and the run stops `hold` s later, at the
    `budget`, once `max_requests` have been issued and answered, or when asked to."""

    target: float
    hold: float
    start_concurrency: int = 1
    step: int = 2
    step_interval: float = 1.0
    max_concurrency: int = 64
    max_requests: int = 2000
    budget: float = 120.0
    started: float = 0.0  # monotonic clock at the start
    limit: int = 0
    reached: bool = False
    hold_since: float = 0.0
    last_step: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    samples: list[tuple[float, float | None, int]] = field(default_factory=list)  # (wall, reading, limit)

    def __post_init__(self) -> None:
        if self.hold < 0 or self.budget <= 0 or self.max_concurrency < 1 or self.max_requests < 1:
            raise ValueError("drive_queue needs hold ≥ 0, budget > 0, max_concurrency ≥ 1, max_requests ≥ 1")
        self.limit = max(1, min(self.start_concurrency, self.max_concurrency))
        self.last_step = self.started

    def start(self, wall: float) -> None:
        self.phases.append(Phase("ramp", wall))

    def stop_reason(self, now: float, issued: int, inflight: int, stopped: bool) -> str | None:
        """Before a probe: why the run must stop now, if it must."""
        if stopped:
            return "stopped"
        if now - self.started >= self.budget:
            return "budget"
        if issued >= self.max_requests and not inflight:
            return "max_requests"
        return None

    def observe(self, now: float, wall: float, value: float | None) -> str | None:
        """Take one reading (None: no reading); returns "held" when the hold is over. May raise
        `limit`: the caller starts workers up to it."""
        self.samples.append((wall, value, self.limit))
        above = value is not None and value > self.target
        if above and not self.reached:
            self.reached, self.hold_since = True, now
            self.phases[-1].end = wall
            self.phases.append(Phase("hold", wall))
        if self.reached and now - self.hold_since >= self.hold:
            return "held"
        if not above and now - self.last_step >= self.step_interval and self.limit < self.max_concurrency:
            self.limit = min(self.limit + self.step, self.max_concurrency)
            self.last_step = now
        return None

    def finish(self, wall: float) -> None:
        self.phases[-1].end = wall
        self.phases.append(Phase("stop", wall))


async def drive_queue(config: LoadConfig, probe: Probe, *, target: float, hold: float,
                      start_concurrency: int = 1, step: int = 2, step_interval: float = 1.0,
                      max_concurrency: int = 64, max_requests: int = 2000, budget: float = 120.0,
                      probe_interval: float = 0.5, drain: bool = False,
                      progress: Progress | None = None,
                      stop: threading.Event | None = None) -> AdaptiveResult:
    """Raise concurrency until `probe()` > `target`, keep it above for `hold` s, then stop.

    Concurrency grows by `step` every `step_interval` s while the probe reads ≤ target (also
    during the hold), up to `max_concurrency`. The run stops when the hold is over, when
    `budget` s have passed, or after `max_requests` requests; in-flight requests are then
    cancelled (or awaited with `drain=True`). A probe that raises counts as no reading.
    Setting `stop` (a threading.Event, e.g. from the test thread) ends the run early."""
    control = QueueController(target=target, hold=hold, start_concurrency=start_concurrency, step=step,
                              step_interval=step_interval, max_concurrency=max_concurrency,
                              max_requests=max_requests, budget=budget, started=time.monotonic())
    async with _pool(config, max_concurrency) as pool:
        model = config.model or await resolve_model(pool, config.base_url, config.api_key)
        runner = _Runner(config, pool, model)
        workers: list[asyncio.Task[None]] = []
        halt = asyncio.Event()

        async def worker(slot: int) -> None:
            while not halt.is_set() and slot < control.limit and runner.issued < max_requests:
                await runner.launch(runner.issued)

        def grow() -> None:
            while len([w for w in workers if not w.done()]) < control.limit and runner.issued < max_requests:
                workers.append(asyncio.ensure_future(worker(len(workers))))

        started_wall, started = time.time(), time.monotonic()
        control.started = control.last_step = started
        control.start(started_wall)
        errors: list[str] = []
        reason = "budget"
        ticker = asyncio.ensure_future(
            _progress_loop(runner, progress, started, lambda: f" · concurrency {control.limit}")) if progress else None
        grow()
        try:
            while True:
                stopping = control.stop_reason(time.monotonic(), runner.issued, len(runner.inflight),
                                               stop is not None and stop.is_set())
                if stopping:
                    reason = stopping
                    break
                try:
                    value = await asyncio.wait_for(_read_probe(probe), timeout=max(probe_interval * 4, 2.0))
                except Exception as exc:  # noqa: BLE001 — any probe failure is "no reading"
                    value = None
                    errors.append(f"{time.time():.1f} {type(exc).__name__}: {exc}"[:300])
                before = control.limit
                if control.observe(time.monotonic(), time.time(), value) == "held":
                    reason = "held"
                    break
                if control.limit != before:
                    grow()
                await asyncio.sleep(probe_interval)
        finally:
            halt.set()
            control.finish(time.time())
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if drain:
                remaining = max(budget - (time.monotonic() - started), 1.0)
                try:
                    await asyncio.wait_for(asyncio.gather(*list(runner.inflight), return_exceptions=True), remaining)
                except asyncio.TimeoutError:
                    pass
            await runner.cancel_inflight()
            control.phases[-1].end = time.time()
            if ticker is not None:
                ticker.cancel()
                progress.update(runner.progress_line(started, f" · concurrency {control.limit}"), force=True)  # type: ignore[union-attr]
                progress.close()  # type: ignore[union-attr]
        load = LoadResult(config=config, model=model, started=started_wall, ended=time.time(),
                          records=sorted(runner.records, key=lambda r: r.index))
        return AdaptiveResult(load=load, phases=control.phases, target=target, reached=control.reached,
                              stop_reason=reason, samples=control.samples, probe_errors=errors)


def run(config: LoadConfig, progress: Progress | None = None) -> LoadResult:
    """`run_load` for synchronous callers."""
    return asyncio.run(run_load(config, progress))


def drive(config: LoadConfig, probe: Probe, **kwargs: Any) -> AdaptiveResult:
    """`drive_queue` for synchronous callers (same keyword arguments)."""
    return asyncio.run(drive_queue(config, probe, **kwargs))


# -- command line -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="load_generator.py",
                                description="Send OpenAI completions load to the vLLM router (or an engine).")
    p.add_argument("--openai_api_base", "--openai-api-base", dest="base_url", default=DEFAULT_BASE,
                   help=f"base URL of the OpenAI API (default {DEFAULT_BASE})")
    p.add_argument("--openai_api_key", "--openai-api-key", dest="api_key", default="EMPTY", help="API key (default EMPTY)")
    p.add_argument("--num-requests", type=int, default=100, help="requests to send (default 100)")
    p.add_argument("--prompt-len", type=int, default=10000, help='prompt length: repetitions of "Hi" (default 10000)')
    p.add_argument("--concurrency", type=int, default=None, help="at most N in flight (default: all at once)")
    p.add_argument("--rate", type=float, default=None, help="open loop: Poisson arrivals at N requests/s")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds, cancelling in-flight requests")
    p.add_argument("--max-tokens", type=int, default=80, help="max_tokens per request (default 80)")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True, help="stream responses (default on)")
    p.add_argument("--model", default=None, help="model to ask for (default: the first of /v1/models)")
    p.add_argument("--endpoint", choices=("completions", "chat"), default="completions")
    p.add_argument("--timeout", type=float, default=600.0, help="per-request timeout in seconds")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the full result as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    """`scripts/load_generator.py`: run the load, print the report; exit 1 if any request failed."""
    args = build_parser().parse_args(argv)
    for name in ("num_requests", "prompt_len", "max_tokens"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be ≥ 1", file=sys.stderr)
            return 2
    config = LoadConfig(base_url=args.base_url, api_key=args.api_key, model=args.model,
                        num_requests=args.num_requests, prompt_len=args.prompt_len, max_tokens=args.max_tokens,
                        stream=args.stream, concurrency=args.concurrency, rate=args.rate, duration=args.duration,
                        endpoint=args.endpoint, timeout=args.timeout)
    try:
        result = run(config, Progress())
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(result.summary())
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json_out}")
    return 0 if result.failed == 0 else 1


class Background:
    """A load function run in a thread: `join()` returns its result or raises its error.
    The e2e tests use it to keep load flowing while they watch the cluster."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as exc:  # noqa: BLE001 — handed to the joining thread
                self.error = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float) -> Any:
        self._thread.join(timeout=timeout)
        if self.error is not None:
            raise self.error
        return self.result
