"""Step 4 — "Enable KEDA autoscaling for vLLM": `helm upgrade` with the tutorial's keda block.
The release now carries the page's values, and the chart hands spec.replicas over to KEDA/HPA."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import helm as helm_mod
from vllm_stack_e2e import values
from vllm_stack_e2e.context import Stack

pytestmark = pytest.mark.e2e


def _engine_deployment(stack: Stack) -> dict[str, Any]:
    manifest = stack.backend.helm.get_manifest(stack.config.release, namespace=stack.namespace)
    docs = helm_mod.parse_documents(manifest)
    return next(d for d in docs if d.get("kind") == "Deployment"
                and d["metadata"]["name"] == stack.config.engine_deployment)


def test_release_values_are_the_pages_key_by_key(keda_enabled: Stack, tutorial_step4: dict[str, Any]) -> None:
    """`helm get values` against the page's own file, key by key: each of the page's keys as the
    page wrote it, unless one of the run's overlays (profile, backend, a harness fix, EXTRA_VALUES)
    set it — those are listed apart, by file. Fails when the chart, helm or an unnamed source drops
    or rewrites one of the page's keys."""
    plan = keda_enabled.applied_plans.get("step4")
    assert plan is not None, "no step-4 values plan recorded: the upgrade did not run through Stack.plan"
    release = keda_enabled.backend.helm.get_values(keda_enabled.config.release, namespace=keda_enabled.namespace,
                                                   redacted=False)  # compared whole; a secret is masked when shown
    judged = values.against_page(tutorial_step4, release or {}, plan)
    keda_enabled.echo(f"step 4: release values against the page — {judged.explain()}")
    assert not judged.broken, judged.explain()


def test_engine_deployment_leaves_replicas_to_the_autoscaler(keda_enabled: Stack) -> None:
    assert "replicas" not in _engine_deployment(keda_enabled)["spec"]
