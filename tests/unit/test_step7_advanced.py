"""Step 7's judges, without a cluster: the scale-down behavior checker and the merge of what
the sampler and the watches saw into one list of replica changes."""

from __future__ import annotations

from vllm_stack_e2e import waits
from vllm_stack_e2e.steps.step7_advanced import replica_changes, scale_down_violations
from vllm_stack_e2e.timeline import Sample, Timeline


def test_violations_accept_a_behavior_that_is_respected() -> None:
    assert scale_down_violations([(0, 5), (70, 3), (90, 2), (110, 1)], 0, 60, 50, 20) == []
    assert scale_down_violations([(0, 5), (70, 2), (90, 1)], 0, 60, 50, 20) == []  # truncation: 5 → 2 is allowed
    assert scale_down_violations([(0, 5), (59.2, 2), (90, 1)], 0, 60, 50, 20) == []  # the HPA's own stamp


def test_violations_detect_early_and_large_steps() -> None:
    assert scale_down_violations([(0, 5), (30, 3)], 0, 60, 50, 20)  # before the window
    assert scale_down_violations([(0, 5), (55, 2)], 0, 60, 50, 20)  # before the window, past the slack
    assert scale_down_violations([(0, 5), (70, 1)], 0, 60, 50, 20)  # 80 % at once
    assert scale_down_violations([(0, 4), (70, 2), (75, 1)], 0, 60, 50, 20)  # two steps in one period


def _sample(t: float, replicas: int | None, generation: int | None = None) -> Sample:
    return Sample(t=t, spec_replicas=replicas, ready_replicas=replicas or 0, hpa_desired=None, hpa_current=None,
                  hpa_metric=None, queue=None, so_ready=None, so_active=None, so_fallback=None,
                  generation=generation if replicas is not None else None)


def _dep(replicas: int, generation: int) -> dict:
    return {"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": replicas}}


def _timeline(*samples: Sample) -> Timeline:
    tl = Timeline.__new__(Timeline)
    tl.samples = list(samples)
    return tl


def test_replica_changes_merge_the_sampler_and_the_watch() -> None:
    """The watch sees the last drop to 1 before the sampler's next tick: it is a real change, with
    the time the API server reported it, not one made up at the end of the wait."""
    tl = _timeline(_sample(100.0, 1, 1), _sample(101.0, 5, 2), _sample(102.0, 5, 2), _sample(170.0, 2, 3),
                   _sample(171.0, None))
    back = waits.Seen("back to 1", 120, True, _dep(1, 4), elapsed=100.0, at=300.0, shown="",
                      history=[(0.0, _dep(2, 3)), (99.5, _dep(1, 4))])
    assert replica_changes(tl, None, back) == [(100.0, 1), (101.0, 5), (170.0, 2), (299.5, 1)]


def test_replica_changes_keep_the_api_servers_order_when_the_clocks_disagree() -> None:
    """The CI run of 9b13561: the cluster went 1 → 4 → 5 (generations 2, 3), then 5 → 2 → 1. The
    sampler stamped its reading of 4 after the watch's 5 (its stamp is late by its own duration);
    merged by time the claim saw 5, 4, 5 — a scale-down at the peak that never happened. Merged by
    generation it sees what the API server wrote, and the behavior claim holds."""
    grew = waits.Seen("at 5", 60, True, _dep(5, 3), elapsed=20.0, at=1000.0, shown="",
                      history=[(0.0, _dep(1, 1)), (5.0, _dep(4, 2)), (19.0, _dep(5, 3))])  # 985, 999
    tl = _timeline(_sample(980.0, 1, 1), _sample(999.4, 4, 2), _sample(1000.2, 5, 3), _sample(1030.5, 2, 4),
                   _sample(1045.5, 1, 5))
    changes = replica_changes(tl, grew)
    assert changes == [(980.0, 1), (985.0, 4), (999.0, 5), (1030.5, 2), (1045.5, 1)]
    assert scale_down_violations([c for c in changes if c[0] >= 999.0], 999.0, 30, 50, 15) == []
    # The same readings merged by time alone: the older 4 lands after the 5 and reads as a scale-down.
    by_time = sorted([(s.t, s.spec_replicas) for s in tl.samples] + [(985.0, 4), (999.0, 5)])
    assert (999.4, 4) in by_time and by_time.index((999.4, 4)) > by_time.index((999.0, 5))


def test_a_generations_time_never_runs_backwards() -> None:
    """Only the sampler saw generation 3, stamped before the watch's generation 2: the change keeps
    the API server's order, at the later time."""
    watch = waits.Seen("w", 10, True, _dep(4, 2), elapsed=10.0, at=110.0, shown="", history=[(5.0, _dep(4, 2))])
    tl = _timeline(_sample(100.0, 1, 1), _sample(104.0, 5, 3))
    assert replica_changes(tl, watch) == [(100.0, 1), (105.0, 4), (105.0, 5)]


def test_the_rate_window_comes_from_the_deployed_keepalive_query() -> None:
    from vllm_stack_e2e import kube as k
    from vllm_stack_e2e.steps.scenario import rate_window

    def so(*queries: str) -> k.ScaledObject:
        return k.ScaledObject({"spec": {"triggers": [{"type": "prometheus", "metadata": {"query": q}}
                                                     for q in queries]}})

    tutorial = so("vllm:num_requests_waiting", "sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)")
    assert rate_window(tutorial) == 60.0
    assert rate_window(so("sum(rate(vllm:num_incoming_requests_total[20s]) > bool 0)")) == 20.0
    assert rate_window(so("sum(vllm:num_requests_waiting)")) == 0.0


def test_steps_one_period_apart_seen_with_jitter_are_two_periods() -> None:
    """Period 15 s = one HPA sync: 5 → 2 at the window, 2 → 1 one sync later, the second seen
    0.4 s early. Two periods, not one; 5 → 1 at once stays a breach."""
    assert scale_down_violations([(0, 5), (30.2, 2), (44.8, 1)], 0, 30, 50, 15) == []
    assert scale_down_violations([(0, 5), (30.2, 1)], 0, 30, 50, 15)


class _Prom:
    def __init__(self, values: list[float | None], scraped: tuple[str, ...] = ("e-1", "e-2")) -> None:
        self.values, self.queries, self.scraped = values, [], scraped

    def targets(self) -> list:
        from vllm_stack_e2e.prom import Target
        return [Target(f"http://{pod}/metrics", "up", "", {"pod": pod}, "engines") for pod in self.scraped]

    def scalar(self, query: str) -> float | None:
        self.queries.append(query)
        return self.values.pop(0) if self.values else 0.0


def _stack(pods: list[str], prom: _Prom):
    from types import SimpleNamespace
    kube = SimpleNamespace(list=lambda *_a, **_k: [{"metadata": {"name": name}} for name in pods])
    return SimpleNamespace(kube=kube, namespace="run", prometheus=lambda: prom,
                           config=SimpleNamespace(release="vllm", model="llama3"))


def test_in_flight_counts_waiting_and_running_on_the_engines_that_exist_now() -> None:
    from vllm_stack_e2e.steps import scenario
    prom = _Prom([7.0])
    assert scenario.in_flight(_stack(["e-1", "e-2"], prom)) == 7.0
    # one selector for both names (`waiting or running` would drop each pod's running series: `or`
    # matches on the labels without the name), in Prometheus 3's and 2's spelling
    assert prom.queries == ['sum({__name__=~"vllm[:_]num_requests_(waiting|running)",'
                            'namespace="run",pod=~"e-1|e-2"})']
    assert scenario.in_flight(_stack([], _Prom([9.0]))) == 0.0, "no engine pod: nothing in flight"


def test_in_flight_is_unknown_while_an_engine_is_not_scraped_now() -> None:
    """A removed ServiceMonitor's series still answer (defect 6) — with the values of the moment it went."""
    from vllm_stack_e2e.steps import scenario
    prom = _Prom([0.0], scraped=("e-1",))
    assert scenario.in_flight(_stack(["e-1", "e-2"], prom)) is None
    assert prom.queries == [], "no query of series that may be lingering"


def test_wait_idle_waits_out_the_last_scenarios_queue_and_says_what_it_saw() -> None:
    import pytest
    from vllm_stack_e2e.errors import WaitTimeout
    from vllm_stack_e2e.steps import scenario
    scenario.wait_idle(_stack(["e-1"], _Prom([3.0, 0.0])), budget=10)
    with pytest.raises(WaitTimeout, match="4 in flight"):
        scenario.wait_idle(_stack(["e-1"], _Prom([4.0] * 10)), budget=0.1)
    with pytest.raises(WaitTimeout, match="not scraped by Prometheus now"):
        scenario.wait_idle(_stack(["e-9"], _Prom([0.0] * 10)), budget=0.1)


def test_an_hpa_view_knows_its_scale_down_window_and_the_replicas_it_holds() -> None:
    from vllm_stack_e2e import kube as k

    hpa = k.Hpa({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 20}}},
                 "status": {"currentReplicas": 1, "desiredReplicas": 4}})
    assert hpa.scale_down_window == 20 and hpa.remembers_more_than == 4
    # The sync that took 2 replicas to 1: every recommendation within its window was 1 or less.
    assert k.Hpa({"status": {"currentReplicas": 2, "desiredReplicas": 1}}).remembers_more_than == 1
    assert k.Hpa({"spec": {}}).scale_down_window == 300, "Kubernetes' default"
    assert k.Hpa(None).remembers_more_than == 0 and not k.Hpa(None).exists


def test_an_hpa_whose_metric_fails_has_recorded_nothing_since_the_failure() -> None:
    """kube-controller-manager v1.35.4 horizontal.go: a sync whose metric fails returns before it
    stores a recommendation; ScalingActive=False says since when."""
    from vllm_stack_e2e import kube as k

    failing = k.Hpa({"status": {"desiredReplicas": 3, "conditions": [
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetExternalMetric",
         "lastTransitionTime": "2026-12-05T01:41:35Z"}]}})
    assert failing.recommends_since() == 1796434895.0
    active = k.Hpa({"status": {"conditions": [{"type": "ScalingActive", "status": "True",
                                                "lastTransitionTime": "2026-12-05T01:41:35Z"}]}})
    assert active.recommends_since() is None, "an active HPA records a recommendation every sync"


def test_forgetting_recommendations_waits_out_only_what_is_left_of_the_window() -> None:
    import time

    from vllm_stack_e2e.steps import scenario

    started = time.monotonic()
    scenario.forget_recommendations(None, time.time() - 400, 300)  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.5, "a window already over costs nothing"
    scenario.forget_recommendations(None, time.time(), 1.5)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 1.4
