"""The engine's SIGTERM handling without a process (docs/termination.md, "vLLM's OpenAI server"): the
policy and its flags, the engine's abort/halt, and the HTTP API with the shutdown begun in-process
(a server in a thread; `begin()` is what SIGTERM calls)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from _waits import wait_for

from vllm_stack_e2e.sim import cli, shutdown
from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.host import ServerHandle, serve
from vllm_stack_e2e.sim.shutdown import EngineShutdown, ShutdownPolicy

MODEL = "m"


# -- the policy and its flags ------------------------------------------------------------------------
def test_the_policy_follows_vllm_018_unless_no_drain_is_asked_for():
    assert ShutdownPolicy().mode == "abort", "vLLM ≥ 0.18's --shutdown-timeout defaults to 0"
    assert ShutdownPolicy(timeout=3).mode == "drain" and ShutdownPolicy(timeout=3).cut_after == 5.0
    assert ShutdownPolicy(timeout=30).cut_after == 30.0, "what is left is cut after max(timeout, 5 s)"
    assert ShutdownPolicy(behaviour="no-drain").mode == "no-drain" and ShutdownPolicy(behaviour="no-drain").cut_after is None
    for bad in ({"behaviour": "drain-forever"}, {"timeout": -1}, {"exit_delay": -0.5}):
        with pytest.raises(ValueError):
            ShutdownPolicy(**bad)


def test_the_sigterm_line_says_which_behaviour_applies_and_how_many_requests():
    assert ShutdownPolicy().describe(3).startswith(
        "SIGTERM: vLLM ≥ 0.18 shutdown, --shutdown-timeout 0: the requests in flight (3) end now with finish_reason abort")
    assert "may finish; what is left after 5s is cut" in ShutdownPolicy(timeout=2).describe(1)
    assert ShutdownPolicy(behaviour="no-drain").describe(2).startswith(
        "SIGTERM: vLLM ≤ 0.17 behaviour (VLLM_SIM_SHUTDOWN=no-drain), no drain: the requests in flight (2)")


def test_shutdown_flags_come_from_vllms_flag_and_the_sim_knob():
    policy = cli.shutdown_policy_from(cli.parse_serve(["m"], env={})[0])
    assert (policy.behaviour, policy.timeout, policy.exit_delay) == ("shutdown-timeout", 0.0, 0.0)
    args, ignored = cli.parse_serve(["m", "--shutdown-timeout", "3", "--sim-shutdown-exit-delay", "1.5"], env={})
    assert not ignored, "--shutdown-timeout is one of vLLM's flags the simulator models"
    assert cli.shutdown_policy_from(args) == ShutdownPolicy(timeout=3, exit_delay=1.5)
    args, _ = cli.parse_serve(["m", "--shutdown-timeout", "3"], env={"VLLM_SIM_SHUTDOWN": "no-drain"})
    assert cli.shutdown_policy_from(args).mode == "no-drain", "VLLM_SIM_SHUTDOWN=no-drain: vLLM ≤ 0.17"
    args, _ = cli.parse_serve(["m", "--sim-shutdown", "shutdown-timeout"], env={"VLLM_SIM_SHUTDOWN": "no-drain"})
    assert cli.shutdown_policy_from(args).mode == "abort", "the flag wins over its environment twin"
    with pytest.raises(SystemExit, match="VLLM_SIM_SHUTDOWN='later'"):
        cli.parse_serve(["m"], env={"VLLM_SIM_SHUTDOWN": "later"})
    with pytest.raises(SystemExit, match="--shutdown-timeout must be ≥ 0"):
        cli.parse_serve(["m", "--shutdown-timeout", "-1"], env={})


# -- the engine --------------------------------------------------------------------------------------
def engine(**overrides) -> Engine:
    settings = dict(model=MODEL, max_num_seqs=1, max_model_len=1000, kv_cache_tokens=1024,
                    prefill_tokens_per_s=1e6, inter_token_latency=0.01)
    settings.update(overrides)
    return Engine(EngineConfig(**settings))


async def tokens_until(eng: Engine, seq, count: int, budget: float = 5.0) -> None:
    """Wait (at most `budget` s) until `seq` produced `count` tokens."""

    async def follow() -> None:
        got = 0
        async for new in eng.tokens(seq):
            got += new
            if got >= count:
                return

    await asyncio.wait_for(follow(), budget)


def aborts(eng: Engine) -> float:
    return eng.registry.get_sample_value("vllm:request_success_total",
                                         {"model_name": MODEL, "engine": "0", "finished_reason": "abort"})


def test_abort_all_ends_running_and_waiting_requests_with_the_tokens_they_have():
    """max_num_seqs 1: one request runs, one waits; abort_all ends both as `abort`, the running one
    keeping its tokens, and counts both in vllm:request_success_total{finished_reason="abort"}."""
    eng = engine()

    async def scenario():
        first = eng.add_request(10, 500)
        second = eng.add_request(10, 500)
        await tokens_until(eng, first, 3)
        assert (eng.num_running, eng.num_waiting) == (1, 1)
        assert eng.abort_all() == 2
        return first, second

    first, second = asyncio.run(scenario())
    assert (first.finish_reason, second.finish_reason) == ("abort", "abort")
    assert first.generated >= 3 and second.generated == 0
    assert (eng.num_running, eng.num_waiting, eng.kv_used) == (0, 0, 0)
    assert aborts(eng) == 2


def test_a_request_arriving_during_the_shutdown_is_an_abort_with_no_token():
    eng = engine()

    async def scenario():
        seq = eng.add_aborted(10, 50, "late")
        return seq, [n async for n in eng.tokens(seq)]

    seq, produced = asyncio.run(scenario())
    assert (seq.finish_reason, seq.generated, produced) == ("abort", 0, [])
    assert eng.num_waiting == 0 and aborts(eng) == 1 and eng.aborted_requests == 1


def test_halt_stops_the_tokens_for_good():
    """vLLM ≤ 0.17: after halt no step runs; the request stays running with the tokens it had."""
    eng = engine()

    async def scenario():
        seq = eng.add_request(10, 500)
        await tokens_until(eng, seq, 3)
        eng.halt()
        at_halt = seq.generated
        eng.add_request(10, 5)  # a new request does not restart the steps either
        seq.wake.clear()
        with pytest.raises(TimeoutError):  # 20 steps' worth of time: a stepping engine would wake it
            await asyncio.wait_for(seq.wake.wait(), 0.2)
        return seq, at_halt

    seq, at_halt = asyncio.run(scenario())
    assert seq.generated == at_halt and not seq.finished, f"{seq.generated - at_halt} tokens came after halt"
    assert eng.halted and eng.idle


# -- the HTTP API during a shutdown --------------------------------------------------------------------
class Served:
    """An engine served in-process with its shutdown controller; `exits`/`cuts` record its callbacks."""

    def __init__(self, handle: ServerHandle, eng: Engine, ctl: EngineShutdown) -> None:
        self.handle, self.engine, self.ctl = handle, eng, ctl
        self.exits: list[bool] = []
        self.cuts: list[int] = []
        self.done = threading.Event()
        ctl.exit = self._exit
        ctl.cut = self._cut

    def _exit(self, wait_forever: bool) -> None:
        self.exits.append(wait_forever)
        self.done.set()

    def _cut(self, remaining: int) -> None:
        self.cuts.append(remaining)
        self.done.set()

    def begin(self) -> str:
        return self.handle.call(self.ctl.begin)


@pytest.fixture
def served(request) -> Iterator[Served]:
    policy = request.param if hasattr(request, "param") else ShutdownPolicy()
    eng = engine(max_num_seqs=8, inter_token_latency=0.02)
    ctl = EngineShutdown(eng, policy)
    with serve(engine_app(eng, shutdown=ctl)) as handle:
        yield Served(handle, eng, ctl)


def body(max_tokens: int, stream: bool) -> dict:
    return {"model": MODEL, "prompt": "Hi", "max_tokens": max_tokens, "stream": stream}


def payloads(lines: Iterator[str], count: int | None = None) -> list[str]:
    got = []
    for line in lines:
        if line.startswith("data: "):
            got.append(line[len("data: "):])
            if count is not None and len(got) == count:
                break
    return got


def reasons(items: list[str]) -> list[str]:
    return [c["finish_reason"] for p in items if p != "[DONE]" for c in json.loads(p)["choices"] if c["finish_reason"]]


@pytest.mark.parametrize("served", [ShutdownPolicy()], indirect=True)
def test_timeout_0_ends_a_stream_with_abort_and_done_then_exits(served):
    with httpx.Client(base_url=served.handle.url, timeout=5) as client:
        with client.stream("POST", "/v1/completions", json=body(500, True)) as response:
            lines = response.iter_lines()
            first = payloads(lines, 3)
            line = served.begin()
            rest = payloads(lines)
        assert "the requests in flight (1) end now" in line, line
        assert reasons(first + rest) == ["abort"] and rest[-1] == "[DONE]", f"expected abort then [DONE]: {rest[-3:]}"
        assert served.done.wait(5) and served.exits == [False], "the controller should exit once nothing is left"
        assert client.get("/health").status_code == 200
        late = client.post("/v1/completions", json=body(20, False)).json()
        assert late["choices"][0]["finish_reason"] == "abort" and late["choices"][0]["text"] == "", late
        assert late["usage"]["completion_tokens"] == 0, late
        state = client.get("/sim/state").json()["shutdown"]
        assert state["started"] and state["mode"] == "abort" and state["in_flight_at_start"] == 1, state


@pytest.mark.parametrize("served", [ShutdownPolicy(timeout=2)], indirect=True)
def test_a_positive_timeout_lets_requests_finish_and_aborts_new_ones(served):
    with httpx.Client(base_url=served.handle.url, timeout=5) as client:
        with client.stream("POST", "/v1/chat/completions",
                           json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 30,
                                 "stream": True}) as response:
            lines = response.iter_lines()
            first = payloads(lines, 3)
            served.begin()
            late = client.post("/v1/completions", json=body(20, True))
            rest = payloads(lines)
        assert reasons(first + rest) == ["length"] and rest[-1] == "[DONE]", f"the request should finish: {rest[-3:]}"
        late_payloads = [line[6:] for line in late.text.splitlines() if line.startswith("data: ")]
        assert reasons(late_payloads) == ["abort"] and late_payloads[-1] == "[DONE]", late_payloads
        assert served.done.wait(5) and served.exits == [False] and served.cuts == []


@pytest.mark.parametrize("served", [ShutdownPolicy(timeout=0.2)], indirect=True)
def test_what_is_left_after_the_timeout_is_cut(served, monkeypatch):
    """max(timeout, 5 s), with the 5 s lowered for the test: the cut callback gets the request left."""
    monkeypatch.setattr(shutdown, "MIN_CUT_SECONDS", 0.3)
    with httpx.Client(base_url=served.handle.url, timeout=5) as client:
        with client.stream("POST", "/v1/completions", json=body(500, True)) as response:
            lines = response.iter_lines()
            payloads(lines, 2)
            served.begin()
            assert served.done.wait(3), "the cut should come 0.3 s after SIGTERM"
    assert served.cuts == [1] and served.exits == [], (served.cuts, served.exits)


@pytest.mark.parametrize("served", [ShutdownPolicy(behaviour="no-drain")], indirect=True)
def test_no_drain_halts_the_engine_and_stops_the_server_without_limit(served):
    with httpx.Client(base_url=served.handle.url, timeout=httpx.Timeout(5, read=1.0)) as client:
        with client.stream("POST", "/v1/completions", json=body(500, True)) as response:
            lines = response.iter_lines()
            payloads(lines, 2)
            served.begin()
            assert served.exits == [True], "no-drain stops the server at once, waiting for connections"
            with pytest.raises(httpx.ReadTimeout):
                for _ in range(200):  # what was already sent may still come; then the read stalls
                    next(lines)
    assert served.engine.halted
    wait_for("the engine freeing the slot of the client that gave up", lambda: served.engine.num_running == 0, 5)
