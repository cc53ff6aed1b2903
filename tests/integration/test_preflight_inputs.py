"""Deliberately broken inputs end in one clear line naming the input and the fix, before
anything is installed: a values file with a YAML error, an unknown CLUSTER, an unreachable
kubeconfig, a missing helm (too few GPUs needs a cluster: tests/harness/test_preflight_gpus.py).

Each runs the real entry points (`python -m vllm_stack_e2e.preflight`, `pytest tests/e2e`) as a
user would, and checks that no lab was created and no namespace touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_stack_e2e.config import REPO_ROOT
from vllm_stack_e2e.lab.paths import LabPaths

pytestmark = pytest.mark.integration
PROBE_LAB = "vse-preflight-probe"


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "LAB_NAME": PROBE_LAB, **env}
    full.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    text = proc.stdout + proc.stderr
    return [ln for ln in text.splitlines() if "error" in ln.lower() and ("—" in ln or "choose" in ln)]


@pytest.fixture
def broken_values(tmp_path: Path) -> Path:
    folder = tmp_path / "values"
    shutil.copytree(REPO_ROOT / "values", folder)
    step4 = folder / "tutorial-step4.yaml"
    step4.write_text(step4.read_text().replace("maxReplicaCount: 3", "maxReplicaCount: [3"))
    return folder


@pytest.fixture(autouse=True)
def no_probe_lab() -> None:
    """The probe lab must never exist: these inputs stop a run before it builds anything."""
    assert not LabPaths(PROBE_LAB).root.exists()
    yield
    created = LabPaths(PROBE_LAB).root.exists()
    if created:
        shutil.rmtree(LabPaths(PROBE_LAB).root)
    assert not created, "a lab was created for a run whose inputs were broken"


def test_values_yaml_error_is_one_line(broken_values: Path) -> None:
    proc = _run(["-m", "vllm_stack_e2e.preflight"], {"VLLM_STACK_E2E_VALUES_DIR": str(broken_values)})
    assert proc.returncode != 0
    lines = _error_lines(proc)
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "tutorial-step4.yaml" in lines[0] and ":" in lines[0], lines[0]


def test_values_yaml_error_stops_e2e_before_any_cluster_work(broken_values: Path) -> None:
    proc = _run(["-m", "pytest", "tests/e2e/test_step1_observability.py", "-q", "-p", "no:cacheprovider"],
                {"VLLM_STACK_E2E_VALUES_DIR": str(broken_values)}, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "preflight failed" in proc.stdout and "tutorial-step4.yaml" in proc.stdout, proc.stdout[-2000:]


def test_unknown_cluster_is_one_line() -> None:
    proc = _run(["-m", "vllm_stack_e2e.preflight"], {"CLUSTER": "kind"})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "unknown CLUSTER='kind'" in proc.stderr and "lab" in proc.stderr and "current" in proc.stderr


def test_unknown_cluster_stops_pytest_at_once() -> None:
    proc = _run(["-m", "pytest", "tests/e2e", "-q", "-p", "no:cacheprovider"], {"CLUSTER": "kind"})
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage-error exit code
    assert "unknown CLUSTER='kind'" in proc.stderr


def test_unreachable_kubeconfig_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: u}}]\n"
        "users: [{name: u, user: {token: not-a-real-token}}]\n")
    proc = _run(["-m", "vllm_stack_e2e.preflight"], {"CLUSTER": "current", "KUBECONFIG": str(kubeconfig)})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "unreachable" in proc.stderr and str(kubeconfig) in proc.stderr
    assert "not-a-real-token" not in proc.stdout + proc.stderr


def test_missing_kubeconfig_file_is_one_line(tmp_path: Path) -> None:
    proc = _run(["-m", "vllm_stack_e2e.preflight"], {"CLUSTER": "current", "KUBECONFIG": str(tmp_path / "nope")})
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "KUBECONFIG" in proc.stderr


def test_missing_helm_is_one_line(tmp_path: Path) -> None:
    proc = _run(["-m", "vllm_stack_e2e.preflight"], {"HELM": str(tmp_path / "helm")})
    assert proc.returncode != 0
    lines = _error_lines(proc)
    assert len(lines) == 1 and "helm" in lines[0] and "HELM" in lines[0], proc.stdout + proc.stderr
