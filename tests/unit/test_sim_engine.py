"""The engine's scheduler, vLLM V1's step by step: the token budget, chunked prefill, KV blocks,
FIFO admission, preemption, max_num_seqs, aborts, the gauges, the step cost and the idle loop.

The `Scheduler` tests drive single steps by hand (no event loop, no clock); each docstring has
the hand computation. The `Engine` tests run the step loop on their own event loop."""

import asyncio
import time

import pytest

from vllm_stack_e2e.sim.engine import Engine, EngineConfig, Sequence
from vllm_stack_e2e.sim.scheduler import Scheduler, StepOutput, StepPlan


def engine(**overrides) -> Engine:
    settings = dict(model="m", max_num_seqs=4, max_model_len=1000, kv_cache_tokens=1024,
                    prefill_tokens_per_s=1e6, inter_token_latency=0.005)
    settings.update(overrides)
    return Engine(EngineConfig(**settings))


def scheduler(budget: int = 100, max_num_seqs: int = 8, num_blocks: int = 100) -> Scheduler:
    return Scheduler(max_num_seqs=max_num_seqs, max_num_batched_tokens=budget, num_blocks=num_blocks,
                     block_size=16, max_model_len=1000)


def queue(sched: Scheduler, **prompts: int) -> list[Sequence]:
    """Add requests named by the keywords, with those prompt lengths and max_tokens 5."""
    seqs = [Sequence(name, prompt, 5) for name, prompt in prompts.items()]
    for seq in seqs:
        sched.add(seq)
    return seqs


def step(sched: Scheduler) -> tuple[StepPlan, StepOutput]:
    plan = sched.schedule()
    return plan, sched.update(plan)


def names(seqs) -> list[str]:
    return [seq.request_id for seq in seqs]


async def finish(eng: Engine, seq: Sequence) -> int:
    produced = 0
    async for new in eng.tokens(seq):
        produced += new
    return produced


def sample(eng: Engine, name: str, **labels: str) -> float:
    value = eng.registry.get_sample_value(name, {"model_name": "m", "engine": "0", **labels})
    assert value is not None, f"{name} {labels} not exposed"
    return value


# -- one step at a time ------------------------------------------------------------------
def test_the_token_budget_admits_whole_prompts_then_a_chunk():
    """Budget 100, three 60-token prompts, all waiting. Step 1: nothing runs yet; A takes 60
    (40 left), B is admitted with a 40-token chunk (0 left), C waits for budget. Running [A, B],
    waiting [C]; blocks ⌈60/16⌉ + ⌈40/16⌉ = 4 + 3 = 7. A's prompt is done, so A samples its first
    token; B has 20 prompt tokens to go and samples nothing."""
    sched = scheduler(budget=100)
    a, b, _ = queue(sched, A=60, B=60, C=60)
    plan, out = step(sched)
    assert plan.by_id() == {"A": 60, "B": 40} and names(plan.admitted) == ["A", "B"]
    assert (names(sched.running), names(sched.waiting)) == (["A", "B"], ["C"])
    assert sched.used_blocks == 7
    assert names(out.sampled) == ["A"] and (a.generated, b.generated) == (1, 0)


def test_chunked_prefill_finishes_in_the_next_step_beside_decodes_and_a_new_prompt():
    """Continuing the budget case. Step 2: running first, A decodes 1 (99 left), B takes the last
    20 of its prompt (79 left); then C is admitted with all 60 (19 left). Blocks: A ⌈61/16⌉ = 4
    (no new), B ⌈60/16⌉ = 4 (+1), C 4 → 12. B and C finish their prompts: both sample their
    first token, A its second. Step 3 is three decodes of 1 token."""
    sched = scheduler(budget=100)
    a, b, c = queue(sched, A=60, B=60, C=60)
    step(sched)
    plan, out = step(sched)
    assert plan.by_id() == {"A": 1, "B": 20, "C": 60} and plan.prefill_tokens == 80
    assert sched.used_blocks == 12 and not sched.waiting
    assert names(out.sampled) == ["A", "B", "C"] and (a.generated, b.generated, c.generated) == (2, 1, 1)
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 1, "B": 1, "C": 1} and plan.prefill_tokens == 0


def test_a_decode_takes_one_token_a_step_and_kv_grows_block_by_block():
    """A 16-token prompt, max_tokens 3, budget 100. Step 1 computes 16 tokens: 1 block, nothing
    reserved for output; the first token comes. Step 2 computes token 17: a second block; token
    2. Step 3 computes token 18 (still 2 blocks); token 3 = max_tokens: finished, blocks freed.
    Step 4 has nothing to schedule."""
    sched = scheduler(budget=100)
    seq = Sequence("A", 16, 3)
    sched.add(seq)
    blocks = []
    for expected in ({"A": 16}, {"A": 1}, {"A": 1}):
        plan, out = step(sched)
        assert plan.by_id() == expected
        blocks.append(seq.blocks)
    assert blocks == [1, 2, 0] and sched.used_blocks == 0
    assert out.finished == [seq] and seq.finish_reason == "length" and seq.generated == 3
    assert not sched.schedule().tokens


def test_when_the_budget_is_spent_later_running_requests_get_nothing_but_stay_running():
    """Budget 3, three 1-token prompts: step 1 admits A, B, C with 1 token each; all three sample
    a token and decode from then on. Lowered to 2 (vLLM refuses a budget below max_num_seqs, so
    only decodes beyond the budget get here): step 2 gives A 1 and B 1, the budget is spent, C
    gets nothing and is still running, not waiting."""
    sched = scheduler(budget=3)
    queue(sched, A=1, B=1, C=1)
    step(sched)
    sched.max_num_batched_tokens = 2
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 1, "B": 1}
    assert names(sched.running) == ["A", "B", "C"] and not sched.waiting


def test_a_head_whose_blocks_do_not_fit_blocks_the_queue_behind_it():
    """10 blocks of 16 (160 tokens), budget 1000. A (100 tokens) takes ⌈100/16⌉ = 7 blocks, 3
    left. B (60 tokens) needs 4: admission stops there, and C (10 tokens, 1 block) waits behind
    B although it would fit. Nobody is preempted for a waiting request."""
    sched = scheduler(budget=1000, num_blocks=10)
    queue(sched, A=100, B=60, C=10)
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 100} and not plan.preempted
    assert names(sched.waiting) == ["B", "C"] and sched.free_blocks == 3


def test_kv_growth_preempts_the_newest_running_request_to_the_front_of_waiting():
    """8 blocks, budget 1000, A and B 64-token prompts. Step 1: 4 blocks each, none free; both
    sample a token (65 tokens, 64 computed). C (16 tokens) arrives. Step 2: A's token 65 needs a
    5th block: B, the newest running request, is preempted (4 blocks freed, computed reset to 0,
    put before C); A takes 1 block (3 free). A step that preempted admits nobody, so C waits
    although its block would fit. Step 3: A decodes; B at the head needs its prompt and its
    1 generated token again, 65 tokens = 5 blocks > 3 free, so B and C wait."""
    sched = scheduler(budget=1000, num_blocks=8)
    _, b = queue(sched, A=64, B=64)
    step(sched)
    queue(sched, C=16)
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 1} and plan.preempted == [b]
    assert names(sched.running) == ["A"] and names(sched.waiting) == ["B", "C"]
    assert (b.state, b.computed, b.blocks, b.generated, b.preemptions) == ("waiting", 0, 0, 1, 1)
    assert sched.free_blocks == 3
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 1} and names(sched.waiting) == ["B", "C"]


def test_a_request_that_is_itself_the_newest_preempts_itself_and_ends_the_pass():
    """8 blocks: A 60 tokens (4 blocks), B 64 (4 blocks), none free. Step 2: A's token 61 fits
    its 4th block; B's token 65 needs a 5th, and the newest running request is B itself: B is
    preempted and the running pass stops."""
    sched = scheduler(budget=1000, num_blocks=8)
    _, b = queue(sched, A=60, B=64)
    step(sched)
    plan, _ = step(sched)
    assert plan.by_id() == {"A": 1} and plan.preempted == [b] and names(sched.waiting) == ["B"]
    assert sched.used_blocks == 4


def test_at_most_max_num_seqs_run():
    """max_num_seqs 2, budget 100, three 10-token prompts with max_tokens 1. Step 1 admits A and
    B (20 tokens) and stops with 80 budget left: 2 are running. Both finish on their first token.
    Step 2 admits C."""
    sched = scheduler(budget=100, max_num_seqs=2)
    for name in "ABC":
        sched.add(Sequence(name, 10, 1))
    plan, out = step(sched)
    assert plan.by_id() == {"A": 10, "B": 10} and names(sched.waiting) == ["C"]
    assert names(out.finished) == ["A", "B"] and not sched.running
    assert step(sched)[0].by_id() == {"C": 10}


def test_the_step_cost_is_a_forward_pass_plus_its_prefill():
    """Decodes only: inter_token_latency (0.03 s) at any batch size. A 2048-token chunk at 8000
    tokens/s: 0.03 + 0.256 s."""
    config = EngineConfig(inter_token_latency=0.03, prefill_tokens_per_s=8000)
    assert config.step_seconds(0) == 0.03
    assert config.step_seconds(2048) == pytest.approx(0.286)


# -- the step loop -----------------------------------------------------------------------
def test_gauges_publish_the_state_after_a_step():
    """Replaces a test of gauges read right after add_request: vLLM publishes its scheduler stats
    once per step, after it. Budget 100, 100 blocks, three 60-token prompts: before step 1 ends
    the gauges read 0; after it (A's first token) running 2 (B only part prefilled), waiting 1,
    KV 7/100 blocks = 0.07 — while the scheduler has already planned step 2 (C admitted: 3 and 0)."""
    eng = engine(max_num_batched_tokens=100, kv_cache_tokens=1600, inter_token_latency=0.05)

    def gauges() -> tuple[float, float, float]:
        eng.refresh_gauges()
        return tuple(sample(eng, f"vllm:{name}") for name in
                     ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"))

    async def scenario():
        seqs = [eng.add_request(60, 5) for _ in range(3)]
        before = gauges()
        await seqs[0].wake.wait()
        after, live = gauges(), (eng.num_running, eng.num_waiting)
        for seq in seqs:
            eng.abort(seq)
        return before, after, live

    before, after, live = asyncio.run(scenario())
    assert before == (0, 0, 0)
    assert after == (2, 1, pytest.approx(0.07)) and live == (3, 0)


def test_abort_of_a_waiting_and_of_a_running_request():
    """Was `test_abort_frees_the_slot_for_the_next_request`, where the waiting request started
    inside abort(); now the next step admits it. max_num_seqs 1: after step 1 the hog (100
    tokens, 7 blocks = 112 KV tokens) runs, the patient one waits, a late one queues behind.
    Aborting the late one (waiting) leaves 1 waiting; aborting the hog (running, mid-step)
    frees its blocks; the patient one then runs to its 2 tokens."""
    eng = engine(max_num_seqs=1)

    async def scenario():
        hog, patient = eng.add_request(100, 500), eng.add_request(10, 2)
        await hog.wake.wait()
        assert (patient.state, eng.kv_used) == ("waiting", 112)
        late = eng.add_request(10, 2)
        eng.abort(late)
        assert (eng.num_waiting, late.finish_reason) == (1, "abort")
        eng.abort(hog)
        assert (eng.num_running, eng.kv_used, hog.finish_reason) == (0, 0, "abort")
        return await finish(eng, patient)

    assert asyncio.run(scenario()) == 2
    assert (eng.aborted_requests, eng.finished_requests, eng.kv_used) == (2, 1, 0)
    assert sample(eng, "vllm:request_success_total", finished_reason="abort") == 2
    assert sample(eng, "vllm:request_success_total", finished_reason="length") == 1


def test_the_idle_engine_keeps_no_timer_and_uses_no_cpu():
    """A 10-token prompt with max_tokens 3 takes 3 steps (prefill + first token, then 2 decodes).
    Then nothing runs: no step is due, no step runs for 0.2 s, and the process uses no CPU
    worth counting; a new request wakes the loop (1 more step)."""
    eng = engine()

    async def scenario():
        seq = eng.add_request(10, 3)
        assert not eng.idle
        await finish(eng, seq)
        assert eng.idle and eng.steps == 3
        cpu = time.process_time()
        await asyncio.sleep(0.2)
        idle_cpu = time.process_time() - cpu
        assert eng.idle and eng.steps == 3 and idle_cpu < 0.05
        return await finish(eng, eng.add_request(10, 1))

    assert asyncio.run(scenario()) == 1
    assert eng.steps == 4 and eng.idle


def test_at_most_max_num_seqs_run_and_the_rest_wait_in_arrival_order():
    """Updated: the old rule admitted inside add_request; now step 1 admits. max_num_seqs 2, five
    (10, 3) requests: after step 1 two run and three wait; each request is admitted in arrival
    order and produces its 3 tokens."""
    eng = engine(max_num_seqs=2)

    async def scenario():
        seqs = [eng.add_request(10, 3) for _ in range(5)]
        await seqs[0].wake.wait()
        assert (eng.num_running, eng.num_waiting) == (2, 3)
        produced = await asyncio.gather(*(finish(eng, s) for s in seqs))
        return seqs, produced

    seqs, produced = asyncio.run(scenario())
    assert produced == [3] * 5
    assert (eng.num_running, eng.num_waiting, eng.kv_used) == (0, 0, 0)
    assert sorted(seqs, key=lambda s: s.scheduled_at) == seqs


def test_requests_wait_when_their_blocks_do_not_fit():
    """Updated from whole-prompt KV admission to blocks: 112 KV tokens = 7 blocks, three 40-token
    prompts (3 blocks each). Step 1 admits two (6 blocks); the third needs 3 with 1 free and waits;
    step 2 (decodes, token 41 still in block 3) keeps it so: (2, 1, 96 KV tokens). The two finish
    at max_tokens 2, then the third runs."""
    eng = engine(max_num_seqs=10, kv_cache_tokens=112, max_model_len=100)

    async def scenario():
        seqs = [eng.add_request(40, 2) for _ in range(3)]
        await seqs[0].wake.wait()
        assert (eng.num_running, eng.num_waiting, eng.kv_used) == (2, 1, 96)
        await asyncio.gather(*(finish(eng, s) for s in seqs))

    asyncio.run(scenario())
    assert eng.finished_requests == 3


def test_a_big_request_at_the_head_blocks_smaller_ones_behind_it():
    """Updated to blocks: 7 blocks; the first (60 tokens) takes 4; the big one (50 tokens, 4
    blocks) does not fit in 3 and blocks the small one (10 tokens, 1 block) that would."""
    eng = engine(max_num_seqs=10, kv_cache_tokens=112, max_model_len=100)

    async def scenario():
        first, big, small = eng.add_request(60, 2), eng.add_request(50, 2), eng.add_request(10, 2)
        await first.wake.wait()
        assert [first.state, big.state, small.state] == ["running", "waiting", "waiting"]
        await asyncio.gather(finish(eng, first), finish(eng, big), finish(eng, small))
        return big, small

    big, small = asyncio.run(scenario())
    assert big.scheduled_at <= small.scheduled_at


def test_time_to_first_token_grows_with_the_prompt():
    """TTFT is the steps the prompt spans: inter_token_latency each, plus prompt / prefill rate.
    At 2000 tokens/s, ITL 0.001: 20 tokens 0.011 s; 400 tokens (one 2048-token step) 0.201 s."""
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


def test_a_prompt_longer_than_the_budget_takes_two_steps():
    """Budget 2048, a 3000-token prompt at 20000 tokens/s, ITL 0.01: step 1 computes 2048 (0.01 +
    0.1024 s), step 2 the last 952 (0.01 + 0.0476 s) and samples the first token: 2 steps, 0.17 s."""
    eng = engine(max_model_len=4000, kv_cache_tokens=4096, prefill_tokens_per_s=20000, inter_token_latency=0.01)

    async def scenario():
        seq = eng.add_request(3000, 2)
        await seq.wake.wait()
        steps = eng.steps
        await finish(eng, seq)
        return seq, steps

    seq, steps = asyncio.run(scenario())
    assert steps == 2
    assert seq.first_token_at - seq.arrival == pytest.approx(0.17, abs=0.05)


def test_tokens_come_one_per_inter_token_latency():
    """11 tokens: the first ends the prefill step, then 10 decode steps of 0.02 s: 0.2 s of
    decode, 10 gaps measured against the cost model."""
    eng = engine(inter_token_latency=0.02)

    async def scenario():
        seq = eng.add_request(5, 11)
        await finish(eng, seq)
        return seq

    seq = asyncio.run(scenario())
    assert seq.finished_at - seq.first_token_at == pytest.approx(10 * 0.02, rel=0.25)
    assert eng.itl_gaps == 10 and eng.itl_abs_deviation / eng.itl_gaps < 0.01


def test_kv_growth_preempts_the_latest_admitted_and_both_still_finish():
    """Updated to blocks: 7 blocks, two 45-token prompts with 3 blocks each (1 free), 20 tokens
    each. Token 49 needs a 4th block: A takes the free one in step 5, B is then the newest and
    preempts itself (once). B's recompute (45 + 4 = 49 tokens, 4 blocks) waits for A to finish;
    then B runs alone to its 20 tokens."""
    eng = engine(max_num_seqs=4, kv_cache_tokens=112, max_model_len=100)

    async def scenario():
        first, second = eng.add_request(45, 20), eng.add_request(45, 20)
        produced = await asyncio.gather(finish(eng, first), finish(eng, second))
        return first, second, produced

    first, second, produced = asyncio.run(scenario())
    assert produced == [20, 20]
    assert (first.preemptions, second.preemptions) == (0, 1)
    assert sample(eng, "vllm:num_preemptions_total") == 1
    assert eng.kv_used == 0


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


@pytest.mark.parametrize("bad, message", [
    (dict(kv_cache_tokens=100, max_model_len=200), "cannot hold one request"),
    (dict(kv_cache_tokens=1000, max_model_len=1000), r"62 blocks of 16\) cannot hold one request"),
    (dict(max_num_seqs=0), "max_num_seqs"),
    (dict(prefill_tokens_per_s=0), "prefill_tokens_per_s"),
    (dict(max_num_batched_tokens=0), "max_num_batched_tokens must be ≥ 1"),
    (dict(max_num_seqs=8, max_num_batched_tokens=4),
     r"max_num_batched_tokens \(4\) must be greater than or equal to max_num_seqs \(8\)"),
    (dict(block_size=0), "block_size must be ≥ 1"),
])
def test_settings_vllm_would_refuse_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        engine(**bad)


def test_a_request_that_could_never_run_is_refused():
    """A prompt of max_model_len tokens leaves no room for one output token (the API answers 400
    before it gets here); queued, it would wait forever."""
    eng = engine()

    async def scenario():
        with pytest.raises(ValueError, match="prompt_tokens < max_model_len"):
            eng.add_request(1000, 1)

    asyncio.run(scenario())
