"""`@pytest.mark.upstream_defect(N)`: the plugin decides a strict xfail from what is deployed.

Runs a small suite in a pytester sandbox with the plugin loaded; the deployed ScaledObject is a
stand-in object (the decision only reads it), so these cases run in a second: the claim fails
and the defect is deployed → xfailed; the fix is deployed → the claim must pass on its own;
the defect is deployed but the claim holds → XPASS(strict), a red run."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CONFTEST = '''
from types import SimpleNamespace

import pytest

from vllm_stack_e2e import plugin
from vllm_stack_e2e.context import Stack


class Deployed:
    """Only what the marker's decision reads: the live ScaledObject."""

    namespace = "ns"
    config = SimpleNamespace(scaledobject="vllm-llama3-scaledobject")
    scaledobject = Stack.scaledobject  # the handle, on this stand-in's kube

    def __init__(self, query):
        so = {{"spec": {{"maxReplicaCount": 3, "triggers": [{{"type": "prometheus", "metadata": {{"query": query}}}}]}}}}
        self.kube = SimpleNamespace(get=lambda *_args: so)


@pytest.fixture(autouse=True)
def deployed(request):
    request.config.stash[plugin._STACK] = Deployed({query!r})
    yield
    del request.config.stash[plugin._STACK]
'''

TESTS = '''
import pytest


@pytest.mark.upstream_defect(3)
def test_claim_that_fails():
    assert False, "the ScaledObject went Ready=False at 2 engines"


@pytest.mark.upstream_defect(3)
def test_claim_that_holds():
    pass
'''


def test_deployed_defect_makes_a_failing_claim_a_strict_xfail(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.format(query="vllm:num_requests_waiting"))
    pytester.makepyfile(test_claims=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rxX")
    # The failing claim is xfailed with the registry's reason; the holding one is XPASS(strict).
    result.assert_outcomes(xfailed=1, failed=1)
    text = "\n".join(result.outlines)
    assert "upstream defect 3: non-aggregated query" in text
    assert "'vllm:num_requests_waiting' (not aggregated)" in text
    assert "[XPASS(strict)]" in text


def test_with_the_fix_deployed_the_claim_stands_on_its_own(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.format(query="sum(vllm:num_requests_waiting)"))
    pytester.makepyfile(test_claims=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)  # no xfail: the failing claim fails, the holding one passes


def test_the_decision_is_recorded_for_the_run_record(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_claims=TESTS)
    pytester.makeconftest(CONFTEST.format(query="vllm:num_requests_waiting") + '''

def pytest_runtest_logreport(report):
    if report.when == "call":
        with open("decisions.jsonl", "a") as out:
            out.write(__import__("json").dumps([report.nodeid, dict(report.user_properties)]) + "\\n")
''')
    pytester.runpytest("-p", "no:cacheprovider")
    decisions = [json.loads(line) for line in (pytester.path / "decisions.jsonl").read_text().splitlines()]
    assert all(props["upstream_defect"]["number"] == 3 and props["upstream_defect"]["present"]
               for _, props in decisions), decisions


SHORT_NAME_CONFTEST = '''
from types import SimpleNamespace

import pytest

from vllm_stack_e2e import plugin
from vllm_stack_e2e.context import Stack


class Deployed:
    namespace = "ns"
    config = SimpleNamespace(scaledobject="vllm-llama3-scaledobject")
    scaledobject = Stack.scaledobject  # the handle, on this stand-in's kube
    so = {"metadata": {"namespace": "ns"}, "spec": {"maxReplicaCount": 3, "triggers": [{"type": "prometheus",
          "metadata": {"query": "sum(vllm:num_requests_waiting)",
                       "serverAddress": "http://vllm-kube-prometheus-stack-prometheus:9090"}}]}}
    kube = SimpleNamespace(get=lambda *_args: Deployed.so, list=lambda *_args, **_kw: [])


@pytest.fixture(autouse=True)
def deployed(request):
    request.config.stash[plugin._STACK] = Deployed()
    yield
    del request.config.stash[plugin._STACK]
'''


def test_with_several_markers_the_reason_names_the_defects_present(pytester: pytest.Pytester) -> None:
    """Defect 7 is deployed (a short serverAddress); defect 6 is not decidable as present (no
    subchart Prometheus in the namespace): the xfail names 7 only, and says how to apply its fix."""
    pytester.makeconftest(SHORT_NAME_CONFTEST)
    pytester.makepyfile(test_claims='''
import pytest


@pytest.mark.upstream_defect(6)
@pytest.mark.upstream_defect(7)
def test_replicas_grow():
    assert False, "replicas stayed at 1"
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-rx")
    result.assert_outcomes(xfailed=1)
    text = "\n".join(result.outlines)
    assert "upstream defect 7: current edition: serverAddress is a short name" in text
    assert "FIX_DEFECTS=7" in text and "upstream defect 6" not in text


def test_every_defect_a_test_met_is_recorded_for_the_report(pytester: pytest.Pytester) -> None:
    """A test with two markers whose defects are both deployed: run.json's entry lists both (the
    report's headline names every fix the step needs), and keeps `defect` for older readers."""
    pytester.makeconftest(CONFTEST.format(query="vllm:num_requests_waiting") + '''

def pytest_sessionfinish(session):
    with open("results.json", "w") as out:
        out.write(__import__("json").dumps(plugin._results_store["results"]))
''')
    pytester.makepyfile(test_claims='''
import pytest


@pytest.mark.upstream_defect(3)
@pytest.mark.upstream_defect(9)
def test_replicas_come_back():
    assert False, "the ScaledObject went Ready=False at 2 engines"
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1)
    entry = json.loads((pytester.path / "results.json").read_text())["test_claims.py::test_replicas_come_back"]
    assert entry["outcome"] == "xfailed" and sorted(entry["defects"]) == [3, 9], entry
    assert entry["defect"] in (3, 9), entry
