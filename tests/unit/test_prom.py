"""prom.py without a running Prometheus: PromQL name rewriting, and how it reports a
Prometheus that is not there (a closed port is the real failure, not a fake)."""

import pytest

from vllm_stack_e2e.errors import WaitTimeout
from vllm_stack_e2e.prom import NameForm, Prometheus, PromError, colon_names, rewrite_names, underscore_name
from vllm_stack_e2e.net import free_port


def test_colon_names_are_found_outside_strings_durations_and_subqueries():
    promql = ('sum(rate(vllm:num_incoming_requests_total{job="a:b"}[1m:15s]) > bool 0) '
              '+ max_over_time(vllm:num_requests_waiting[5m]) + job:rate5m + vllm:num_requests_waiting')
    assert colon_names(promql) == ["vllm:num_incoming_requests_total", "vllm:num_requests_waiting", "job:rate5m"]


def test_rewrite_replaces_names_and_leaves_label_values_alone():
    promql = 'sum(vllm:num_requests_waiting{model_name="vllm:num_requests_waiting"})'
    rewritten = rewrite_names(promql, {"vllm:num_requests_waiting": "vllm_num_requests_waiting"})
    assert rewritten == 'sum(vllm_num_requests_waiting{model_name="vllm:num_requests_waiting"})'
    assert rewrite_names(promql, {}) == promql


def test_underscore_form_and_the_stored_name():
    assert underscore_name("vllm:num_requests_waiting") == "vllm_num_requests_waiting"
    form = NameForm("vllm:kv_cache_usage_perc", colons=False, underscores=True)
    assert form.stored == "vllm_kv_cache_usage_perc"
    assert NameForm("vllm:x", colons=False, underscores=False).stored is None


def test_an_absent_prometheus_is_reported_in_one_line_with_its_url():
    url = f"http://127.0.0.1:{free_port()}"
    with Prometheus(url, timeout=1) as prom:
        assert prom.ready() is False
        with pytest.raises(PromError) as caught:
            prom.query("up")
        message = str(caught.value)
        assert url in message and "\n" not in message and "is it running" in message
        with pytest.raises(WaitTimeout, match="ready: not reached after 0.3s; last seen /-/ready not 200"):
            prom.wait_ready(budget=0.3, interval=0.1)
        with pytest.raises(WaitTimeout) as waited:
            prom.wait_for_value("sum(vllm:num_requests_waiting)", lambda v: v is not None, 0.3, "queue metric",
                                interval=0.1)
        assert "queue metric" in str(waited.value) and "last seen" in str(waited.value) and "error: PromError" in str(waited.value)


def test_a_prometheus_moved_to_a_new_address_keeps_serving_its_holders() -> None:
    """A renewed port-forward moves the Stack's Prometheus; a wait holding the object must follow."""
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}})

    prom = Prometheus("http://127.0.0.1:1111", client=httpx.Client(transport=httpx.MockTransport(handler)))
    prom.scalar("up")
    prom.move_to("http://127.0.0.1:2222/")
    prom.scalar("up")
    assert [u.split("/api")[0] for u in seen] == ["http://127.0.0.1:1111", "http://127.0.0.1:2222"]
