"""The gateway's proxying as docs/termination.md reads the production-stack router (0.1.12), in-process:
reroute attempts before the engine's headers, an engine's own 5xx passed through, no upstream timeout,
the router's flag, and the simulator's own outcome counter (vllm_sim:gateway_requests_total)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from _waits import wait_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim import gateway as gateway_module
from vllm_stack_e2e.sim import routerflags
from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.gateway import OUTCOMES, AbortScan, Gateway
from vllm_stack_e2e.sim.host import serve
from vllm_stack_e2e.sim.shutdown import EngineShutdown

MODEL = "m"


def new_engine() -> Engine:
    return Engine(EngineConfig(model=MODEL, inter_token_latency=0.002, prefill_tokens_per_s=1e6))


def ask(client: httpx.Client, model: str = MODEL, **extra) -> httpx.Response:
    return client.post("/v1/completions", json={"model": model, "prompt": "Hi", "max_tokens": 3, **extra})


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: refused before any header


def test_the_abort_mark_is_found_across_chunk_boundaries():
    scan = AbortScan()
    for piece in (b'data: {"choices":[{"text":"a","finish_reason":null}]}\n\n', b'data: {"choices":[{"finish_re',
                  b'ason": "ab', b'ort"}]}\n\n'):
        scan.feed(piece)
    assert scan.aborted
    clean = AbortScan()
    clean.feed(b'{"finish_reason":"length","text":"abort"}')
    assert not clean.aborted, "only a finish_reason of abort counts"


def test_the_router_flag_for_reroute_attempts_is_parsed_with_the_routers_default():
    base = ["--service-discovery", "k8s", "--routing-logic", "roundrobin"]
    assert routerflags.parse(base).max_instance_failover_reroute_attempts == 0
    settings = routerflags.parse([*base, "--max-instance-failover-reroute-attempts", "2"])
    assert settings.max_instance_failover_reroute_attempts == 2 and not settings.ignored


def test_there_is_no_upstream_timeout():
    """The router's aiohttp ClientTimeout(total=None): a stalled engine holds the client's request."""
    timeout = gateway_module._ENGINE_TIMEOUT
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (None, None, None, None)


def test_reroute_attempts_bound_how_many_engines_a_failing_request_tries():
    """Three engines refusing connections: with 1 reroute attempt, two distinct engines are tried, then 500."""
    gw = Gateway([MODEL], reroute_attempts=1)
    for _ in range(3):
        gw.add_engine(dead_url(), MODEL)
    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        reply = ask(client)
    assert reply.status_code == 500, reply.text
    assert "(2 of 2 allowed)" in reply.json()["error"], reply.text
    assert sorted(b.requests for b in gw.engines()) == [0, 1, 1], "two distinct engines, one attempt each"
    assert gw.outcome_counts()["error_5xx"] == 1


def test_a_failure_before_the_headers_moves_to_another_engine_when_allowed():
    eng = new_engine()
    gw = Gateway([MODEL], reroute_attempts=1)
    with serve(engine_app(eng)) as live, serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        gw.add_engine(dead_url(), MODEL)
        gw.add_engine(live.url, MODEL)
        replies = [ask(client) for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    assert eng.finished_requests == 2 and gw.outcome_counts()["completed"] == 2


def test_an_engines_own_5xx_passes_through_and_is_not_retried():
    """Engines: one answering 503 itself, one refusing connections; 3 reroute attempts allowed. Round
    robin sends each of two requests to a different engine first: the 503 is passed through as it is,
    and only the refused request moves on (to the 503 engine) — so the refusing engine is tried once."""

    async def failing(_: Request) -> JSONResponse:
        return JSONResponse({"error": {"message": "engine says no", "code": 503}}, status_code=503)

    broken = Starlette(routes=[Route("/v1/completions", failing, methods=["POST"])])
    gw = Gateway([MODEL], reroute_attempts=3)
    dead = dead_url()
    with serve(broken) as upstream, serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        gw.add_engine(upstream.url, MODEL)
        gw.add_engine(dead, MODEL)
        replies = [ask(client) for _ in range(2)]
    assert [r.status_code for r in replies] == [503, 503], [r.text for r in replies]
    assert all(r.json() == {"error": {"message": "engine says no", "code": 503}} for r in replies), \
        "the engine's own status and body pass through"
    tried = {b.url: b.requests for b in gw.engines()}
    assert tried == {upstream.url: 2, dead: 1}, f"a 5xx answer is not retried elsewhere: {tried}"
    assert gw.outcome_counts()["error_5xx"] == 2, gw.outcome_counts()


def test_the_outcome_counter_tells_completed_aborted_refused_and_abandoned_requests_apart():
    eng = new_engine()
    ctl = EngineShutdown(eng)
    gw = Gateway([MODEL])
    with serve(engine_app(eng, shutdown=ctl)) as upstream, serve(gw.app) as handle, \
            httpx.Client(base_url=handle.url, timeout=10) as client:
        assert ask(client).status_code == 503  # known model, no engine yet: no_backend
        assert ask(client, "never-seen").status_code == 404  # no_backend too
        assert client.post("/v1/completions", content=b"{nope").status_code == 400  # bad_request
        gw.add_engine(upstream.url, MODEL)
        assert ask(client).status_code == 200  # completed
        with client.stream("POST", "/v1/completions",
                           json={"model": MODEL, "prompt": "Hi", "max_tokens": 5000, "stream": True}) as response:
            next(response.iter_lines())  # the client leaves mid-answer: client_gone
        wait_for("the gateway counting the abandoned stream",
                 lambda: gw.outcome_counts()["client_gone"] == 1, 5)
        upstream.call(ctl.begin)  # the engine's SIGTERM (vLLM ≥ 0.18): new requests are answered abort
        aborted = ask(client, stream=True)
        assert aborted.status_code == 200 and '"finish_reason":"abort"' in aborted.text, aborted.text
        text = client.get("/metrics").text
    counts = gw.outcome_counts()
    assert counts == {**dict.fromkeys(OUTCOMES, 0.0), "no_backend": 2, "bad_request": 1, "completed": 1,
                      "client_gone": 1, "aborted": 1}, counts
    exposed = dict(re.findall(r'^vllm_sim:gateway_requests_total\{outcome="(\w+)"\} (\S+)$', text, re.M))
    assert set(exposed) == set(OUTCOMES), f"every outcome is exposed from the start: {exposed}"
    assert float(exposed["aborted"]) == 1.0


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_every_outcome_is_documented_as_the_simulators_own(outcome):
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert "vllm_sim:gateway_requests_total" in text and f"`{outcome}`" in text, \
        f"docs/metrics.md should describe the outcome {outcome!r}"
