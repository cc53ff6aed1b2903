"""Step 4 — "Enable KEDA autoscaling for vLLM": `helm upgrade` with the tutorial's keda block.
The release now carries it, and the chart hands spec.replicas over to KEDA/HPA."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import helm as helm_mod
from vllm_stack_e2e.context import Stack

pytestmark = pytest.mark.e2e


def _engine_deployment(stack: Stack) -> dict[str, Any]:
    manifest = stack.backend.helm.get_manifest(stack.config.release, namespace=stack.namespace)
    docs = helm_mod.parse_documents(manifest)
    return next(d for d in docs if d.get("kind") == "Deployment"
                and d["metadata"]["name"] == stack.config.engine_deployment)


def test_release_values_enable_keda(keda_enabled: Stack, tutorial_keda: dict[str, Any]) -> None:
    got = keda_enabled.backend.helm.get_values(keda_enabled.config.release, namespace=keda_enabled.namespace,
                                               all_values=True)
    spec = next(s for s in got["servingEngineSpec"]["modelSpec"] if s["name"] == keda_enabled.config.model)
    assert spec["keda"]["enabled"] is True
    # The page's triggers, unless the run was asked to apply a harness fix to them (FIX_DEFECTS).
    expected = [{"type": t.type, "metadata": dict(t.metadata)} for t in keda_enabled.expected().triggers]
    got = [{"type": t["type"], "metadata": t["metadata"]} for t in spec["keda"]["triggers"]]
    assert got == expected, f"release values carry triggers {got}, expected {expected}"
    if not keda_enabled.config.fix_defects:
        assert spec["keda"]["triggers"] == tutorial_keda["triggers"], "the page's triggers, verbatim"


def test_engine_deployment_leaves_replicas_to_the_autoscaler(keda_enabled: Stack) -> None:
    assert "replicas" not in _engine_deployment(keda_enabled)["spec"]
