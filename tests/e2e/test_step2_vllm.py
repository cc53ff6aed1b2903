"""Step 2 — "Configure and deploy vLLM": `helm install vllm … -f values.yaml`; the engine pods
labelled model=llama3 become Ready, and the router serves the model."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import step2_vllm as step
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached

pytestmark = pytest.mark.e2e


def test_engine_pods_ready(vllm_release: Stack) -> None:
    pods = step.wait_engines_ready(vllm_release, count=1)
    ready = [p for p in pods if k.pod_ready(p)]
    assert ready, [k.summarize(p) for p in pods]
    assert all(p["metadata"]["labels"].get("model") == vllm_release.config.model for p in ready)


def test_router_lists_the_model(vllm_release: Stack) -> None:
    """The router learns the model from the Ready engine it discovers (within its discovery time)."""
    listing = step.wait_router_lists(vllm_release, step.model_url(vllm_release))
    assert_reached(listing)
