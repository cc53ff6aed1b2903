"""Step 8 — "Cleanup": `keda.enabled: false` + upgrade removes the ScaledObject and its HPA and
gives the Deployment its replica count back; uninstalling KEDA removes its workloads, APIService
and namespace; uninstalling observability removes its releases; then nothing this run created
remains.

The module fixture does the tutorial's cleanup once, in its order (the session's own teardown
then has nothing left to do); each test judges one claim on what it saw."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached
from vllm_stack_e2e.steps import step8_cleanup as step

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cleanup(keda_enabled: Stack) -> step.Cleanup:
    return step.cleanup(keda_enabled)


def test_disabling_keda_removes_scaledobject_and_hpa(cleanup: step.Cleanup) -> None:
    disabled = cleanup.keda_disabled
    assert disabled is not None, "the release was gone before step 8"
    assert_reached(disabled.scaledobject_gone)
    assert_reached(disabled.hpa_gone)


def test_disabling_keda_gives_the_deployment_its_replicas_back(cleanup: step.Cleanup) -> None:
    disabled = cleanup.keda_disabled
    assert disabled is not None, "the release was gone before step 8"
    assert_reached(disabled.replicas_back)


def test_uninstalling_keda_removes_its_workloads_and_apiservice(cleanup: step.Cleanup) -> None:
    if cleanup.keda is None:
        pytest.skip(cleanup.not_run["keda"].why)
    keda = cleanup.keda
    assert not keda.workloads_left, f"KEDA workloads left: {keda.workloads_left}"
    assert not keda.apiservice_left, "APIService v1beta1.external.metrics.k8s.io left behind"
    assert_reached(keda.namespace_gone)


def test_uninstalling_observability_removes_it(cleanup: step.Cleanup) -> None:
    if cleanup.observability is None:
        pytest.skip(cleanup.not_run["observability"].why)
    obs = cleanup.observability
    assert_reached(obs.service_gone)
    assert not obs.releases_left, f"observability releases left in monitoring: {obs.releases_left}"


def test_nothing_the_run_created_remains(cleanup: step.Cleanup) -> None:
    assert not cleanup.left_behind, f"left behind: {cleanup.left_behind}"
