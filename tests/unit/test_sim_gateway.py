"""The router-like gateway over real HTTP: scale-to-zero answers, counting before routing,
run-time engines (Python and admin API), routing policies, streaming passthrough."""

import json
import re
from contextlib import ExitStack

import httpx
import pytest

from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.gateway import Gateway
from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim.host import serve, wait_until

MODEL = "llama3"


@pytest.fixture(scope="module")
def engines():
    """Two engines for MODEL, one for another model."""
    with ExitStack() as stack:
        made = []
        for name in (MODEL, MODEL, "other"):
            eng = Engine(EngineConfig(model=name, max_num_seqs=8, inter_token_latency=0.002, prefill_tokens_per_s=1e6))
            made.append((eng, stack.enter_context(serve(engine_app(eng)))))
        yield made


@pytest.fixture
def gateway():
    gw = Gateway([MODEL])
    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        yield gw, client


def incoming(client: httpx.Client, model: str) -> float:
    match = re.search(rf'^vllm:num_incoming_requests_total\{{model="{re.escape(model)}"\}} (\S+)$',
                      client.get("/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def complete(client: httpx.Client, model: str = MODEL, **extra) -> httpx.Response:
    return client.post("/v1/completions", json={"model": model, "prompt": "Hi", "max_tokens": 2, **extra})


def test_known_model_without_engines_is_503_and_still_counted(gateway):
    gw, client = gateway
    response = complete(client)
    assert response.status_code == 503
    assert "temporarily unavailable" in response.json()["error"]
    assert incoming(client, MODEL) == 1


def test_unknown_model_is_404_and_missing_model_or_bad_json_400(gateway):
    _, client = gateway
    assert complete(client, "never-heard-of").status_code == 404
    assert client.post("/v1/completions", json={"prompt": "Hi"}).status_code == 400
    assert client.post("/v1/completions", content=b"{nope").status_code == 400


def test_engine_added_in_python_serves_then_removed_scales_to_zero(gateway, engines):
    gw, client = gateway
    _, handle = engines[0]
    gw.add_engine(handle.url, MODEL)
    ok = complete(client)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2
    assert gw.remove_engine(handle.url)
    assert complete(client).status_code == 503
    assert incoming(client, MODEL) == 2


def test_admin_api_adds_lists_and_removes_engines(gateway, engines):
    _, client = gateway
    url = engines[2][1].url
    created = client.post("/admin/engines", json={"url": url, "model": "other"})
    assert created.status_code == 201
    assert client.post("/admin/engines", json={"url": url, "model": "other"}).status_code == 200
    listed = client.get("/admin/engines").json()
    assert [e["url"] for e in listed["engines"]] == [url] and set(listed["models"]) == {MODEL, "other"}
    assert {m["id"] for m in client.get("/v1/models").json()["data"]} == {MODEL, "other"}
    assert complete(client, "other").status_code == 200
    assert client.request("DELETE", "/admin/engines", json={"url": url}).status_code == 200
    assert client.request("DELETE", "/admin/engines", params={"url": url}).status_code == 404
    assert complete(client, "other").status_code == 503, "a model once served is known: 503, not 404"
    assert client.post("/admin/engines", json={"model": "x"}).status_code == 400
    assert client.post("/admin/engines", json={"url": "127.0.0.1:1", "model": "x"}).status_code == 400


def test_round_robin_spreads_requests_evenly(gateway, engines):
    gw, client = gateway
    for eng, handle in engines[:2]:
        gw.add_engine(handle.url)
    for _ in range(6):
        assert complete(client).status_code == 200
    assert [b.requests for b in gw.engines()] == [3, 3]


def test_least_loaded_avoids_the_busy_engine(engines):
    gw = Gateway([MODEL], routing="least-loaded")
    (_, first), (_, second) = engines[:2]
    gw.add_engine(first.url)
    gw.add_engine(second.url)
    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        with client.stream("POST", "/v1/completions",
                           json={"model": MODEL, "prompt": "Hi", "max_tokens": 2000, "stream": True}) as held:
            lines = held.iter_lines()  # keep the iterator: dropping it would close the stream
            next(lines)
            busy = next(b for b in gw.engines() if b.inflight == 1)
            for _ in range(3):
                assert complete(client).status_code == 200
            assert busy.requests == 1
        wait_until(lambda: all(b.inflight == 0 for b in gw.engines()), 5, "gateway in-flight count back to 0")


def test_streaming_passes_through_unchanged(gateway, engines):
    gw, client = gateway
    gw.add_engine(engines[0][1].url)
    with client.stream("POST", "/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 3,
                                                        "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [ln[6:] for ln in response.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["finish_reason"] for e in events[:-1]] == [None, None, "length"]


def test_metrics_ignore_accept_like_the_router_and_list_healthy_engines(gateway, engines):
    gw, client = gateway
    gw.add_engine(engines[0][1].url)
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}).text
    assert f'vllm:healthy_pods_total{{server="{engines[0][1].url}"}} 1.0' in text
    assert "vllm_" not in text
    assert not re.search(r"^vllm:num_requests_waiting\{", text, re.M), "declared, never set"


def test_an_unreachable_engine_is_a_502_not_a_crash(gateway):
    gw, client = gateway
    gw.add_engine(f"http://127.0.0.1:{free_port()}")
    response = complete(client)
    assert response.status_code == 502 and "unreachable" in response.json()["error"]


def test_routing_option_is_checked():
    with pytest.raises(ValueError, match="routing"):
        Gateway([MODEL], routing="random")
