"""Under load through the gateway, Prometheus sees the engines' queue rise above the
tutorial's threshold of 5 and fall back to 0 once the load stops; the router counts the
incoming requests."""

import pytest

from vllm_stack_e2e import load

from .conftest import MODEL

pytestmark = pytest.mark.integration

QUEUE = "sum(vllm:num_requests_waiting)"  # the tutorial's metric, aggregated as KEDA needs it
THRESHOLD = 5


def test_queue_rises_above_5_under_load_then_returns_to_0(prometheus, gateway):
    query, notes = prometheus.client.adapt(QUEUE)
    assert bool(notes) == (prometheus.major < 3), notes
    prometheus.client.wait_for_value(query, lambda v: v == 0, 10, "queue empty before the load")

    result = load.drive(
        load.LoadConfig(base_url=gateway[1].url + "/v1", model=MODEL, prompt_len=50, max_tokens=40),
        prometheus.client.probe(query), target=THRESHOLD, hold=2.0, start_concurrency=2, step=4,
        step_interval=0.5, probe_interval=0.25, max_concurrency=24, max_requests=400, budget=40,
    )
    assert result.reached and result.stop_reason == "held", result.describe()
    assert result.peak > THRESHOLD
    assert [p.name for p in result.phases] == ["ramp", "hold", "stop"]
    assert result.load.failed == 0, result.load.failures()

    prometheus.client.wait_for_value(query, lambda v: v == 0, 15, "queue back to 0 after the load stopped")


def test_incoming_requests_counter_increases(prometheus, gateway):
    counter = f'sum(vllm:num_incoming_requests_total{{model="{MODEL}"}})'
    before = prometheus.client.wait_for_value(counter, lambda v: v is not None, 10, "router counter present")
    sent = load.run(load.LoadConfig(base_url=gateway[1].url + "/v1", model=MODEL, num_requests=5, prompt_len=5,
                                    max_tokens=1, stream=False))
    assert sent.completed == 5
    prometheus.client.wait_for_value(counter, lambda v: v is not None and v >= before + 5, 10,
                                     f"router counter up by 5 from {before:g}")
