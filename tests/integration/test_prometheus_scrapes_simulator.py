"""A real Prometheus scraping the simulator: which names it stores (3.x: vLLM's own; 2.x:
underscores), what it asked for, how the query helper tells the difference, and targets
coming and going at run time."""

import time

import httpx
import pytest

from vllm_stack_e2e.evidence import presence
from vllm_stack_e2e.lab.prometheus import ScrapeTarget
from vllm_stack_e2e.prom import underscore_name
from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig, stored_metric_names
from vllm_stack_e2e.sim.host import serve, wait_until

pytestmark = pytest.mark.integration


def test_every_target_is_up(prometheus):
    targets = prometheus.client.targets()
    assert len(targets) == 3 and all(t.up for t in targets), [(t.scrape_url, t.last_error) for t in targets]
    assert {t.labels["job"] for t in targets} == {"vllm-engine", "vllm-router"}


def test_stored_engine_names_are_vllms_names_on_3x_and_escaped_on_2x(prometheus):
    stored = {n for n in prometheus.client.metric_names('{job="vllm-engine"}') if n.startswith("vllm")}
    if prometheus.major >= 3:
        assert stored == stored_metric_names(), f"Prometheus {prometheus.version} stores {sorted(stored)}"
        assert "vllm:num_requests_waiting" in stored
    else:
        assert stored == {underscore_name(n) for n in stored_metric_names()}, \
            f"Prometheus {prometheus.version} stores {sorted(stored)}"


def test_the_engine_saw_the_accept_header_that_explains_it(prometheus, engines):
    accept = httpx.get(engines[0].url + "/sim/state", timeout=5).json()["last_scrape_accept"]
    assert accept.startswith("application/openmetrics-text;version=1.0.0")
    assert ("escaping=allow-utf-8" in accept) == (prometheus.major >= 3), accept


def test_query_helper_detects_the_stored_form_and_says_so(prometheus):
    form = prometheus.client.name_form("vllm:num_requests_waiting")
    adapted, notes = prometheus.client.adapt("sum(vllm:num_requests_waiting)")
    if prometheus.major >= 3:
        assert (form.colons, form.underscores, form.explanation) == (True, False, None)
        assert (adapted, notes) == ("sum(vllm:num_requests_waiting)", [])
    else:
        assert (form.colons, form.underscores, form.stored) == (False, True, "vllm_num_requests_waiting")
        assert adapted == "sum(vllm_num_requests_waiting)"
        assert len(notes) == 1 and "stores `vllm_num_requests_waiting`" in notes[0] and "2.42" in notes[0]
        assert "\n" not in notes[0]
        assert prometheus.client.scalar("sum(vllm:num_requests_waiting)") is None, "the tutorial's form reads nothing"


def test_router_counter_keeps_its_colons_on_every_version(prometheus):
    # The router exposes plain text whatever the Accept header, and colons are legal there.
    form = prometheus.client.name_form("vllm:num_incoming_requests_total")
    assert form.colons and not form.underscores and form.explanation is None


def test_targets_added_and_removed_at_run_time(prometheus):
    """A removed target's series go stale within a few intervals (Prometheus's end-of-run staleness
    markers), so a per-pod query stops returning a deleted pod; its history shows one span."""
    extra = Engine(EngineConfig(model="extra", engine_id="7"))
    added = time.time()
    with serve(engine_app(extra)) as handle:
        target = ScrapeTarget.of(f"127.0.0.1:{handle.port}", job="vllm-engine", namespace="default", pod="extra-0")
        prometheus.local.add_target(target)
        try:
            up = prometheus.client.wait_targets_up(4, budget=15)  # 2.x applies target changes every 5s
            assert any(t.labels.get("pod") == "extra-0" for t in up)
            name = prometheus.client.name_form("vllm:kv_cache_usage_perc").stored
            prometheus.client.wait_for_value(f'sum({name}{{engine="7"}})', lambda v: v == 0, 10,
                                             "series of the added engine")
        finally:
            prometheus.local.remove_targets(target.address)
        wait_until(lambda: len(prometheus.client.targets()) == 3, 15, "Prometheus dropping the removed target",
                   interval=0.2)
        wait_until(lambda: not prometheus.client.query('up{pod="extra-0"}'), 15,
                   "the removed target's series marked stale (up{pod=\"extra-0\"} no longer answered)", interval=0.2)
    history = [presence(s, 0.5) for s in prometheus.client.query_range('up{pod="extra-0"}', added, time.time(), 0.5)]
    assert len(history) == 1 and len(history[0]["seen"]) == 1 and history[0]["seen"][0]["max"] == 1, \
        f"one span of up=1 for the removed target, seen: {history}"
