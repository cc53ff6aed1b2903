"""Step 6 — "Test autoscaling": load through `svc/vllm-router-service` (port-forwarded, as the
tutorial does) makes the engine Deployment grow "within a few minutes", never past
maxReplicaCount."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import values
from vllm_stack_e2e.errors import ConfigError
from vllm_stack_e2e.steps import scaling
from vllm_stack_e2e.steps.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scale_up(keda_enabled: Stack, tutorial_keda: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """Drive the queue above the threshold and watch the Deployment; the run's record."""
    stack = keda_enabled
    so = stack.kube.get(*k.SCALEDOBJECT, stack.config.scaledobject, stack.namespace)
    assert so is not None
    polling = float(so["spec"].get("pollingInterval", 30))
    threshold = float(tutorial_keda["triggers"][0]["metadata"]["threshold"])
    tl = scaling.timeline(stack, "step6-scale-up", threshold=threshold)
    with tl:
        result = scaling.drive_until_replicas(stack, tl, threshold, at_least=2, polling_interval=polling)
        # Watch a little longer: replicas must stay within the maximum while the stack settles.
        stack.kube.hold(*k.DEPLOYMENT, stack.config.engine_deployment, stack.namespace,
                        lambda d: ((d or {}).get("spec") or {}).get("replicas", 0) <= tutorial_keda["maxReplicaCount"],
                        window=polling + stack.config.profile_settings.hpa_sync_seconds,
                        description=f"spec.replicas ≤ {tutorial_keda['maxReplicaCount']}")
    tl.save(stack.config.run_dir / "timelines" / "step6-scale-up.json")
    stack.echo(f"step 6: queue above {threshold:g} → spec.replicas ≥ 2 in {result.reaction_seconds:.1f}s "
               f"(budget {result.budget:.0f}s)")
    return {"result": result, "timeline": tl, "threshold": threshold}


def test_queue_rises_above_threshold_under_load(scale_up: dict[str, Any]) -> None:
    assert scale_up["result"].crossed_at is not None
    assert max((s.queue or 0) for s in scale_up["timeline"].samples) > scale_up["threshold"]


def test_replicas_grow_under_load(scale_up: dict[str, Any]) -> None:
    result = scale_up["result"]
    assert result.grown_to >= 2, result
    assert result.reaction_seconds is not None and result.reaction_seconds <= result.budget


def test_replicas_stay_within_max(scale_up: dict[str, Any], tutorial_keda: dict[str, Any]) -> None:
    seen = [s.spec_replicas for s in scale_up["timeline"].samples if s.spec_replicas is not None]
    assert max(seen) >= 2, seen  # the window includes the scale-up
    assert max(seen) <= tutorial_keda["maxReplicaCount"], seen


try:
    _QUERY = values.load_values(values.VALUES_DIR / "tutorial-step4.yaml")[
        "servingEngineSpec"]["modelSpec"][0]["keda"]["triggers"][0]["metadata"]["query"]
except (ConfigError, KeyError, IndexError, TypeError):
    _QUERY = ""  # a broken values file: preflight stops the run with a one-line error


@pytest.mark.xfail(condition=not values.is_aggregated(_QUERY), strict=True,
                   reason=f"upstream defect (reference.md §2 defect 3): the tutorial's query {_QUERY!r} returns one "
                          "series per engine pod and KEDA's Prometheus scaler rejects a multi-element result")
def test_scaledobject_stays_ready_past_one_replica(scale_up: dict[str, Any]) -> None:
    """The ScaledObject stays Ready while the Deployment runs 2+ engines (so it can scale back)."""
    multi = [s for s in scale_up["timeline"].samples if (s.ready_replicas or 0) >= 2]
    assert multi, "no sample with 2+ ready engines"
    assert all(s.so_ready == "True" for s in multi), [(s.ready_replicas, s.so_ready) for s in multi]
