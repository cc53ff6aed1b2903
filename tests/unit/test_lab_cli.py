"""`vllm-stack-lab` on labs that do not exist: every test points VLLM_STACK_E2E_CACHE and
LAB_NAME at its own temporary lab, and guards the calls that would start or delete a real
control plane so that a regression fails the test instead of touching a cluster."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vllm_stack_e2e.lab import cli
from vllm_stack_e2e.lab import paths as p
from vllm_stack_e2e.lab.cluster import LabCluster
from vllm_stack_e2e.lab.lab import Lab
from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec


@pytest.fixture
def temp_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> p.LabPaths:
    name = f"vse-unit-{secrets.token_hex(3)}"
    monkeypatch.setenv("VLLM_STACK_E2E_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LAB_NAME", name)

    def refuse(*_args: object, **_kwargs: object) -> None:
        pytest.fail("the CLI tried to start, create or delete a cluster in a unit test")

    monkeypatch.setattr(Lab, "preflight", refuse)
    monkeypatch.setattr(LabCluster, "up", refuse)
    monkeypatch.setattr(LabCluster, "_kwokctl", refuse)
    paths = p.LabPaths(name)
    assert str(paths.root).startswith(str(tmp_path)), "the lab under test must be a temporary one"
    return paths


@pytest.fixture
def live(temp_lab: p.LabPaths) -> Iterator[ManagedProcess]:
    """A real process recorded in the temporary lab's PID folder; stopped by PID afterwards."""
    spec = ProcessSpec(name="b-live", argv=[sys.executable, "-c", "import signal; signal.pause()"],
                       log=temp_lab.log("b-live"))
    proc = ManagedProcess(spec, temp_lab.pidfile("b-live"))
    proc.start()
    yield proc
    proc.stop(timeout=2)


def test_status_of_a_lab_that_does_not_exist(temp_lab: p.LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"lab {temp_lab.name}: not created; state {temp_lab.root}", "components installed: none"]
    assert not temp_lab.root.exists(), "status must not create the lab"


def test_status_as_json(temp_lab: p.LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {"lab": temp_lab.name, "exists": False, "state": str(temp_lab.root),
                      "kubeconfig": str(temp_lab.kubeconfig), "components": [], "processes": []}


def test_status_from_the_console_script(temp_lab: p.LabPaths) -> None:
    proc = subprocess.run([sys.executable, "-m", "vllm_stack_e2e.lab.cli", "status"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"lab {temp_lab.name}: not created;")


def test_status_lists_processes_and_fails_when_one_is_down(temp_lab: p.LabPaths, live: ManagedProcess,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "b-live" in line]
    assert "running" in row and f"pid {live.pid}" in row and str(live.spec.log) in row

    temp_lab.pidfile("a-crashed").write_text(json.dumps(
        {"name": "a-crashed", "pid": live.pid, "argv": ["x"], "log": str(temp_lab.log("a-crashed")), "start_time": "1"}))
    assert cli.main(["status"]) == 1, "a crashed process makes status fail"
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "a-crashed" in line]
    assert "NOT RUNNING" in row and "pid -" in row


def test_up_with_an_unknown_component_is_a_one_line_error(temp_lab: p.LabPaths,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "--only", "cluster,bogus"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: unknown lab component(s) ['bogus']: choose from cluster, observability, keda\n"
    assert not temp_lab.root.exists(), "nothing may be started or created before the input is validated"


def test_down_of_a_lab_that_does_not_exist(temp_lab: p.LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    temp_lab.ensure()
    assert cli.main(["down"]) == 0
    assert capsys.readouterr().out.startswith(f"lab {temp_lab.name} down in ")
    assert not temp_lab.root.exists()


def test_down_stops_every_recorded_process(temp_lab: p.LabPaths, live: ManagedProcess,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pid = live.pid
    assert cli.main(["down"]) == 0
    assert f"stopping b-live (pid {pid})" in capsys.readouterr().out
    assert not live.alive()
    assert not temp_lab.root.exists()


def test_status_survives_a_truncated_pid_file(temp_lab: p.LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    temp_lab.ensure()
    temp_lab.pidfile("a-truncated").write_text('{"name": "a-trunc')
    assert cli.main(["status"]) == 1, "a process whose PID file is unreadable is reported as not running"
    assert "a-truncated" in capsys.readouterr().out


def test_down_survives_a_truncated_pid_file(temp_lab: p.LabPaths, live: ManagedProcess) -> None:
    temp_lab.pidfile("a-truncated").write_text("")
    try:
        cli.main(["down"])
    finally:
        still_running = live.alive()
    assert not still_running, "down left a recorded process running"
