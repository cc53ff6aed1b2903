"""SIGTERM and a lost engine, on the simulator run as processes (127.0.0.1, ports the kernel picked):
what a client sees, against docs/termination.md.

- the engine as vLLM ≥ 0.18 (`--shutdown-timeout`): 0 aborts the requests in flight and answers new
  ones "abort" while /health stays 200; 3 lets a short request finish and cuts a long one after 5 s;
- the engine as vLLM ≤ 0.17 (`VLLM_SIM_SHUTDOWN=no-drain`): tokens stop, the read stalls until SIGKILL;
- the router stand-in: an engine killed mid-stream cuts the client's body; a failure before the
  engine's headers is a 500 without reroute attempts and a success on another engine with one; its
  own SIGTERM waits for the open streams.

Streams are read over a socket with h11 (`_sse`), every read with a budget; waits are named polls."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec
from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim.host import engine_argv, gateway_argv, wait_http_ok

from ._sse import Cut, SseStream, Stalled, chunks, finish_reasons

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOST = "127.0.0.1"
MODEL = "llama3"
ITL = 0.05  # seconds between a stream's tokens
LONG = 2000  # max_tokens of a request that outlives every test (100 s of tokens)
T = TypeVar("T")


# -- helpers -------------------------------------------------------------------------------------
def poll(description: str, probe: Callable[[], T], budget: float) -> T:
    """Poll `probe` until it returns something truthy; fail the test with what was seen last."""
    seen = waits.until(waits.polling(probe, 0.05), bool, budget, description, show=repr)
    if not seen.reached:
        pytest.fail(seen.explain())
    return seen.state  # type: ignore[return-value]


class Proc:
    """A simulator subprocess, stopped by PID at teardown (SIGKILL when SIGTERM is not enough)."""

    def __init__(self, tmp_path: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.process = ManagedProcess(ProcessSpec(name=name, argv=argv, log=tmp_path / f"{name}.log", env=env or {}),
                                      tmp_path / f"{name}.pid")
        self.name = name
        self.process.start()
        self.pid = self.process.pid

    def sigterm(self) -> float:
        self.process.terminate()
        return time.monotonic()

    def sigkill(self) -> None:
        if self.process.alive():
            os.kill(self.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return self.process.alive()

    def log(self) -> str:
        return self.process.log_tail(200)

    def stop(self) -> None:
        self.process.stop(timeout=2)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start simulator subprocesses; every one is stopped by its PID when the test ends."""
    started: list[Proc] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(tmp_path, name, argv, env)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in reversed(started):
            proc.stop()


def start_engine(procs: Callable[..., Proc], name: str, *flags: str, env: dict[str, str] | None = None,
                 sim: dict[str, object] | None = None) -> tuple[Proc, int]:
    port = free_port(HOST)
    proc = procs(name, engine_argv(MODEL, HOST, port, sim={"inter-token-latency": ITL, **(sim or {})}, extra=flags),
                 env)
    wait_http_ok(f"http://{HOST}:{port}/health", 10, f"engine {name}")
    return proc, port


def stream(port: int, max_tokens: int) -> SseStream:
    return SseStream(HOST, port, "/v1/completions", {"model": MODEL, "prompt": "Hi", "max_tokens": max_tokens,
                                                     "stream": True, "stream_options": {"include_usage": True}})


def running(port: int) -> int:
    return int(httpx.get(f"http://{HOST}:{port}/sim/state", timeout=2).json()["running"])


def refused(port: int) -> bool:
    try:
        httpx.get(f"http://{HOST}:{port}/health", timeout=1)
    except httpx.ConnectError:
        return True
    return False


def counter(text: str, name: str, **labels: str) -> float | None:
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts labels
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(selector)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


# -- the engine, vLLM ≥ 0.18 -------------------------------------------------------------------------
def test_shutdown_timeout_0_aborts_what_is_in_flight_and_answers_new_requests_abort(procs):
    """SIGTERM with --shutdown-timeout 0: a stream in flight gets its final chunk with finish_reason
    abort and [DONE]; a non-streamed one a 200 with the tokens it had. The listener stays open: /health
    answers 200 and new requests get abort with no text (the simulator's exit delay keeps the window
    open 3 s), then the process exits."""
    engine, port = start_engine(procs, "engine-abort", "--shutdown-timeout", "0", sim={"shutdown-exit-delay": 3})
    base = f"http://{HOST}:{port}"
    with stream(port, LONG) as streamed, ThreadPoolExecutor(1) as pool:
        whole = pool.submit(httpx.post, base + "/v1/completions",
                            json={"model": MODEL, "prompt": "Hi", "max_tokens": LONG}, timeout=15)
        streamed.read_tokens(3, timeout=10)
        poll("both requests running in the engine", lambda: running(port) == 2, 10)
        sigterm = engine.sigterm()
        rest = streamed.read_to_end(timeout=5)
        ended_after = time.monotonic() - sigterm
        reply = whole.result(timeout=10)
    reasons = finish_reasons(streamed.payloads)
    assert reasons == ["abort"], f"the stream should end with one finish_reason abort; saw {reasons} in {rest}"
    assert rest[-1] == "[DONE]" and streamed.ended, f"the stream should close with [DONE]; its last payloads: {rest[-3:]}"
    assert ended_after < 2, f"the stream should end at once on SIGTERM; it took {ended_after:.1f}s"
    body = reply.json()
    assert reply.status_code == 200 and body["choices"][0]["finish_reason"] == "abort", \
        f"the request in flight should get a 200 with finish_reason abort: {reply.status_code} {reply.text[:300]}"
    assert body["usage"]["completion_tokens"] > 0 and body["choices"][0]["text"], \
        f"the aborted request should keep the tokens it had: {body}"

    assert httpx.get(base + "/health", timeout=2).status_code == 200, "/health should stay 200 during the shutdown"
    late = httpx.post(base + "/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 50}, timeout=5)
    late_choice = late.json()["choices"][0]
    assert late.status_code == 200 and late_choice["finish_reason"] == "abort" and late_choice["text"] == "", \
        f"a new request during the shutdown should be answered abort with no text: {late.status_code} {late.text[:300]}"
    with stream(port, 50) as late_stream:
        payloads = late_stream.read_to_end(timeout=5)
    assert finish_reasons(payloads) == ["abort"] and payloads[-1] == "[DONE]", \
        f"a new stream during the shutdown should get abort and [DONE]: {payloads}"
    assert not any(choice.get("text") for chunk in chunks(payloads) for choice in chunk.get("choices") or []), payloads
    metrics = httpx.get(base + "/metrics", timeout=2).text
    aborts = counter(metrics, "vllm:request_success_total", model_name=MODEL, engine="0", finished_reason="abort")
    assert aborts == 4, f"vllm:request_success_total{{finished_reason=\"abort\"}} should count the 4 aborts, got {aborts}"

    poll("the engine exiting once nothing is left (after its 3 s exit delay)", lambda: not engine.alive(), 10)
    assert "SIGTERM: vLLM ≥ 0.18 shutdown, --shutdown-timeout 0: the requests in flight (2) end now" in engine.log(), \
        engine.log()


def test_shutdown_timeout_3_lets_a_short_request_finish(procs):
    """SIGTERM with --shutdown-timeout 3: a request that needs 2 s more finishes with all its tokens, a
    new request meanwhile is answered abort, and the process exits when the request is done, before
    the 5 s cut."""
    engine, port = start_engine(procs, "engine-drain-short", "--shutdown-timeout", "3")
    with stream(port, 40) as streamed:
        streamed.read_tokens(3, timeout=10)
        sigterm = engine.sigterm()
        late = httpx.post(f"http://{HOST}:{port}/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 5},
                          timeout=5)
        rest = streamed.read_to_end(timeout=6)
    assert late.json()["choices"][0]["finish_reason"] == "abort" and late.json()["choices"][0]["text"] == "", \
        f"a new request while draining should be answered abort: {late.text[:300]}"
    assert finish_reasons(streamed.payloads) == ["length"] and rest[-1] == "[DONE]", \
        f"the short request should finish normally: {finish_reasons(streamed.payloads)}, last {rest[-2:]}"
    usage = [c["usage"] for c in chunks(streamed.payloads) if c.get("usage")]
    assert usage and usage[-1]["completion_tokens"] == 40, f"all 40 tokens should come: {usage}"
    poll("the engine exiting once its request is done", lambda: not engine.alive(), 3)
    exited_after = time.monotonic() - sigterm
    assert exited_after < 5, f"the engine should exit when nothing is left, not at the cut; it took {exited_after:.1f}s"
    assert "cutting" not in engine.log(), engine.log()


def test_shutdown_timeout_3_cuts_a_long_request_after_5_seconds(procs):
    """SIGTERM with --shutdown-timeout 3: a request in flight keeps getting tokens, and what is left
    after max(3, 5) s is cut — the connection closes without finish_reason and without [DONE]."""
    engine, port = start_engine(procs, "engine-drain-long", "--shutdown-timeout", "3")
    with stream(port, LONG) as streamed:
        streamed.read_tokens(3, timeout=10)
        before = len(streamed.payloads)
        sigterm = engine.sigterm()
        with pytest.raises(Cut):
            streamed.read_to_end(timeout=10)
        cut_after = time.monotonic() - sigterm
    after = len(streamed.payloads) - before
    assert 4.5 <= cut_after <= 7, f"the stream should be cut 5 s after SIGTERM; it was cut after {cut_after:.1f}s"
    assert after > 20, f"tokens should keep coming until the cut; {after} chunks came after SIGTERM"
    assert finish_reasons(streamed.payloads) == [] and "[DONE]" not in streamed.payloads, \
        f"a cut stream has no finish_reason and no [DONE]: {streamed.payloads[-3:]}"
    poll("the engine gone after the cut", lambda: not engine.alive(), 3)
    assert "cutting the 1 request(s) still in flight" in engine.log(), engine.log()


# -- the engine, vLLM ≤ 0.17 ---------------------------------------------------------------------------
def test_no_drain_stalls_the_stream_until_sigkill(procs):
    """VLLM_SIM_SHUTDOWN=no-drain: on SIGTERM the tokens stop and nothing tells the client; the
    listener closes; the client's read stalls (the process stays) until SIGKILL closes the connection
    without finish_reason or [DONE]."""
    engine, port = start_engine(procs, "engine-no-drain", env={"VLLM_SIM_SHUTDOWN": "no-drain"})
    with stream(port, LONG) as streamed:
        streamed.read_tokens(3, timeout=10)
        engine.sigterm()
        poll("the listener closing after SIGTERM", lambda: refused(port), 5)
        late = 0
        with pytest.raises(Stalled):  # what was already on its way may still arrive, then nothing
            for late in range(1, 40):
                streamed.next_payload(timeout=1.5)
        assert late < 10, f"tokens should stop on SIGTERM; {late} more chunks came"
        with pytest.raises(Stalled):
            streamed.next_payload(timeout=2.0)
        assert engine.alive(), "the engine should hang on its open connection, not exit"
        engine.sigkill()
        with pytest.raises(Cut):
            streamed.next_payload(timeout=5)
    assert finish_reasons(streamed.payloads) == [] and "[DONE]" not in streamed.payloads, streamed.payloads[-3:]
    assert "SIGTERM: vLLM ≤ 0.17 behaviour (VLLM_SIM_SHUTDOWN=no-drain), no drain: the requests in flight (1)" \
        in engine.log(), engine.log()


# -- the router stand-in ------------------------------------------------------------------------------
def start_gateway(procs: Callable[..., Proc], name: str, engines: list[str], *flags: str) -> tuple[Proc, int]:
    port = free_port(HOST)
    proc = procs(name, gateway_argv(HOST, port, [MODEL], engines=engines, extra=flags))
    wait_http_ok(f"http://{HOST}:{port}/health", 10, f"gateway {name}")
    return proc, port


def outcomes(port: int) -> dict[str, float]:
    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=2).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^vllm_sim:gateway_requests_total\{outcome="([a-z_0-9]+)"\} (\S+)$', text, re.M)}


def test_an_engine_killed_mid_stream_cuts_the_clients_body(procs):
    """Once the headers are sent, an engine that dies makes the gateway close the client's connection:
    the body is cut — no [DONE], no error event — and counted as `cut`."""
    engine, engine_port = start_engine(procs, "engine-doomed")
    _, port = start_gateway(procs, "gateway-cut", [f"http://{HOST}:{engine_port}"])
    with stream(port, LONG) as streamed:
        streamed.read_tokens(3, timeout=10)
        engine.sigkill()
        with pytest.raises(Cut):
            streamed.read_to_end(timeout=5)
    assert "[DONE]" not in streamed.payloads and not any("error" in c for c in chunks(streamed.payloads)), \
        f"a cut body has no [DONE] and no error event: {streamed.payloads[-3:]}"
    counts = poll("the gateway counting the cut", lambda: (c := outcomes(port)).get("cut") == 1 and c, 5)
    assert counts["completed"] == 0, counts


@pytest.mark.parametrize("reroutes", [0, 1])
def test_a_failure_before_the_engines_headers_is_retried_only_as_often_as_allowed(procs, reroutes):
    """Two engines, one of them refusing connections. With --max-instance-failover-reroute-attempts 0
    (the router's default) the request that goes to it gets HTTP 500; with 1 it is retried on the other
    engine and succeeds. Round-robin sends one of two requests to each engine first."""
    _, live = start_engine(procs, f"engine-live-{reroutes}")
    dead = free_port(HOST)  # nothing listens there: connection refused, before any header
    _, port = start_gateway(procs, f"gateway-reroute-{reroutes}", [f"http://{HOST}:{dead}", f"http://{HOST}:{live}"],
                            "--max-instance-failover-reroute-attempts", str(reroutes))
    replies = [httpx.post(f"http://{HOST}:{port}/v1/completions",
                          json={"model": MODEL, "prompt": "Hi", "max_tokens": 2}, timeout=10) for _ in range(2)]
    statuses = sorted(r.status_code for r in replies)
    counts = outcomes(port)
    if reroutes == 0:
        assert statuses == [200, 500], f"without reroute attempts the dead engine's request is a 500: {statuses}"
        failed = next(r for r in replies if r.status_code == 500)
        assert "every attempt failed" in failed.json()["error"], failed.text
        assert counts["error_5xx"] == 1 and counts["completed"] == 1, counts
    else:
        assert statuses == [200, 200], f"with one reroute attempt both requests should succeed: {statuses}"
        assert counts["completed"] == 2 and counts["error_5xx"] == 0, counts


def test_the_gateway_on_sigterm_stops_accepting_and_waits_for_its_streams(procs):
    """The router's own SIGTERM: it stops accepting and waits without limit for open streams — here a
    stream that needs 4 s more (longer than uvicorn's usual 2 s) ends whole, then the gateway exits."""
    _, engine_port = start_engine(procs, "engine-behind")
    gateway, port = start_gateway(procs, "gateway-term", [f"http://{HOST}:{engine_port}"])
    with stream(port, 85) as streamed:
        streamed.read_tokens(3, timeout=10)
        gateway.sigterm()
        poll("the gateway refusing new connections after SIGTERM", lambda: refused(port), 5)
        rest = streamed.read_to_end(timeout=10)
    assert finish_reasons(streamed.payloads) == ["length"] and rest[-1] == "[DONE]", \
        f"the open stream should end whole: {finish_reasons(streamed.payloads)}, last {rest[-2:]}"
    poll("the gateway exiting once its stream is done", lambda: not gateway.alive(), 5)
