"""Step 6's scale-up observation without a cluster: a load that cannot run is the scenario's
observation, said in the claim's message — never an error raised from the fixture that hides which
claim it broke (the CI run of 9b13561: `LoadError … lists no models` errored every test of a module)."""

from __future__ import annotations

from types import SimpleNamespace

from _stacks import with_handles

from vllm_stack_e2e import waits
from vllm_stack_e2e.steps import step6_scale_up


class _Prom:
    """A Prometheus whose queue query never has a value (nothing scraped)."""

    def targets(self) -> list:  # noqa: ANN201
        return []

    def query(self, _promql):  # noqa: ANN001, ANN201
        return []

    def reach_value(self, promql, predicate, budget, description, interval=0.5):  # noqa: ANN001, ANN201
        return waits.until(waits.polling(lambda: None, 0.05), predicate, budget, description)


def _stack(router: str) -> SimpleNamespace:
    prom = _Prom()
    return SimpleNamespace(namespace="run", kube=SimpleNamespace(list=lambda *_a, **_k: []), router_base=lambda: router, prometheus=lambda: prom, echo=lambda _l: None,
                           config=SimpleNamespace(engine_deployment="d", router_service="r",
                                                  profile_settings=SimpleNamespace(hpa_sync_seconds=1.0,
                                                                                   engine_ready_seconds=1.0)))


def test_a_load_that_cannot_start_ends_the_wait_and_is_recorded() -> None:
    """The router refuses (no model can be listed): the queue wait ends as soon as the load has
    ended by itself, not at its budget, and the observation says why."""
    tl = SimpleNamespace(event=lambda _t: None, span=lambda *_a: None, samples=[])
    stack = _stack("http://127.0.0.1:9/v1")  # port 9 (discard): refused on loopback
    run = step6_scale_up.drive_until_replicas(stack, tl, threshold=5, at_least=2, polling_interval=30)  # type: ignore[arg-type]
    assert not run.queue.reached and run.grew is None
    assert run.queue.elapsed < run.queue.budget, f"the wait ran its whole budget ({run.queue.budget:.0f}s) for a dead load"
    assert run.load_error and "cannot list models" in run.load_error
    assert run.explain().startswith("the load could not drive the queue: cannot list models")
    assert not run.grew_within_budget()


def test_step_6s_budgets_are_derived_from_what_is_deployed() -> None:
    """The queue's budget is the load's ramp and two reading lags; the replicas' is two polls and two
    HPA syncs — each plus the stated margin, each printed with its sum."""
    from vllm_stack_e2e import floors

    load = step6_scale_up.LoadRun(None, target=5, budget=0, max_concurrency=96)  # type: ignore[arg-type]
    assert load.ramp_seconds == 12.0, "4 → 96 concurrent requests, 8 more each second"
    rise = floors.queue_rise(load.ramp_seconds, 6.0)
    assert rise.seconds == 12 + 2 * 6 + floors.MARGIN
    follow = floors.replicas_follow(3, 15)
    assert follow.seconds == 2 * (3 + 15) + floors.MARGIN
    assert str(follow) == "46s = 2 × (KEDA poll 3s + HPA sync 15s) + margin 10s"
    assert floors.first_hpa_reading(15).seconds == 40


def _capacity_stack(cache_info: list[dict[str, str]], args: list[str] | None = None) -> SimpleNamespace:
    from vllm_stack_e2e.prom import Sample

    prom = SimpleNamespace(query=lambda _q: [Sample(labels, 1.0, 0.0) for labels in cache_info])
    dep = {"spec": {"template": {"spec": {"containers": [{"command": ["vllm", "serve", "m"], "args": args or []}]}}}}
    return with_handles(SimpleNamespace(namespace="run", prometheus=lambda: prom, kube=SimpleNamespace(get=lambda *_a: dep),
                                        config=SimpleNamespace(engine_deployment="d", scaledobject="so", hpa="h")))


def test_the_engines_capacity_is_their_kv_cache_in_whole_blocks_per_request() -> None:
    """24576 KV tokens (1536 blocks of 16) hold 7 requests of 3000 + 80 (+16) tokens, 194 blocks each;
    the smallest engine counts; a smaller --max-num-seqs lowers it."""
    info = [{"num_gpu_blocks": "1536", "block_size": "16", "engine": "0"},
            {"num_gpu_blocks": "4096", "block_size": "16", "engine": "0"}]
    capacity = step6_scale_up.engine_capacity(_capacity_stack(info))  # type: ignore[arg-type]
    assert capacity.running == 7 and "24576 tokens" in capacity.why and "194 blocks" in capacity.why
    seqs = step6_scale_up.engine_capacity(_capacity_stack(info, ["--max-num-seqs", "4"]))  # type: ignore[arg-type]
    assert seqs.running == 4 and "--max-num-seqs 4" in seqs.why
    unknown = step6_scale_up.engine_capacity(_capacity_stack([{"engine": "0"}]))  # type: ignore[arg-type]
    assert unknown.running is None and "cache_config_info" in unknown.why


def test_the_load_ceiling_follows_the_capacity_and_says_why() -> None:
    small = step6_scale_up.load_ceiling(step6_scale_up.Capacity(7, "KV"), target=5, at_least=2)
    assert small.concurrency == 2 * 7 + 10 + 1 and "2 engines × 7 running" in str(small)
    h100 = step6_scale_up.load_ceiling(step6_scale_up.Capacity(140, "KV"), target=25, at_least=5)
    assert h100.concurrency == 5 * 140 + 51
    many = step6_scale_up.load_ceiling(step6_scale_up.Capacity(140, "KV"), target=25, at_least=8)
    assert many.concurrency == step6_scale_up.LOAD_LIMIT and "cut from 1171" in many.why
    unknown = step6_scale_up.load_ceiling(step6_scale_up.Capacity(None, "no cache_config_info"), 5, 2)
    assert unknown.concurrency == step6_scale_up.DEFAULT_CEILING and "no cache_config_info" in unknown.why


def test_the_ramp_reaches_a_large_ceiling_in_twelve_steps() -> None:
    run = step6_scale_up.LoadRun(None, target=5, budget=0, max_concurrency=400)  # type: ignore[arg-type]
    assert run.step_size == 33 and run.ramp_seconds == 12.0


def test_a_queue_that_never_rose_is_told_with_the_load_and_the_engines() -> None:
    """The step-6 message tells "the load was too small" from "the metric is missing"."""
    from vllm_stack_e2e.timeline import Sample

    def sample(queue: float | None, running: float | None) -> Sample:
        return Sample(t=0, spec_replicas=1, ready_replicas=1, hpa_desired=1, hpa_current=1, hpa_metric=None,
                      queue=queue, so_ready="True", so_active="True", so_fallback="False", running=running)

    tl = SimpleNamespace(samples=[sample(0, 40), sample(0, 96)])
    seen = waits.Seen("queue above 5", 30.0, False, 0.0, 30.0, 0.0, "0")
    up = step6_scale_up.ScaleUp(threshold=5, at_least=2, budget=30, queue=seen, grew=None,
                                load={"samples": [(0.0, 0.0, 40), (1.0, 0.0, 96)]}, timeline=tl,  # type: ignore[arg-type]
                                ceiling=step6_scale_up.Ceiling(96, "the harness's default"))
    assert "load concurrency up to 96 of ceiling 96 (the harness's default); engines running at most 96; " \
           "queue at most 0" in up.explain()


class _SeriesProm:
    """A Prometheus whose trigger query matches `series` series and whose freshness count reads
    `fresh` (None: no series scraped within the lag); it records the queries it was asked."""

    def __init__(self, series: int, fresh: float | None) -> None:
        self.series, self.fresh, self.asked = series, fresh, []

    def targets(self) -> list:  # noqa: ANN201
        return [SimpleNamespace(labels={"namespace": "run"}, scrape_interval=3.0)]

    def query(self, promql):  # noqa: ANN001, ANN201
        self.asked.append(promql)
        return [object()] * self.series

    def scalar(self, promql):  # noqa: ANN001, ANN201
        self.asked.append(promql)
        return self.fresh


def _series_stack(prom: _SeriesProm, upgraded_at: float) -> SimpleNamespace:
    return SimpleNamespace(namespace="run", prometheus=lambda: prom, upgraded_at=upgraded_at)


def test_a_series_scraped_within_the_lag_is_a_reading() -> None:
    prom = _SeriesProm(1, 1.0)
    match = step6_scale_up.trigger_series(_series_stack(prom, 0.0), "vllm:num_requests_waiting")  # type: ignore[arg-type]
    assert match.matched, match.explain()
    assert match.query == 'vllm:num_requests_waiting{namespace="run"}', "scoped: other stacks share the cluster"
    assert 'count(time() - timestamp(vllm:num_requests_waiting{namespace="run"}) <= 4)' in prom.asked, prom.asked
    assert match.fresh.window == 0, "the upgrade is long past: the reading costs no wait"


def test_an_empty_result_says_the_query_matched_no_series() -> None:
    match = step6_scale_up.trigger_series(_series_stack(_SeriesProm(0, None), 0.0), "vllm:num_requests_waiting")  # type: ignore[arg-type]
    assert not match.matched
    assert "matched no series while an engine ran — KEDA reads that as 0" in match.explain(), match.explain()


def test_a_series_no_longer_scraped_is_not_a_reading() -> None:
    """Defect 6's shape: the job was dropped by a reload, no staleness markers, the last value stays
    for the 5-minute lookback — the query still matches, the series is old."""
    match = step6_scale_up.trigger_series(_series_stack(_SeriesProm(1, None), 0.0), "vllm:num_requests_waiting")  # type: ignore[arg-type]
    assert not match.matched
    assert "matched 1 series, but at +0s none of them had been scraped in the last 4s" in match.explain(), \
        match.explain()


def test_the_reading_waits_until_a_change_of_the_upgrade_has_reached_prometheus() -> None:
    """Read right after an upgrade, a removed ServiceMonitor's series would still look fresh: the
    freshness is held until floors.scrape_change + one lag after the upgrade."""
    import time

    from vllm_stack_e2e import floors

    prom = _SeriesProm(1, 1.0)
    lag = 4.0
    upgraded = time.time() - floors.scrape_change(lag).seconds - lag + 1.5  # 1.5 s still to go
    match = step6_scale_up.trigger_series(_series_stack(prom, upgraded), "sum(vllm:num_requests_waiting)")  # type: ignore[arg-type]
    assert match.matched and 0.5 < match.fresh.window <= 1.5, (match.fresh.window, match.explain())
    assert len(match.fresh.history) >= 2, f"held with readings, not a single look: {match.fresh.history}"
