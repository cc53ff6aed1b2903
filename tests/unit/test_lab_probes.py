"""The kubelet's probe timing as the lab applies it (lab/probes.py): delays, periods, thresholds,
startup gating readiness and liveness, restarts — driven by a clock, no waiting."""

import httpx
import pytest

from vllm_stack_e2e.lab.probes import Probe, Prober, check, probes_of
from vllm_stack_e2e.net import free_port

CHART_ENGINE = {  # the chart's engine probes
    "startupProbe": {"initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 60,
                     "httpGet": {"path": "/health", "port": 8000}},
    "livenessProbe": {"initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 3,
                      "httpGet": {"path": "/health", "port": 8000}},
    "readinessProbe": {"initialDelaySeconds": 15, "periodSeconds": 5, "failureThreshold": 3,
                       "httpGet": {"path": "/health", "port": "container-port"}},
}


def pod(**probes):
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "vllm", "ports": [{"name": "container-port", "containerPort": 8000}],
                                     **probes}]}}


def run(prober: Prober, until: float, healthy, step: float = 0.25) -> list[tuple[float, str, bool]]:
    """Advance the clock to `until`, answering each due probe with healthy(t, probe)."""
    seen, now = [], prober.started_at
    while now <= until:
        for probe in prober.due(now):
            ok = healthy(now, probe)
            prober.record(probe, ok)
            seen.append((now, probe.kind, ok))
        if prober.restart_reason:
            break
        now += step
    return seen


def test_probes_come_from_the_pod_spec_with_named_ports_resolved():
    probes = {p.kind: p for p in probes_of(pod(**CHART_ENGINE))}
    assert set(probes) == {"startup", "readiness", "liveness"}
    assert (probes["readiness"].port, probes["readiness"].path, probes["readiness"].period) == (8000, "/health", 5)
    assert probes["startup"].failure_threshold == 60 and probes["liveness"].timeout == 1.0


def test_with_the_charts_probes_an_engine_is_ready_after_the_initial_delay():
    prober = Prober(probes_of(pod(**CHART_ENGINE)), started_at=0.0)
    assert not prober.ready
    seen = run(prober, 30, lambda t, p: True)
    first_startup = next(t for t, kind, _ in seen if kind == "startup")
    first_ready = next(t for t, kind, _ in seen if kind == "readiness")
    assert first_startup == 15.0, "nothing is probed before initialDelaySeconds"
    # The readiness worker's turn at 15 s came while the startup probe had not yet passed: its next
    # turn, one period later, makes the pod Ready (the kubelet's workers tick independently too).
    assert first_ready == 20.0 and prober.ready
    assert not any(kind != "startup" for t, kind, _ in seen if t < first_startup)


def test_readiness_and_liveness_wait_for_the_startup_probe():
    prober = Prober(probes_of(pod(**CHART_ENGINE)), started_at=0.0)
    # The model loads for 62 s: /health fails until then.
    seen = run(prober, 80, lambda t, p: t >= 62)
    started = next(t for t, kind, ok in seen if kind == "startup" and ok)
    assert started == 65.0, "startup probes every 10 s from 15 s: the first success is at 65 s"
    assert all(t >= started for t, kind, _ in seen if kind != "startup"), "no readiness/liveness before startup"
    assert prober.ready and not prober.restart_reason


def test_a_startup_probe_out_of_failures_restarts_the_container():
    quick = {"startupProbe": {"periodSeconds": 1, "failureThreshold": 5, "httpGet": {"path": "/health", "port": 8000}}}
    prober = Prober(probes_of(pod(**quick)), started_at=0.0)
    seen = run(prober, 60, lambda t, p: False)
    assert prober.restart_reason == "startup probe failed 5 times" and seen[-1][0] == 4.0
    prober.restarted(now=4.0)
    assert (prober.restarts, prober.ready, prober.started, prober.restart_reason) == (1, False, False, "")
    assert prober.due(4.0) == [probes_of(pod(**quick))[0]], "after a restart the probes start over"


def test_readiness_thresholds_take_a_pod_out_and_back():
    spec = {"readinessProbe": {"periodSeconds": 1, "failureThreshold": 3, "successThreshold": 2,
                               "httpGet": {"path": "/health", "port": 8000}}}
    prober = Prober(probes_of(pod(**spec)), started_at=0.0)
    states = []

    def healthy(t, probe):
        return not 5 <= t < 10  # unhealthy for five seconds

    for now in range(0, 16):
        for probe in prober.due(float(now)):
            prober.record(probe, healthy(now, probe))
        states.append(prober.ready)
    assert states[:1] == [False] and states[1] is True, "Ready after two successes in a row (t=0, 1)"
    assert states[6] is True and states[7] is False, "not Ready after the third failure in a row (t=5, 6, 7)"
    assert states[10] is False and states[11] is True, "Ready again after two successes (t=10, 11)"


def test_liveness_failures_restart_without_touching_readiness_first():
    spec = {"livenessProbe": {"periodSeconds": 2, "failureThreshold": 3, "httpGet": {"path": "/health", "port": 8000}}}
    prober = Prober(probes_of(pod(**spec)), started_at=0.0)
    assert prober.ready, "no readiness probe: Ready once started"
    run(prober, 30, lambda t, p: t < 10)
    assert prober.restart_reason == "liveness probe failed 3 times"


def test_no_probes_means_ready_at_once():
    assert Prober([], started_at=0.0).ready


def test_exec_probes_are_reported_and_pass():
    spec = {"readinessProbe": {"exec": {"command": ["true"]}}}
    probe = probes_of(pod(**spec))[0]
    assert probe.action == "exec"
    with httpx.Client() as client:
        assert check(probe, "127.0.0.1", client)[0]


def test_checks_against_a_closed_port_fail():
    port = free_port()
    with httpx.Client() as client:
        http = Probe("readiness", "http", port, "/health", timeout=0.5)
        tcp = Probe("readiness", "tcp", port, timeout=0.5)
        assert not check(http, "127.0.0.1", client)[0]
        assert not check(tcp, "127.0.0.1", client)[0]
        assert not check(Probe("readiness", "http", None), "127.0.0.1", client)[0]


@pytest.mark.parametrize(("code", "ok"), [(200, True), (302, True), (399, True), (404, False), (500, False)])
def test_http_status_ranges(code, ok):
    transport = httpx.MockTransport(lambda request: httpx.Response(code))
    with httpx.Client(transport=transport) as client:
        assert check(Probe("readiness", "http", 8000, "/health"), "127.0.0.1", client)[0] is ok
