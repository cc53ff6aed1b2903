"""The engine's /metrics: vLLM V1's exact names and labels, and the exposition format
negotiated from the Accept header the way prometheus_client (and so vLLM) does it."""

import re

import httpx
import pytest

from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import INFO_METRICS, METRIC_NAMES, Engine, EngineConfig, stored_metric_names
from vllm_stack_e2e.sim.host import serve

# What each Prometheus sends when scraping (recorded from 2.42.0 and 3.16.0 scraping the simulator).
ACCEPT_PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                       "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
ACCEPT_PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.7,"
                       "application/openmetrics-text;version=0.0.1;q=0.6,"
                       "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3")


@pytest.fixture(scope="module")
def client():
    engine = Engine(EngineConfig(model="m", engine_id="0", inter_token_latency=0.001))
    with serve(engine_app(engine)) as handle, httpx.Client(base_url=handle.url, timeout=10) as c:
        c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        yield c


def sample_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[^{\s]+", line).group(0))
    return names


def test_plain_scrape_gets_vllm_names_with_colons(client):
    response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert sample_names(response.text) == stored_metric_names()


def test_prometheus_2_scrape_gets_names_escaped_to_underscores(client):
    response = client.get("/metrics", headers={"Accept": ACCEPT_PROMETHEUS_2})
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert "escaping=underscores" in response.headers["content-type"]
    names = sample_names(response.text)
    assert "vllm_num_requests_waiting" in names and "vllm:num_requests_waiting" not in names
    assert names == {n.replace(":", "_") for n in stored_metric_names()}
    assert response.text.rstrip().endswith("# EOF")


def test_prometheus_3_scrape_gets_names_with_colons(client):
    response = client.get("/metrics", headers={"Accept": ACCEPT_PROMETHEUS_3})
    assert "escaping=allow-utf-8" in response.headers["content-type"]
    assert sample_names(response.text) == stored_metric_names()


def test_every_sample_carries_model_name_and_engine(client):
    lines = [ln for ln in client.get("/metrics").text.splitlines() if ln and not ln.startswith("#")]
    info = [ln for ln in lines if ln.startswith(INFO_METRICS)]
    lines = [ln for ln in lines if not ln.startswith(INFO_METRICS)]
    assert lines and all('model_name="m"' in ln and 'engine="0"' in ln for ln in lines)
    assert info and all('engine="0"' in ln and "model_name" not in ln for ln in info)


def test_the_kv_cache_size_is_in_cache_config_info_as_vllm_exports_it(client):
    """num_gpu_blocks × block_size = the KV cache in tokens (what the load's ceiling reads)."""
    line = next(ln for ln in client.get("/metrics").text.splitlines() if ln.startswith("vllm:cache_config_info{"))
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert int(labels["num_gpu_blocks"]) * int(labels["block_size"]) == int(labels["kv_cache_size_tokens"])
    assert line.endswith(" 1.0")


def test_counters_are_exposed_with_total_and_without_created_series(client):
    text = client.get("/metrics", headers={"Accept": ACCEPT_PROMETHEUS_3}).text
    for counter in METRIC_NAMES["counter"]:
        assert re.search(rf"^{re.escape(counter)}\{{", text, re.M), counter
    assert "_created" not in text
    assert re.search(r'^vllm:request_success_total\{.*finished_reason="length".*\} 1\.0$', text, re.M)


def test_metric_types_are_vllms(client):
    text = client.get("/metrics").text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for kind, names in METRIC_NAMES.items():
        for name in names:
            base = name.removesuffix("_total") if kind == "counter" else name
            assert types.get(base, types.get(name)) == kind, name
