"""LabKeda.crash: SIGKILL the process under KEDA's restart loop, found by the loop's PID; the loop
(hosts.BACKOFF_LOOP) restarts it at once the first time and backs off after. Real processes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from _waits import wait_for

from vllm_stack_e2e.errors import LabError
from vllm_stack_e2e.lab import hosts
from vllm_stack_e2e.lab.keda import OPERATOR, LabKeda


def children(pid: int) -> list[int]:
    """The loop's children running the command (`sleep 300`), not its back-off `sleep 10`."""
    found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in found if Path(f"/proc/{c}/cmdline").read_bytes() == b"sleep\x00300\x00"]


@pytest.fixture
def keda(tmp_path: Path):
    paths = SimpleNamespace(log=lambda name: tmp_path / "logs" / f"{name}.log",
                            pidfile=lambda name: tmp_path / "pids" / f"{name}.json")
    lab = LabKeda(SimpleNamespace(paths=paths, echo=print, name="unit"))  # type: ignore[arg-type]
    loop = lab._process(OPERATOR, ["sh", "-c", hosts.BACKOFF_LOOP, "sh", "sleep", "300"])
    loop.start()
    yield lab, loop
    loop.stop(timeout=2)


def test_a_crash_kills_the_loops_child_and_the_loop_restarts_it_at_once(keda) -> None:
    lab, loop = keda
    first = wait_for("the loop runs its child", lambda: children(loop.pid))[0]
    assert lab.crash(OPERATOR) == first
    second = wait_for("a new child after the first crash", lambda: [c for c in children(loop.pid) if c != first])[0]
    assert loop.alive(), "the loop itself survives the crash"
    assert lab.crash(OPERATOR) == second
    wait_for("the loop backing off (10 s) after the second crash",
             lambda: "restart 2 in 10s" in loop.spec.log.read_text() and not children(loop.pid))
    with pytest.raises(LabError, match="backing off"):
        lab.crash(OPERATOR)


def test_crashing_a_process_that_is_not_running_says_so(tmp_path: Path) -> None:
    paths = SimpleNamespace(log=lambda name: tmp_path / f"{name}.log", pidfile=lambda name: tmp_path / f"{name}.json")
    lab = LabKeda(SimpleNamespace(paths=paths, echo=print, name="unit"))  # type: ignore[arg-type]
    with pytest.raises(LabError, match="not running"):
        lab.crash(OPERATOR)
