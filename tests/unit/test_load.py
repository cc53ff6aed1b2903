"""The load generator against a real simulated engine over HTTP: fixed, open-loop, bounded
by duration, and the adaptive drive-the-queue mode with its phases."""

import io
import json

import pytest

from vllm_stack_e2e import load
from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.gateway import Gateway
from vllm_stack_e2e.sim.host import serve, wait_until
from vllm_stack_e2e.sim.tokens import count_text_tokens


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="m", max_num_seqs=2, max_model_len=4096, kv_cache_tokens=8192,
                               prefill_tokens_per_s=1e6, inter_token_latency=0.01))


@pytest.fixture(scope="module")
def base(engine):
    with serve(engine_app(engine)) as handle:
        yield handle.url + "/v1"


def test_prompt_len_is_about_that_many_tokens():
    assert count_text_tokens(load.make_prompt(7, 3000)) - 3000 in range(0, 8)


def test_percentiles_interpolate():
    assert load.percentile([], 50) is None
    assert load.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert load.percentile([5.0], 99) == 5.0


def test_a_fixed_batch_completes_with_ttft_and_latency(base):
    result = load.run(load.LoadConfig(base_url=base, num_requests=6, prompt_len=20, max_tokens=3))
    assert (result.completed, result.failed, result.model) == (6, 0, "m")
    assert all(r.output_tokens == 3 and r.ttft is not None and r.latency >= r.ttft for r in result.records)
    assert result.percentiles("latency")["p50"] > 0 and result.throughput > 0
    assert "6 completed, 0 failed" in result.summary()


def test_non_streaming_chat_reads_usage(base):
    result = load.run(load.LoadConfig(base_url=base, num_requests=3, prompt_len=5, max_tokens=2, stream=False,
                                      endpoint="chat", concurrency=1))
    assert result.completed == 3 and [r.output_tokens for r in result.records] == [2, 2, 2]


def test_open_loop_sends_every_request(base):
    result = load.run(load.LoadConfig(base_url=base, num_requests=8, prompt_len=5, max_tokens=1, rate=100.0))
    assert result.completed == 8


def test_duration_stops_the_run_and_cancels_what_is_in_flight(base, engine):
    result = load.run(load.LoadConfig(base_url=base, num_requests=4, prompt_len=5, max_tokens=2000, duration=0.5))
    assert result.cancelled == 4 and result.duration < 3
    wait_until(lambda: engine.num_running + engine.num_waiting == 0, 5, "engine idle after the cancelled run")


def test_failures_are_counted_by_status():
    gateway = Gateway(["m"])  # knows the model, has no engine: 503s
    with serve(gateway.app) as handle:
        result = load.run(load.LoadConfig(base_url=handle.url + "/v1", num_requests=5, prompt_len=5, max_tokens=1))
    assert (result.completed, result.failed, result.failures()) == (0, 5, {"503": 5})


def test_unreachable_api_is_a_one_line_error():
    from vllm_stack_e2e.net import free_port

    with pytest.raises(load.LoadError, match="cannot list models"):
        load.run(load.LoadConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", num_requests=1))


def test_drive_queue_ramps_holds_then_stops(base, engine):
    result = load.drive(load.LoadConfig(base_url=base, prompt_len=5, max_tokens=30), lambda: engine.num_waiting,
                        target=3, hold=0.6, step=2, step_interval=0.1, probe_interval=0.05, max_concurrency=16,
                        budget=15)
    assert result.reached and result.stop_reason == "held", result.describe()
    assert [p.name for p in result.phases] == ["ramp", "hold", "stop"]
    assert all(p.end is not None and p.end >= p.start for p in result.phases)
    assert result.phase("hold").end - result.phase("hold").start >= 0.6
    assert result.peak > 3 and result.max_concurrency <= 16
    wait_until(lambda: engine.num_running + engine.num_waiting == 0, 5, "queue drained after the stop")


def test_drive_queue_gives_up_at_its_budget(base, engine):
    async def never_high() -> float:
        return 0.0

    result = load.drive(load.LoadConfig(base_url=base, prompt_len=5, max_tokens=2), never_high, target=5, hold=1,
                        step_interval=0.1, probe_interval=0.05, max_concurrency=2, budget=0.8)
    assert not result.reached and result.stop_reason == "budget"
    assert [p.name for p in result.phases] == ["ramp", "stop"]


def test_drive_queue_is_bounded_in_requests_and_survives_a_failing_probe(base):
    def broken() -> float:
        raise RuntimeError("prometheus down")

    result = load.drive(load.LoadConfig(base_url=base, prompt_len=5, max_tokens=1), broken, target=1, hold=1,
                        max_requests=5, probe_interval=0.05, budget=10)
    assert result.stop_reason == "max_requests" and len(result.load.records) == 5
    assert result.probe_errors and "prometheus down" in result.probe_errors[0]


def test_drive_queue_ends_early_when_told_to_stop(base):
    import threading

    stop = threading.Event()
    stop.set()
    result = load.drive(load.LoadConfig(base_url=base, prompt_len=5, max_tokens=2), lambda: 0.0, target=5, hold=1,
                        budget=30, stop=stop)
    assert result.stop_reason == "stopped" and not result.reached
    assert result.phases[-1].end - result.phases[0].start < 5


def test_progress_is_one_line_per_interval_when_not_a_tty():
    out = io.StringIO()
    progress = load.Progress(out, quiet_interval=3600)
    progress.update("first")
    progress.update("second", force=True)
    assert out.getvalue() == "second\n"


def test_command_line_writes_json_and_exits_zero(base, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = load.main(["--openai_api_base", base, "--num-requests", "3", "--prompt-len", "10", "--max-tokens", "2",
                      "--json", str(out)])
    assert code == 0
    assert "3 completed, 0 failed" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["completed"] == 3 and len(saved["records"]) == 3


# ---- the adaptive controller on made-up readings (no HTTP) ------------------------------------------
def test_controller_grows_while_low_holds_once_above_and_stops_after_the_hold() -> None:
    c = load.QueueController(target=5, hold=10, start_concurrency=4, step=4, step_interval=1, max_concurrency=12)
    c.start(1000.0)
    assert c.observe(now=0.5, wall=1000.5, value=0) is None and c.limit == 4  # too soon to step
    assert c.observe(now=1.0, wall=1001.0, value=2) is None and c.limit == 8
    assert c.observe(now=2.0, wall=1002.0, value=None) is None and c.limit == 12  # no reading counts as low
    assert c.observe(now=3.0, wall=1003.0, value=1) is None and c.limit == 12  # capped
    assert c.observe(now=4.0, wall=1004.0, value=6) is None and c.reached  # the hold starts
    assert [p.name for p in c.phases] == ["ramp", "hold"] and c.phases[0].end == 1004.0
    assert c.observe(now=13.9, wall=1013.9, value=3) is None  # below again: still holding
    assert c.observe(now=14.0, wall=1014.0, value=7) == "held"
    c.finish(1014.0)
    assert [p.name for p in c.phases] == ["ramp", "hold", "stop"]
    assert [v for _, v, _ in c.samples] == [0, 2, None, 1, 6, 3, 7]


def test_controller_stops_at_its_budget_its_request_bound_or_when_told() -> None:
    c = load.QueueController(target=5, hold=1, budget=30, max_requests=100)
    assert c.stop_reason(now=10, issued=50, inflight=3, stopped=False) is None
    assert c.stop_reason(now=10, issued=50, inflight=3, stopped=True) == "stopped"
    assert c.stop_reason(now=30, issued=50, inflight=3, stopped=False) == "budget"
    assert c.stop_reason(now=10, issued=100, inflight=2, stopped=False) is None  # the last answers are due
    assert c.stop_reason(now=10, issued=100, inflight=0, stopped=False) == "max_requests"


def test_controller_refuses_bounds_that_cannot_stop() -> None:
    with pytest.raises(ValueError, match="budget > 0"):
        load.QueueController(target=5, hold=1, budget=0)
