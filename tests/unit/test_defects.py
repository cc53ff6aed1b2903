"""The defect registry: one record per upstream defect, and the detectors that decide from a
deployed ScaledObject whether a defect is present (the plugin's strict xfail rests on them)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import defects


def scaledobject(*queries: str, maximum: int | None = 3) -> dict[str, Any]:
    spec: dict[str, Any] = {"triggers": [{"type": "prometheus", "metadata": {"query": q, "threshold": "5"}}
                                         for q in queries]}
    if maximum is not None:
        spec["maxReplicaCount"] = maximum
    return {"kind": "ScaledObject", "spec": spec}


@pytest.mark.parametrize(("query", "aggregated"), [
    ("vllm:num_requests_waiting", False),
    ('vllm:num_requests_waiting{model_name="m"}', False),
    ("sum(vllm:num_requests_waiting)", True),
    ("sum by (namespace) (vllm:num_requests_waiting)", True),
    ("sum by (pod) (vllm:num_requests_waiting)", False),
    ("sum(vllm:num_requests_waiting) by (instance)", False),
    ("max without (pod) (vllm:num_requests_waiting)", True),
    ("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)", True),
    ("avg(vllm:kv_cache_usage_perc) * 100", True),
    ("scalar(vllm:num_requests_waiting)", True),
    ("rate(vllm:num_incoming_requests_total[1m])", False),
])
def test_is_aggregated(query: str, aggregated: bool) -> None:
    assert defects.is_aggregated(query) is aggregated


def test_defect_3_is_present_for_the_tutorials_query_and_absent_with_the_fix() -> None:
    detect = defects.get(3).present
    assert detect is not None
    assert "'vllm:num_requests_waiting' (not aggregated)" in (detect(scaledobject("vllm:num_requests_waiting")) or "")
    assert detect(scaledobject("sum(vllm:num_requests_waiting)")) is None
    # One replica at most: a per-pod query still returns one series.
    assert detect(scaledobject("vllm:num_requests_waiting", maximum=1)) is None
    # KEDA's default maximum is 100.
    assert detect(scaledobject("vllm:num_requests_waiting", maximum=None)) is not None
    # Any trigger counts: the scale-to-zero block's queue trigger beside an aggregated keepalive.
    assert detect(scaledobject("sum(rate(vllm:num_incoming_requests_total[1m]) > bool 0)",
                               "vllm:num_requests_waiting")) is not None


def test_defect_2_is_present_when_an_engine_metric_is_selected_by_model() -> None:
    detect = defects.get(2).present
    assert detect is not None
    assert detect(scaledobject('vllm:num_requests_waiting{model="llama3"}')) is not None
    assert detect(scaledobject('sum(vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct"})')) is None
    # The router's counter does carry `model`.
    assert detect(scaledobject('sum(rate(vllm:num_incoming_requests_total{model="m"}[1m]))')) is None


def test_every_defect_has_its_words_and_a_doc_anchor() -> None:
    assert sorted(defects.DEFECTS) == [1, 2, 3, 4, 5, 6]
    for number, defect in defects.DEFECTS.items():
        assert defect.title and defect.explanation and defect.fix and defect.detected_by and defect.shown_by
        assert defect.doc == f"docs/upstream-defects.md#defect-{number}"
    reason = defects.get(3).reason("seen")
    assert reason.startswith("upstream defect 3: ") and "(seen)" in reason and "sum(" in reason
    assert defects.get(3).overlay == "fix-aggregated-query.yaml"


def test_an_unknown_defect_is_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"no upstream defect 9 is registered \(known: \[1, 2, 3, 4, 5, 6\]\)"):
        defects.get(9)
    assert "not a registered defect" in defects.title(9)
