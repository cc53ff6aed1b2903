"""Beyond the page — an upgrade while scaled out: with KEDA's HPA holding maxReplicaCount under
load, users `helm upgrade` to change a setting, as they do. The Deployment must keep the replicas
the HPA gave it and the HPA its state — first for an unrelated setting (a pod annotation: the pod
template changes and rolls), then with the chart's replicaCount changed too, which the chart leaves
out of the Deployment while KEDA is on. A chart that wrote spec.replicas back while KEDA scales
would reset the count (kedacore/keda#4578) or, with helm's server-side apply, be refused
(docs/beyond.md)."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, observed, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def scaled_out(keda_enabled: Stack) -> beyond.ScaledOutUpgrade:
    return beyond.upgrade_while_scaled_out(keda_enabled)


def test_the_load_holds_the_model_at_its_maximum(scaled_out: beyond.ScaledOutUpgrade) -> None:
    """The premise: the HPA scaled the model to maxReplicaCount before any upgrade."""
    assert_reached(scaled_out.not_run or scaled_out.scaled, "the model at its maximum")


@pytest.mark.parametrize("index", range(len(beyond.UPGRADES)), ids=[s for _c, s in beyond.UPGRADES])
def test_an_upgrade_keeps_the_replicas_the_hpa_gave(scaled_out: beyond.ScaledOutUpgrade, index: int) -> None:
    requires(scaled_out.not_run or scaled_out.scaled)
    phase = scaled_out.phases[index]
    assert not phase.error and observed(phase.replicas), phase.explain()


@pytest.mark.parametrize("index", range(len(beyond.UPGRADES)), ids=[s for _c, s in beyond.UPGRADES])
def test_an_upgrade_keeps_the_hpa_and_its_decision(scaled_out: beyond.ScaledOutUpgrade, index: int) -> None:
    requires(scaled_out.not_run or scaled_out.scaled)
    phase = scaled_out.phases[index]
    assert not phase.error and observed(phase.hpa), phase.explain()


@pytest.mark.parametrize("index", range(len(beyond.UPGRADES)), ids=[s for _c, s in beyond.UPGRADES])
def test_an_upgrade_leaves_spec_replicas_to_the_hpa(scaled_out: beyond.ScaledOutUpgrade, index: int) -> None:
    """Server-side apply records who owns each field (managedFields): in no state the API server wrote
    after helm ran may helm own spec.replicas — the chart leaves it out while KEDA is on. A chart
    that writes it again owns it (helm 4 takes a field nobody owns; a /scale write records no owner
    when nobody owned the field, Kubernetes 1.35) or, once the HPA has taken it back, is refused."""
    requires(scaled_out.not_run or scaled_out.scaled)
    phase = scaled_out.phases[index]
    assert not phase.error and not [o for o in phase.owners if o.startswith("helm")], phase.explain()
