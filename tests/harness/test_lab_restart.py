"""A lab stopped by a machine restart (every process gone, its state left on disk) is found
and recreated by the next run, instead of being half revived: the restarted KWOK would not
manage nodes whose leases its dead predecessor holds, and components marked installed would
not be running."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import ForbiddenError

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.errors import WaitTimeout
from vllm_stack_e2e.lab.manifests import LAB_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.lab]


def _namespace(name: str, purpose: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {LAB_LABEL: purpose}}}


def _gpu_pod(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-probe", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "simulated/none",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


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
    try:
        kube.create_namespace(_namespace(ns, "restart"))
        kube.apply(_gpu_pod(ns))
        pod = kube.wait_for(*k.POD, "gpu-probe", ns, lambda p: k.pod_ready(p or {}), 30,
                            "a GPU pod Running and Ready on the recreated lab")
        assert pod["spec"]["nodeName"].startswith(f"{lab.name}-gpu-"), pod["spec"]
    finally:
        kube.delete(*k.NAMESPACE, ns)
        kube.wait_gone(*k.NAMESPACE, ns, None, budget=60)


def test_a_namespace_the_harness_creates_admits_a_pod_at_once(backend: Any, run_config: Any) -> None:
    """`Kube.create_namespace` returns only once the namespace's `default` ServiceAccount exists.

    The controller-manager creates it a moment after the namespace, and the API refuses a bare pod
    until then: a recreated lab's controller-manager was still syncing when the test above created
    its pod, and the run failed with 403 "serviceaccount default not found". To make that lag happen
    on demand, the lab's real kube-controller-manager is paused (SIGSTOP to its PID, about 3 s, well
    inside its 15 s leader lease) and resumed in a `finally`.
    """
    if not isinstance(backend, LabBackend):
        pytest.skip("pauses the lab's own kube-controller-manager; runs on the lab backend only (CLUSTER=lab)")
    lab = backend.lab
    lab.up(["cluster"])
    kube = lab.cluster.kube
    pid = lab.cluster.kwok_pids().get("kube-controller-manager")
    assert pid, f"no running kube-controller-manager in the lab: {lab.status()}"
    ns = f"vse-sa-{run_config.run_id.lower()}"[:63]
    namespace = _namespace(ns, "serviceaccount")
    try:
        os.kill(pid, signal.SIGSTOP)
        try:
            kube.apply(namespace)
            with pytest.raises(ForbiddenError, match=r"serviceaccount\W+default\W+not found"):
                kube.apply(_gpu_pod(ns))
            with pytest.raises(WaitTimeout, match="default ServiceAccount: not reached after 2s; last seen .*absent"):
                kube.create_namespace(namespace, budget=2)
        finally:
            os.kill(pid, signal.SIGCONT)
        kube.create_namespace(namespace, budget=30)
        pod = kube.apply(_gpu_pod(ns))
        assert pod["metadata"]["uid"], pod
    finally:
        kube.delete(*k.NAMESPACE, ns)
        kube.wait_gone(*k.NAMESPACE, ns, None, budget=60)
