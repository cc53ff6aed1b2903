"""Step 3 — "Install KEDA": `helm install keda kedacore/keda --namespace keda`; KEDA's three
Deployments Available, its external metrics APIService Available, the API answering."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import step3_keda as step
from vllm_stack_e2e.context import Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("deployment", step.DEPLOYMENTS)
def test_keda_deployment_available(keda: Stack, deployment: str) -> None:
    obj = keda.kube.get(*k.DEPLOYMENT, deployment, step.NAMESPACE)
    assert k.deployment_available(obj), k.summarize(obj)


def test_external_metrics_apiservice_available(keda: Stack) -> None:
    obj = keda.kube.get(*k.APISERVICE, step.APISERVICE)
    assert k.condition_is(obj, "Available"), k.summarize(obj)


def test_external_metrics_api_answers(keda: Stack) -> None:
    assert "externalmetrics" in step.external_metrics_resources(keda)
