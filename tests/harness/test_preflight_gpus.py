"""Too few GPUs is a one-line preflight error, before anything is installed. Runs the preflight
the way a GPU-cluster user does (`CLUSTER=current`), against the lab's API server, with values
that ask for more replicas than the cluster has GPUs. Also exercises the `current` backend's
code path (kubeconfig copy, reachability, GPU count, chart lint) on a real API server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.helm import STANDIN_CHART
from vllm_stack_e2e.config import OWNER_LABEL, REPO_ROOT

pytestmark = pytest.mark.e2e


def _preflight(backend: Any, values_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLUSTER": "current", "KUBECONFIG": str(backend.kubeconfig),
           "VLLM_CHART": str(STANDIN_CHART), "VLLM_STACK_E2E_VALUES_DIR": str(values_dir)}
    return subprocess.run([sys.executable, "-m", "vllm_stack_e2e.preflight"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_too_few_gpus_is_one_line_before_installing(backend: Any, tmp_path: Path) -> None:
    folder = tmp_path / "values"
    shutil.copytree(REPO_ROOT / "values", folder)
    for step4 in folder.rglob("tutorial-step4.yaml"):  # every edition's: the run reads its edition's own
        step4.write_text(step4.read_text().replace("maxReplicaCount: 3", "maxReplicaCount: 64"))
    namespaces_before = {n["metadata"]["name"] for n in backend.kube.list(*k.NAMESPACE)}
    proc = _preflight(backend, folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("preflight error")]
    assert len(errors) == 1, proc.stdout + proc.stderr
    assert "64 GPUs" in errors[0] and "allocatable nvidia.com/gpu" in errors[0] and "—" in errors[0], errors[0]
    after = {n["metadata"]["name"] for n in backend.kube.list(*k.NAMESPACE)}
    assert after == namespaces_before, after ^ namespaces_before
    assert not backend.kube.list(*k.NAMESPACE, label_selector=f"{OWNER_LABEL}=vllm-stack-e2e")


def test_tutorial_values_pass_preflight_on_the_current_backend_path(backend: Any) -> None:
    proc = _preflight(backend, REPO_ROOT / "values")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preflight: kubernetes v1." in proc.stdout
    assert "defect 3" in proc.stdout  # the tutorial's query is flagged, as a warning
