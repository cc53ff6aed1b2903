"""Step 6's scale-up observation without a cluster: a load that cannot run is the scenario's
observation, said in the claim's message — never an error raised from the fixture that hides which
claim it broke (the CI run of 9b13561: `LoadError … lists no models` errored every test of a module)."""

from __future__ import annotations

from types import SimpleNamespace

from vllm_stack_e2e import waits
from vllm_stack_e2e.steps import step6_scale_up


class _Prom:
    """A Prometheus whose queue query never has a value (nothing scraped)."""

    def targets(self) -> list:  # noqa: ANN201
        return []

    def reach_value(self, promql, predicate, budget, description, interval=0.5):  # noqa: ANN001, ANN201
        return waits.until(waits.polling(lambda: None, 0.05), predicate, budget, description)


def _stack(router: str) -> SimpleNamespace:
    prom = _Prom()
    return SimpleNamespace(namespace="run", router_base=lambda: router, prometheus=lambda: prom, echo=lambda _l: None,
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

    load = step6_scale_up.LoadRun(None, target=5, budget=0)  # type: ignore[arg-type]
    assert load.ramp_seconds == 12.0, "4 → 96 concurrent requests, 8 more each second"
    rise = floors.queue_rise(load.ramp_seconds, 6.0)
    assert rise.seconds == 12 + 2 * 6 + floors.MARGIN
    follow = floors.replicas_follow(3, 15)
    assert follow.seconds == 2 * (3 + 15) + floors.MARGIN
    assert str(follow) == "46s = 2 × (KEDA poll 3s + HPA sync 15s) + margin 10s"
    assert floors.first_hpa_reading(15).seconds == 40
