"""A lab stopped by a machine restart (every process gone, its state left on disk) is found
and recreated by the next run, instead of being half revived: the restarted KWOK would not
manage nodes whose leases its dead predecessor holds, and components marked installed would
not be running."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.lab.manifests import LAB_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.lab]


def test_a_lab_left_stopped_by_a_restart_is_recreated_and_schedules_at_once(backend: Any, run_config: Any) -> None:
    if not isinstance(backend, LabBackend):
        pytest.skip("the lab's own restart behaviour; runs on the lab backend only (CLUSTER=lab)")
    lab = backend.lab
    lab.up(["cluster", "observability"])
    lab.stop()
    assert lab.cluster.stopped() and lab.observability.installed(), lab.status()

    lab.up(["cluster"])  # what the next session's backend.start() does

    assert lab.cluster.healthy(), lab.status()
    assert not lab.observability.installed(), "a recreated lab has nothing installed; the run installs it"
    ns = f"vse-restart-{run_config.run_id.lower()}"[:63]
    kube = lab.cluster.kube
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "restart"}}})
    try:
        kube.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-probe", "namespace": ns},
                    "spec": {"containers": [{"name": "c", "image": "simulated/none",
                                             "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
        pod = kube.wait_for(*k.POD, "gpu-probe", ns, lambda p: k.pod_ready(p or {}), 30,
                            "a GPU pod Running and Ready on the recreated lab")
        assert pod["spec"]["nodeName"].startswith(f"{lab.name}-gpu-"), pod["spec"]
    finally:
        kube.delete(*k.NAMESPACE, ns)
        kube.wait_gone(*k.NAMESPACE, ns, None, budget=60)
