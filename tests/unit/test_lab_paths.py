"""Where a lab keeps its state, and the loopback twin of a pod IP."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_stack_e2e.lab import paths as p


@pytest.mark.parametrize(("pod_ip", "loopback"), [
    ("10.244.0.5", "127.244.0.5"),
    ("10.244.3.17", "127.244.3.17"),
    ("10.244.255.254", "127.244.255.254"),
])
def test_pod_ip_maps_to_its_loopback_twin(pod_ip: str, loopback: str) -> None:
    assert p.pod_loopback(pod_ip) == loopback


@pytest.mark.parametrize("pod_ip", ["10.245.0.5", "10.0.0.1", "127.244.0.5", "192.168.1.1", "::1"])
def test_pod_ip_outside_the_cidr_is_refused(pod_ip: str) -> None:
    with pytest.raises(ValueError, match="outside the lab's pod CIDR"):
        p.pod_loopback(pod_ip)


def test_not_an_ip_is_refused() -> None:
    with pytest.raises(ValueError):
        p.pod_loopback("vllm-llama3-0")


def test_lab_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_NAME", raising=False)
    assert p.lab_name() == p.DEFAULT_LAB == "vse-lab"
    monkeypatch.setenv("LAB_NAME", "vse-unit-x")
    assert p.lab_name() == "vse-unit-x"


def test_every_file_of_a_lab_lives_under_its_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path / "cache"))
    lab = p.LabPaths("vse-unit")
    root = tmp_path / "cache" / "state" / "vse-unit"
    assert lab.root == root
    assert lab.kwok_workdir == root / "kwok"
    assert lab.kubeconfig == root / "kubeconfig"
    assert lab.hosts == root / "hosts"
    assert lab.keda_certs == root / "keda-certs"
    assert lab.prometheus_data == root / "prometheus"
    assert lab.prometheus_targets == root / "prometheus-targets.json"
    assert lab.kwokctl_config == root / "kwokctl.yaml"
    assert lab.pidfile("lab-dataplane") == root / "pids" / "lab-dataplane.json"
    assert lab.log("keda-operator") == root / "logs" / "keda-operator.log"
    assert not root.exists(), "asking for paths must not create the lab"


def test_ensure_creates_the_folders_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path))
    lab = p.LabPaths("vse-unit")
    lab.ensure()
    lab.ensure()
    assert all(d.is_dir() for d in (lab.root, lab.logs, lab.pids, lab.components))
    assert sorted(x.name for x in lab.root.iterdir()) == ["components", "logs", "pids"]


def test_two_labs_do_not_share_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path))
    a, b = p.LabPaths("vse-a"), p.LabPaths("vse-b")
    assert a.root != b.root and a.root.parent == b.root.parent == tmp_path / "state"
