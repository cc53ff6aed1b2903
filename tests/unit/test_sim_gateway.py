"""The router-like gateway over real HTTP: scale-to-zero answers, counting before routing,
discovery through the engines' /v1/models (and what a restart forgets), run-time engines (Python
and admin API), the router's routing logics, API keys, streaming passthrough."""

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
    assert listed["engines"][0]["models"] == ["other"]
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


def test_round_robin_goes_through_the_engines_in_url_order(gateway, engines):
    gw, client = gateway
    urls = sorted(handle.url for _, handle in engines[:2])
    for url in reversed(urls):
        gw.add_engine(url)
    seen = []
    for _ in range(4):
        before = {b.url: b.requests for b in gw.engines()}
        assert complete(client).status_code == 200
        seen += [b.url for b in gw.engines() if b.requests > before[b.url]]
    assert seen == urls * 2, "the router sorts its engines' URLs and cycles through them"


def test_session_routing_keeps_a_session_on_one_engine(engines):
    gw = Gateway([MODEL], routing="session", session_key="x-user-id")
    for _, handle in engines[:2]:
        gw.add_engine(handle.url)

    def send(client: httpx.Client, user: str | None = None, in_body: bool = False) -> set[str]:
        before = {b.url: b.requests for b in gw.engines()}
        body = {"model": MODEL, "prompt": "Hi", "max_tokens": 1}
        headers = {}
        if user is not None:
            body.update({"x-user-id": user} if in_body else {})
            headers.update({} if in_body else {"x-user-id": user})
        assert client.post("/v1/completions", json=body, headers=headers).status_code == 200
        return {b.url for b in gw.engines() if b.requests > before[b.url]}

    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        for user in ("alice", "bob", "carol", "dave"):
            served = set().union(*(send(client, user) for _ in range(3)))
            assert len(served) == 1, f"session {user} spread over engines: {served}"
            assert send(client, user, in_body=True) == served, "the key in the body names the same session"
        # Without a session the engine with fewer requests in the last minute serves.
        quieter = min(gw.engines(), key=lambda b: (len(b.recent), b.url))
        assert send(client) == {quieter.url}


def test_a_session_key_moves_only_when_its_engine_leaves():
    from vllm_stack_e2e.sim.gateway import HashRing

    ring = HashRing()
    ring.update(["http://a", "http://b", "http://c"])
    before = {f"user-{i}": ring.get(f"user-{i}") for i in range(200)}
    assert set(before.values()) == {"http://a", "http://b", "http://c"}
    ring.update(["http://a", "http://b"])
    after = {key: ring.get(key) for key in before}
    moved = [key for key in before if before[key] != after[key]]
    assert moved and all(before[key] == "http://c" for key in moved), "only the departed engine's sessions move"


def test_other_routing_logics_fall_back_to_round_robin(caplog):
    gw = Gateway([MODEL], routing="prefixaware")
    assert gw.routing == "roundrobin"
    assert "not modelled" in caplog.text


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
    assert not re.search(r"^vllm_(?!sim:)", text, re.M), "the router's colon names are never escaped"
    assert not re.search(r"^vllm:num_requests_waiting\{", text, re.M), "declared, never set"


def test_an_unreachable_engine_is_a_500_without_reroute_attempts(gateway):
    """The router's default --max-instance-failover-reroute-attempts 0: a failure before the engine's
    headers is not retried; the client gets HTTP 500 (docs/termination.md, "Proxying")."""
    gw, client = gateway
    gw.add_engine(f"http://127.0.0.1:{free_port()}")
    response = complete(client)
    assert response.status_code == 500, f"expected 500 after the only attempt failed, got {response.status_code}"
    assert "every attempt failed" in response.json()["error"], response.text
    assert gw.outcome_counts()["error_5xx"] == 1, gw.outcome_counts()


def test_routing_option_is_checked():
    with pytest.raises(ValueError, match="routing"):
        Gateway([MODEL], routing="random")
    with pytest.raises(ValueError, match="Session key"):
        Gateway([MODEL], routing="session")


# ---- discovery -----------------------------------------------------------------------------------------
def test_a_discovered_engine_brings_its_models_and_a_restart_forgets_them(engines):
    _, first = engines[0]
    gw = Gateway()
    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        assert client.get("/v1/models").json()["data"] == [], "nothing discovered, nothing listed"
        assert complete(client).status_code == 404, "a model never seen is not found"
        added = client.post("/admin/engines", json={"name": "pod-a", "url": first.url})
        assert added.status_code == 201 and added.json()["models"] == [MODEL]
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [MODEL]
        assert complete(client).status_code == 200
        assert client.request("DELETE", "/admin/engines", json={"name": "pod-a"}).status_code == 200
        assert client.get("/v1/models").json()["data"] == [], "at zero the router lists nothing"
        assert complete(client).status_code == 503, "seen once: temporarily unavailable"
    restarted = Gateway()
    with serve(restarted.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        reply = complete(client)
        assert reply.status_code == 404 and "not found" in reply.json()["error"], reply.text
        assert incoming(client, MODEL) == 1, "counted before routing, even when not found"


def test_an_engine_that_lists_no_model_stays_out_of_rotation():
    gw = Gateway()
    with serve(gw.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
        refused = client.post("/admin/engines", json={"name": "pod-x", "url": f"http://127.0.0.1:{free_port()}"})
        assert refused.status_code == 409 and gw.engines() == []


def test_discovery_sends_the_api_key_the_engines_require():
    keyed = Engine(EngineConfig(model=MODEL, inter_token_latency=0.002, prefill_tokens_per_s=1e6))
    with serve(engine_app(keyed, ("s3cret",))) as engine:
        without = Gateway(api_key="")
        with serve(without.app) as handle:
            assert httpx.post(handle.url + "/admin/engines", json={"name": "p", "url": engine.url}).status_code == 409
        with_key = Gateway(api_key="s3cret")
        with serve(with_key.app) as handle, httpx.Client(base_url=handle.url, timeout=10) as client:
            assert client.post("/admin/engines", json={"name": "p", "url": engine.url}).status_code == 201
            assert complete(client).status_code == 401, "the client's request still needs the key"
            authorized = client.post("/v1/completions", headers={"Authorization": "Bearer s3cret"},
                                     json={"model": MODEL, "prompt": "Hi", "max_tokens": 1})
            assert authorized.status_code == 200
