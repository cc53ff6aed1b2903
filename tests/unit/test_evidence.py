"""Failure evidence: the KEDA operator's log lines about the run's objects (what a trigger error
looks like from KEDA's side), and only those, secrets masked."""

from vllm_stack_e2e.evidence import keda_lines, presence
from vllm_stack_e2e.prom import Series

LOG = """\
2026-11-30T08:24:01Z INFO Reconciling ScaledObject {"ScaledObject.Namespace": "vse-run-1", "ScaledObject.Name": "vllm-llama3-scaledobject"}
2026-11-30T08:24:04Z ERROR prometheus_scaler error executing prometheus query {"type": "ScaledObject", "namespace": "vse-run-1", "name": "vllm-llama3-scaledobject", "error": "dial tcp: lookup vllm-kube-prometheus-stack-prometheus on 127.0.92.53:53: no such host"}
2026-11-30T08:24:05Z ERROR prometheus_scaler error executing prometheus query {"type": "ScaledObject", "namespace": "other-team", "name": "theirs", "error": "connection refused"}
2026-11-30T08:24:06Z INFO token in a header {"namespace": "vse-run-1", "Authorization": "Bearer hf_abcdefghijklmnop"}
"""


def test_only_the_runs_lines_are_kept():
    kept = keda_lines(LOG, "vse-run-1").splitlines()
    assert len(kept) == 3 and all("vse-run-1" in line for line in kept)
    assert any("no such host" in line for line in kept)
    assert not any("other-team" in line for line in kept)


def test_secrets_in_kept_lines_are_masked():
    assert "hf_abcdefghijklmnop" not in keda_lines(LOG, "vse-run-1")


def test_no_line_is_said_so():
    assert keda_lines(LOG, "vse-none") == "(no line of the KEDA operator's log names namespace vse-none)"


def test_a_series_history_is_its_spans_with_their_value_range():
    # 12:00:00 … 12:00:10 every 5 s, a gap, then 12:01:00 … 12:01:05 (1796126400 is 12:00:00 UTC)
    points = [(1796126400.0, 0.0), (1796126405.0, 3.0), (1796126410.0, 1.0), (1796126460.0, 2.0), (1796126465.0, 2.0)]
    history = presence(Series({"pod": "a"}, points), step=5.0)
    assert history == {"labels": {"pod": "a"}, "seen": [
        {"from": "12:00:00Z", "to": "12:00:10Z", "min": 0.0, "max": 3.0},
        {"from": "12:01:00Z", "to": "12:01:05Z", "min": 2.0, "max": 2.0}]}


def test_a_series_never_seen_has_no_span():
    assert presence(Series({"pod": "a"}, []), step=5.0)["seen"] == []


def test_a_failed_tests_evidence_holds_the_series_history(tmp_path, monkeypatch):
    """collect() against a Prometheus that answers (an httpx mock) and a stack whose other parts are
    absent: the history file is written from the range query; what could not be read says so."""
    import json
    from types import SimpleNamespace

    import httpx

    from vllm_stack_e2e import evidence
    from vllm_stack_e2e.prom import Prometheus

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query_range":
            query = dict(httpx.QueryParams(request.content.decode()))["query"]
            values = [[1796126400, "1"], [1796126405, "1"]] if query == "up" else []
            result = [{"metric": {"pod": "gone-abcde"}, "values": values}] if values else []
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})
        if request.url.path == "/api/v1/targets":
            return httpx.Response(200, json={"status": "success", "data": {"activeTargets": []}})
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}})

    prom = Prometheus("http://127.0.0.1:9", client=httpx.Client(transport=httpx.MockTransport(handler)))
    monkeypatch.setattr(evidence.tools, "kubectl", lambda: tmp_path / "kubectl")
    config = SimpleNamespace(artifacts_dir=tmp_path, scaledobject="so", hpa="hpa", engine_deployment="d", release="r")
    stack = SimpleNamespace(config=config, namespace="ns", backend=SimpleNamespace(kubeconfig=tmp_path / "kc", helm=None),
                            kube=None, prometheus=lambda: prom)
    folder = evidence.collect(stack, "tests/e2e/test_x.py::test_y")
    history = json.loads((folder / "prometheus-history.json").read_text())
    assert history == {"up": [{"labels": {"pod": "gone-abcde"},
                               "seen": [{"from": "12:00:00Z", "to": "12:00:05Z", "min": 1.0, "max": 1.0}]}],
                       "vllm:num_requests_waiting": []}, history
    assert (folder / "events.txt").read_text().startswith("<could not collect events.txt"), "absent parts say so"
