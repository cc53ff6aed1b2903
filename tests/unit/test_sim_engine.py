"""The engine's scheduler: max_num_seqs, the KV budget, FIFO admission, prefill time,
preemption, aborts, and the counters it keeps. Each test runs its own event loop."""

import asyncio

import pytest

from vllm_stack_e2e.sim.engine import Engine, EngineConfig, Sequence


def engine(**overrides) -> Engine:
    settings = dict(model="m", max_num_seqs=4, max_model_len=1000, kv_cache_tokens=1000,
                    prefill_tokens_per_s=1e6, inter_token_latency=0.005)
    settings.update(overrides)
    return Engine(EngineConfig(**settings))


async def finish(eng: Engine, seq: Sequence) -> int:
    produced = 0
    async for new in eng.tokens(seq):
        produced += new
    return produced


def sample(eng: Engine, name: str, **labels: str) -> float:
    value = eng.registry.get_sample_value(name, {"model_name": "m", "engine": "0", **labels})
    assert value is not None, f"{name} {labels} not exposed"
    return value


def test_at_most_max_num_seqs_run_and_the_rest_wait():
    eng = engine(max_num_seqs=2)

    async def scenario():
        seqs = [eng.add_request(10, 3) for _ in range(5)]
        assert (eng.num_running, eng.num_waiting) == (2, 3)
        produced = await asyncio.gather(*(finish(eng, s) for s in seqs))
        return seqs, produced

    seqs, produced = asyncio.run(scenario())
    assert produced == [3] * 5
    assert (eng.num_running, eng.num_waiting, eng.kv_used) == (0, 0, 0)
    order = sorted(seqs, key=lambda s: s.scheduled_at)
    assert order == seqs, "waiting requests must be admitted in arrival order"


def test_requests_wait_when_their_kv_does_not_fit():
    eng = engine(max_num_seqs=10, kv_cache_tokens=100, max_model_len=100)

    async def scenario():
        seqs = [eng.add_request(40, 2) for _ in range(3)]
        assert (eng.num_running, eng.num_waiting, eng.kv_used) == (2, 1, 80)
        await asyncio.gather(*(finish(eng, s) for s in seqs))

    asyncio.run(scenario())
    assert eng.finished_requests == 3


def test_a_big_request_at_the_head_blocks_smaller_ones_behind_it():
    eng = engine(max_num_seqs=10, kv_cache_tokens=100, max_model_len=100)

    async def scenario():
        first = eng.add_request(60, 2)
        big = eng.add_request(50, 2)
        small = eng.add_request(10, 2)
        assert [first.state, big.state, small.state] == ["running", "waiting", "waiting"]
        await asyncio.gather(finish(eng, first), finish(eng, big), finish(eng, small))
        return big, small

    big, small = asyncio.run(scenario())
    assert big.scheduled_at <= small.scheduled_at


def test_time_to_first_token_grows_with_the_prompt():
    eng = engine(prefill_tokens_per_s=2000, inter_token_latency=0.001)

    async def scenario():
        short = eng.add_request(20, 1)
        await finish(eng, short)
        long = eng.add_request(400, 1)
        await finish(eng, long)
        return short, long

    short, long = asyncio.run(scenario())
    assert long.first_token_at - long.arrival == pytest.approx(0.2, abs=0.05)
    assert short.first_token_at - short.arrival < 0.05


def test_tokens_come_one_per_inter_token_latency():
    eng = engine(inter_token_latency=0.02)

    async def scenario():
        seq = eng.add_request(5, 11)
        await finish(eng, seq)
        return seq

    seq = asyncio.run(scenario())
    decode = seq.finished_at - seq.first_token_at
    assert decode == pytest.approx(10 * 0.02, rel=0.25)


def test_kv_growth_preempts_the_latest_admitted_and_both_still_finish():
    eng = engine(max_num_seqs=4, kv_cache_tokens=100, max_model_len=100)

    async def scenario():
        first, second = eng.add_request(45, 20), eng.add_request(45, 20)
        produced = await asyncio.gather(finish(eng, first), finish(eng, second))
        return first, second, produced

    first, second, produced = asyncio.run(scenario())
    assert produced == [20, 20]
    assert second.preemptions >= 1 and first.preemptions == 0
    assert sample(eng, "vllm:num_preemptions_total") == second.preemptions
    assert eng.kv_used == 0


def test_abort_frees_the_slot_for_the_next_request():
    eng = engine(max_num_seqs=1)

    async def scenario():
        hog, patient = eng.add_request(10, 10_000 // 20), eng.add_request(10, 2)
        assert patient.state == "waiting"
        eng.abort(hog)
        assert patient.state == "running"
        await finish(eng, patient)
        return hog

    hog = asyncio.run(scenario())
    assert hog.finish_reason == "abort"
    assert sample(eng, "vllm:request_success_total", finished_reason="abort") == 1
    assert sample(eng, "vllm:request_success_total", finished_reason="length") == 1


def test_counters_add_up_tokens_and_successes():
    eng = engine()

    async def scenario():
        seqs = [eng.add_request(p, 4) for p in (7, 11, 13)]
        await asyncio.gather(*(finish(eng, s) for s in seqs))

    asyncio.run(scenario())
    assert sample(eng, "vllm:prompt_tokens_total") == 31
    assert sample(eng, "vllm:generation_tokens_total") == 12
    assert sample(eng, "vllm:request_success_total", finished_reason="length") == 3
    assert sample(eng, "vllm:time_to_first_token_seconds_count") == 3
    assert sample(eng, "vllm:inter_token_latency_seconds_count") == 9
    assert sample(eng, "vllm:e2e_request_latency_seconds_count") == 3


def test_gauges_follow_the_scheduler():
    eng = engine(max_num_seqs=1, kv_cache_tokens=1000)

    async def scenario():
        seqs = [eng.add_request(100, 2), eng.add_request(100, 2)]
        eng.refresh_gauges()
        snapshot = (sample(eng, "vllm:num_requests_running"), sample(eng, "vllm:num_requests_waiting"),
                    sample(eng, "vllm:kv_cache_usage_perc"))
        await asyncio.gather(*(finish(eng, s) for s in seqs))
        return snapshot

    assert asyncio.run(scenario()) == (1, 1, 0.1)
    eng.refresh_gauges()
    assert sample(eng, "vllm:num_requests_waiting") == 0


@pytest.mark.parametrize("bad, message", [
    (dict(kv_cache_tokens=100, max_model_len=200), "cannot hold one request"),
    (dict(max_num_seqs=0), "max_num_seqs"),
    (dict(prefill_tokens_per_s=0), "prefill_tokens_per_s"),
])
def test_settings_vllm_would_refuse_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        engine(**bad)
