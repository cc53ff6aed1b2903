"""The pure parts of the scenarios beyond the page: their windows, the queue band the activation
scenario needs, the broken neighbour's objects, and where the plugin puts and names them."""

from types import SimpleNamespace

from _stacks import with_handles

from vllm_stack_e2e import plugin
from vllm_stack_e2e.observed import NotRun
from vllm_stack_e2e.steps import beyond, step1_observability, step6_scale_up
from vllm_stack_e2e.timeline import Sample


def sample(t: float, queue: float | None) -> Sample:
    return Sample(t=t, spec_replicas=1, ready_replicas=1, hpa_desired=1, hpa_current=1, hpa_metric=None, queue=queue,
                  so_ready="True", so_active="True", so_fallback="False")


def test_the_queue_between_two_times_skips_missing_readings():
    tl = SimpleNamespace(samples=[sample(1, 0), sample(2, None), sample(3, 2), sample(12, 4), sample(19, 7)])
    span = beyond.queue_between(tl, 12, 15)
    assert span.values == [2, 4] and span.peak == 4 and span.nonzero, "from 10 s before the start to the end"


def test_activation_premise_needs_a_queue_in_the_band():
    run = beyond.Activation(threshold=5, window=41, queued=None)  # type: ignore[arg-type]
    run.queue = beyond.QueueSpan([0, 1, 3, 5])
    assert run.load_stayed_in_band()
    run.queue = beyond.QueueSpan([0, 0])
    assert not run.load_stayed_in_band(), "an empty queue proves nothing about activation"
    run.queue = beyond.QueueSpan([2, 6])
    assert not run.load_stayed_in_band(), "above the threshold the HPA may rightly scale"


def test_the_hold_window_covers_two_polls_and_two_hpa_syncs():
    stack = SimpleNamespace(config=SimpleNamespace(profile_settings=SimpleNamespace(hpa_sync_seconds=15)))
    assert beyond.hold_window(stack, 3) == 2 * (3 + 15) + 5


def test_the_neighbour_targets_its_own_deployment_through_a_server_that_does_not_exist():
    deployment, scaledobject = beyond.neighbour_objects("ns-neighbour")
    assert deployment["metadata"]["namespace"] == scaledobject["metadata"]["namespace"] == "ns-neighbour"
    assert scaledobject["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    trigger = scaledobject["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["serverAddress"] == beyond.NEIGHBOUR_SERVER


def test_beyond_modules_are_named_as_scenarios_not_steps():
    assert plugin._step_of("tests/e2e/test_beyond_broken_neighbour.py::test_x") == "beyond: broken neighbour"
    assert plugin._step_of("tests/e2e/test_step7a_scale_to_zero.py::test_x") == "step 7a"


def test_beyond_items_run_after_step_7c_and_before_step_8():
    def item(nodeid: str, marked: bool = False):
        return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: object() if marked and name == "beyond" else None)

    items = [item("tests/e2e/test_beyond_pause.py::a", True), item("tests/e2e/test_step7c_fallback.py::b"),
             item("tests/e2e/test_step8_cleanup.py::c"), item("tests/e2e/test_step8_cleanup.py::d")]
    plugin.pytest_collection_modifyitems(None, None, items)  # type: ignore[arg-type]
    assert [i.nodeid.split("::")[1] for i in items] == ["b", "a", "c", "d"]


def test_the_activation_load_steps_by_the_scrape_interval_of_the_runs_targets():
    from vllm_stack_e2e.prom import Target

    def target(ns: str, interval: float) -> Target:
        return Target(scrape_url="", health="up", last_error="", labels={"namespace": ns}, scrape_pool="",
                      scrape_interval=interval)

    prom = SimpleNamespace(targets=lambda: [target("run", 5.0), target("run", 30.0), target("other", 60.0)])
    monitors = [{"spec": {"endpoints": [{"interval": "3s"}]}}]
    kube = SimpleNamespace(list=lambda *_a, **_k: monitors)
    stack = SimpleNamespace(namespace="run", prometheus=lambda: prom, kube=kube)
    assert beyond.reading_lag(stack) == 31.0, "the longest of the run's own targets, plus 1 s"
    prom.targets = lambda: [target("other", 60.0)]
    assert beyond.reading_lag(stack) == 4.0, "no target of the run: what its ServiceMonitors ask for"
    monitors.clear()
    assert beyond.reading_lag(stack) == step1_observability.DEFAULT_SCRAPE_SECONDS + 1.0, "no ServiceMonitor either"


def test_prometheus_durations():
    from vllm_stack_e2e.prom import duration_seconds

    assert [duration_seconds(t) for t in ("30s", "1m30s", "500ms", "2h", "", "soon", "5")] == \
        [30.0, 90.0, 0.5, 7200.0, 0.0, 0.0, 0.0]


def keda_sample(t: float, errors: float | None) -> Sample:
    s = sample(t, 1)
    s.keda_errors, s.keda_asked, s.keda_answered = errors, t, t + 0.1
    return s


def count(t: float, value: float | None) -> beyond.ErrorCount:
    return beyond.ErrorCount(t, t + 0.1, value, None if value is not None else "ConnectError: refused")


def keda_timeline(*samples: Sample):
    from vllm_stack_e2e.timeline import Timeline

    tl = Timeline(name="x", kube=None, namespace="run", deployment="d", scaledobject="so", hpa="h")  # type: ignore[arg-type]
    tl.samples = list(samples)
    return tl


ON_LAB = SimpleNamespace(backend=SimpleNamespace(name="lab"))


def test_keda_errors_of_a_phase_count_between_its_own_two_readings():
    tl = keda_timeline(keda_sample(1, 2), keda_sample(2, 2), keda_sample(3, 5), keda_sample(9, 9))
    assert beyond.keda_errors(ON_LAB, tl, "healthy", count(0.5, 2), count(2.5, 2)).new == 0
    assert beyond.keda_errors(ON_LAB, tl, "broken", count(2.5, 2), count(9.5, 9)).new == 7


def test_a_sampler_that_read_nothing_during_a_broken_phase_does_not_hide_its_errors():
    """The red this replaces: Prometheus stopped, the sampler's reads of it took seconds, and every
    sample of the phase came after KEDA had stopped counting (14, 14, …): the samples alone say 0."""
    tl = keda_timeline(keda_sample(1, 8), keda_sample(9, 14), keda_sample(12, 14))
    assert beyond.keda_errors(ON_LAB, tl, "broken", count(2, 8), count(13, 14)).new == 6


def test_an_operator_restart_between_the_two_readings_still_counts_its_errors():
    """8 → 11, restart (counter from 0) → 2: five errors, where end − start would say −6."""
    tl = keda_timeline(keda_sample(3, 11), keda_sample(5, 0), keda_sample(7, 2))
    assert beyond.keda_errors(ON_LAB, tl, "broken", count(1, 8), count(9, 2)).new == 5


def test_a_sample_overlapping_a_phase_reading_is_left_out():
    """A sample asked before the phase's first reading was answered may hold an older value."""
    early = keda_sample(1, 1)
    early.keda_asked, early.keda_answered = 0.9, 1.2  # overlaps count(1, …) answered at 1.1
    tl = keda_timeline(early)
    assert tl.keda_errors_read(1.1, 5) == []
    assert beyond.keda_errors(ON_LAB, tl, "healthy", count(1, 3), count(5, 3)).new == 0


def test_an_unread_phase_reading_says_why():
    tl = keda_timeline(keda_sample(2, 1))
    errors = beyond.keda_errors(ON_LAB, tl, "broken", count(1, None), count(3, 4))
    assert errors.new is None and "refused" in errors.explain()


def test_unread_keda_metrics_are_a_failure_on_the_lab_and_a_stated_skip_on_a_cluster():
    on_lab = beyond.KedaErrors("phase", None, "ConnectError: refused", lab=True)
    assert on_lab.skip_reason is None and "not read" in on_lab.explain() and "refused" in on_lab.explain()
    on_cluster = beyond.KedaErrors("phase", None, "403 Forbidden", lab=False)
    assert on_cluster.skip_reason is not None and "403 Forbidden" in on_cluster.skip_reason
    assert beyond.KedaErrors("phase", 0, lab=False).skip_reason is None


def _keda_off_stack(replicas: int, calls: list, lines: list) -> SimpleNamespace:
    """A stack for scenario.keda_off: a fake Kube that records deletes and scales."""
    dep = {"metadata": {"name": "d"}, "spec": {"replicas": replicas}}
    gone = SimpleNamespace(expect=lambda: None)
    kube = SimpleNamespace(get=lambda *_a: dep, delete=lambda *a: calls.append(("delete", a[1])),
                           reach=lambda *a, **k: gone, scale=lambda *a: calls.append(("scale", a)))
    return with_handles(SimpleNamespace(kube=kube, namespace="run", echo=lines.append,
                                        config=SimpleNamespace(engine_deployment="d", scaledobject="so", hpa="h")))


def _with_disable(outcomes: list, calls: list):  # noqa: ANN202
    """scenario.disable_keda replaced: each call takes the next outcome (raised if an exception)."""
    from vllm_stack_e2e.steps import scenario

    def disable(_stack, _budget, extra=()):  # noqa: ANN001, ANN202
        calls.append("upgrade")
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    original = scenario.disable_keda
    scenario.disable_keda = disable  # type: ignore[assignment]
    return lambda: setattr(scenario, "disable_keda", original)


DISABLED = SimpleNamespace(expect=lambda: None)


def test_a_reset_puts_back_a_count_the_hpa_left_after_keda_was_disabled():
    """3 → 1 (helm) → 3 (the HPA's last act before KEDA deleted it): keda_off scales it to 1 and says so;
    a Deployment already at replicaCount is left alone."""
    from vllm_stack_e2e.steps import scenario

    calls, lines = [], []
    restore = _with_disable([DISABLED, DISABLED], calls)
    try:
        scenario.keda_off(_keda_off_stack(1, calls, lines))  # type: ignore[arg-type]
        scaled = [c[1] for c in calls if isinstance(c, tuple) and c[0] == "scale"]
        assert scaled == [] and lines == []
        scenario.keda_off(_keda_off_stack(3, calls, lines))  # type: ignore[arg-type]
        scaled = [c[1] for c in calls if isinstance(c, tuple) and c[0] == "scale"]
        assert scaled == [("apps/v1", "Deployment", "d", "run", 1)]
        assert "left at 3 replicas after KEDA was disabled" in lines[0]
    finally:
        restore()


def test_keda_off_for_housekeeping_gets_past_a_conflict_on_the_replicas():
    """The session's teardown and a reset: helm's apply conflicts with kube-controller-manager's scale
    of spec.replicas; the ScaledObject is deleted, the Deployment scaled to 1, the upgrade run again.
    Any other helm error still raises."""
    import pytest

    from vllm_stack_e2e.helm import HelmError
    from vllm_stack_e2e.steps import scenario

    calls, lines = [], []
    conflict = HelmError("`helm upgrade` failed (exit 1): Error: UPGRADE FAILED: conflict occurred while applying "
                         "object d: Apply failed with 1 conflict: conflict with \"kube-controller-manager\" with "
                         "subresource \"scale\" using apps/v1: .spec.replicas", exit_code=1, stderr_tail="",
                         not_found=False)
    outcomes = [conflict, DISABLED]
    restore = _with_disable(outcomes, calls)
    try:
        scenario.keda_off(_keda_off_stack(1, calls, lines))  # type: ignore[arg-type]
        assert [c if isinstance(c, str) else (c[0], c[1][-1] if c[0] == "scale" else c[1]) for c in calls] == \
            ["upgrade", ("delete", "ScaledObject"), ("scale", 1), "upgrade"]
        assert "conflicts with the HPA's scale" in lines[0]
        outcomes[:] = [HelmError("`helm upgrade` failed (exit 1): Error: timed out", exit_code=1, stderr_tail="",
                                 not_found=False)]
        with pytest.raises(HelmError, match="timed out"):
            scenario.keda_off(_keda_off_stack(1, calls, lines))  # type: ignore[arg-type]
    finally:
        restore()


# ---- scale-in under traffic, an upgrade while scaled out: their judgements without a cluster ------
def _record(index: int, started: float, **kw) -> "load.RequestRecord":  # type: ignore[name-defined]  # noqa: F821
    from vllm_stack_e2e import load

    return load.RequestRecord(index=index, started=started, **kw)


def test_each_answer_of_the_trickle_is_named_by_what_happened_to_it():
    cases = {
        "completed": dict(status=200, finish_reason="length", output_tokens=300),
        "aborted": dict(status=200, finish_reason="abort", output_tokens=120),
        "cut": dict(status=200, error="IncompleteStream: connection closed after 80 tokens without [DONE]"),
        "refused": dict(status=500, error="all engines failed"),
        "failed": dict(error="ConnectError: refused"),
        "cancelled": dict(cancelled=True),
    }
    for name, fields in cases.items():
        assert beyond.outcome(_record(1, 0.0, **fields)) == name, (name, fields)
        assert name in beyond.CAUSES, f"{name} has a cause to print"


def test_the_scale_in_message_counts_outcomes_and_places_each_lost_answer_in_time():
    from vllm_stack_e2e import load

    records = [_record(0, 100.0, status=200, finish_reason="stop"),
               _record(1, 90.0, status=200, finish_reason="abort", output_tokens=40),
               _record(2, 104.5, status=200, error="IncompleteStream: ended after 3 tokens without [DONE]")]
    run = beyond.ScaleIn(3, 1, deleted={"engine-a": 100.0, "engine-b": 101.0},
                         trickle=load.LoadResult(load.LoadConfig(), "m", 0.0, 1.0, records))
    assert [r.index for r in run.lost] == [1, 2]
    text = run.explain()
    assert text.startswith("3 answers: 1 aborted, 1 completed, 1 cut; 2 engine pod(s) deleted"), text
    assert "request 1 (aborted: finish_reason abort" in text and "10.0s before the first deletion" in text, text
    assert "request 2 (cut:" in text and "4.5s after the first deletion" in text, text
    assert beyond.ScaleIn(3, 1, not_run=NotRun("no load")).explain() == "not run: no load"


def _deployment(replicas: int, owners: list[tuple[str, str | None]]) -> dict:
    fields = [{"manager": m, "operation": "Apply" if m == "helm" else "Update", **({"subresource": sub} if sub else {}),
               "fieldsV1": {"f:spec": {"f:replicas": {}}}} for m, sub in owners]
    fields.append({"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}})
    return {"kind": "Deployment", "metadata": {"managedFields": fields}, "spec": {"replicas": replicas}}


def test_who_owns_spec_replicas_is_read_from_managed_fields():
    from vllm_stack_e2e import kube as k

    assert k.field_owners(_deployment(3, [("kube-controller-manager", "scale")]), ("spec", "replicas")) == [
        "kube-controller-manager/scale Update"]
    assert k.field_owners(_deployment(3, []), ("spec", "replicas")) == [], "helm owns the template, not the count"
    assert k.field_owners(None, ("spec", "replicas")) == []


def test_an_upgrade_phase_says_what_the_deployment_and_the_hpa_went_through():
    from vllm_stack_e2e import waits

    dep = waits.Held("d", 20.0, [(0.0, _deployment(3, [])), (0.1, _deployment(2, [("helm", None)]))], broke_at=0.1)
    phase = beyond.UpgradePhase("the chart's replicaCount", "upgrade-replica-count", 3, 3, replicas=dep,
                                owners=["helm Apply"])
    text = phase.explain()
    assert "spec.replicas owned by helm Apply" in text and "Deployment broke at +0s: spec.replicas 3 → spec.replicas 2" \
        in text, text
    refused = beyond.UpgradePhase("x", "upgrade-unrelated", 3, 3, error="Error: UPGRADE FAILED: conflict …")
    assert refused.explain() == "x: helm upgrade refused — Error: UPGRADE FAILED: conflict …"
