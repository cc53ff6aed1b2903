"""Failure evidence: the KEDA operator's log lines about the run's objects (what a trigger error
looks like from KEDA's side), and only those, secrets masked."""

from vllm_stack_e2e.evidence import keda_lines

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
