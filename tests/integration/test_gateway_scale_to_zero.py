"""Scale to zero at the router: a known model without an engine answers 503 and is still
counted (the keepalive trigger's metric), then answers 200 once an engine is added —
through the admin HTTP API and through Python alike."""

import httpx
import pytest

from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.host import serve

from .conftest import ZERO_MODEL

pytestmark = pytest.mark.integration

KEEPALIVE = f'sum(vllm:num_incoming_requests_total{{model="{ZERO_MODEL}"}})'


def ask(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/completions", json={"model": ZERO_MODEL, "prompt": "Hi", "max_tokens": 2})


def test_503_with_zero_engines_then_200_after_one_is_added(prometheus, gateway):
    gw, handle = gateway
    before = prometheus.client.scalar(KEEPALIVE) or 0.0
    with httpx.Client(base_url=handle.url, timeout=10) as client:
        refused = ask(client)
        assert refused.status_code == 503 and "temporarily unavailable" in refused.json()["error"]
        prometheus.client.wait_for_value(KEEPALIVE, lambda v: v is not None and v >= before + 1, 10,
                                         "router counting the request that found no engine")

        engine = Engine(EngineConfig(model=ZERO_MODEL, inter_token_latency=0.001))
        with serve(engine_app(engine)) as backend:
            added = client.post("/admin/engines", json={"url": backend.url, "model": ZERO_MODEL})
            assert added.status_code == 201
            try:
                served = ask(client)
                assert served.status_code == 200 and served.json()["usage"]["completion_tokens"] == 2
                assert gw.remove_engine(backend.url)
                assert ask(client).status_code == 503
                gw.add_engine(backend.url, ZERO_MODEL)
                assert ask(client).status_code == 200
            finally:
                gw.remove_engine(backend.url)
        assert engine.finished_requests == 2
