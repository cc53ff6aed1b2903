"""ManagedProcess: start with a log and a PID file, stop by PID (the whole process group),
and let another run (`lab-down`) find and stop exactly the same process. Real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _waits import wait_for

from vllm_stack_e2e.errors import LabError
from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec

PAUSE = [sys.executable, "-c", "import signal; signal.pause()"]
# A leader that starts a grandchild (in its process group) and writes the grandchild's PID.
WITH_GRANDCHILD = "sleep 300 & echo $! > {gc}; wait"




def gone(pid: int) -> bool:
    """No such process, or only a zombie left (its parent may be an init that never reaps)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Started:
    """What a test started, stopped by PID at teardown: ManagedProcesses, Popens, and stray
    grandchildren (killed only while their command line is still the one we started)."""

    def __init__(self) -> None:
        self.managed: list[ManagedProcess] = []
        self.popens: list[subprocess.Popen[bytes]] = []
        self.strays: list[tuple[int, bytes]] = []

    def add(self, proc: ManagedProcess) -> ManagedProcess:
        self.managed.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.managed:
            proc.stop(timeout=2)
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
                popen.wait(timeout=5)
        for pid, cmdline in self.strays:
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


@pytest.fixture
def started() -> Iterator[Started]:
    tracker = Started()
    yield tracker
    tracker.cleanup()


def managed(tmp_path: Path, name: str, argv: list[str], **env: str) -> ManagedProcess:
    spec = ProcessSpec(name=name, argv=argv, log=tmp_path / "logs" / f"{name}.log", env=env)
    return ManagedProcess(spec, tmp_path / "pids" / f"{name}.json")


def test_start_writes_a_pid_file_and_stop_removes_it(tmp_path: Path, started: Started) -> None:
    proc = started.add(managed(tmp_path, "pause", PAUSE, LAB_UNIT="yes"))
    assert not proc.alive() and proc.pid is None
    pid = proc.start()
    assert proc.alive() and proc.pid == pid
    record = json.loads(proc.pidfile.read_text())
    assert record["pid"] == pid and record["name"] == "pause" and record["argv"] == PAUSE
    assert record["log"] == str(tmp_path / "logs" / "pause.log") and record["start_time"]
    assert os.getpgid(pid) == pid, "started in its own session, so its group is its PID"
    assert os.getsid(pid) == pid
    assert Path(f"/proc/{pid}/environ").read_bytes().split(b"\0").count(b"LAB_UNIT=yes") == 1
    assert proc.start() == pid, "start() on a running process is a no-op"

    proc.stop()
    assert not proc.alive() and gone(pid)
    assert not proc.pidfile.exists()
    assert proc.exit_code() == -signal.SIGTERM


def test_output_goes_to_the_log_and_the_exit_code_is_kept(tmp_path: Path, started: Started) -> None:
    proc = started.add(managed(tmp_path, "short", ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]))
    proc.start()
    wait_for("the short command exits", lambda: not proc.alive())
    assert proc.exit_code() == 3
    lines = proc.log_tail().splitlines()
    assert lines[0].startswith("--- ") and lines[0].endswith("start: sh -c echo to-stdout; echo to-stderr >&2; exit 3")
    assert sorted(lines[1:]) == ["to-stderr", "to-stdout"]
    assert proc.log_tail(1) in ("to-stderr", "to-stdout")


def test_a_missing_program_is_a_lab_error(tmp_path: Path) -> None:
    proc = managed(tmp_path, "nothing", [str(tmp_path / "no-such-binary")])
    with pytest.raises(LabError, match=r"cannot start nothing \(.*no-such-binary\)"):
        proc.start()
    assert not proc.pidfile.exists()


def test_another_run_stops_the_same_process_from_the_pid_file(tmp_path: Path, started: Started) -> None:
    """The second view is a real second process, the way `vllm-stack-lab down` runs."""
    proc = started.add(managed(tmp_path, "pause", PAUSE))
    pid = proc.start()

    view = ManagedProcess.from_pidfile(proc.pidfile)
    assert view.spec.name == "pause" and view.spec.argv == PAUSE and view.spec.log == proc.spec.log
    assert view.pid == pid and view.alive()

    other_run = ("import sys; from pathlib import Path; from vllm_stack_e2e.lab.processes import ManagedProcess\n"
                 "p = ManagedProcess.from_pidfile(Path(sys.argv[1])); print(p.pid, p.alive()); p.stop(timeout=5)")
    result = subprocess.run([sys.executable, "-c", other_run, str(proc.pidfile)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(pid), "True"]
    wait_for("the process stopped by the other run is gone", lambda: not proc.alive())
    assert proc.exit_code() == -signal.SIGTERM
    assert not proc.pidfile.exists()
    assert not view.alive() and view.pid is None


def test_a_recycled_pid_is_not_ours(tmp_path: Path, started: Started) -> None:
    """A PID file whose PID now belongs to another process (other start time) is ignored, and
    stop() must leave that process alone."""
    stranger = subprocess.Popen(PAUSE, start_new_session=True)
    started.popens.append(stranger)
    pidfile = tmp_path / "pids" / "old.json"
    pidfile.parent.mkdir()
    pidfile.write_text(json.dumps({"name": "old", "pid": stranger.pid, "argv": ["old"], "log": str(tmp_path / "old.log"),
                                   "start_time": "1"}))
    view = ManagedProcess.from_pidfile(pidfile)
    assert view.pid is None and not view.alive() and view.rss_bytes() == 0
    view.stop(timeout=1)
    assert stranger.poll() is None, "stop() killed a process that was not ours"
    assert not pidfile.exists(), "the stale PID file is cleaned up"


@pytest.mark.parametrize("content", ["", '{"name": "garbage", "pid": 12'], ids=["empty", "truncated"])
def test_a_garbage_pid_file_means_not_running(tmp_path: Path, content: str) -> None:
    proc = managed(tmp_path, "garbage", PAUSE)
    proc.pidfile.parent.mkdir(parents=True)
    proc.pidfile.write_text(content)
    assert proc.pid is None and not proc.alive() and proc.rss_bytes() == 0
    proc.stop()
    assert not proc.pidfile.exists()


def test_a_pid_file_of_a_process_that_exited_means_not_running(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    pidfile = tmp_path / "gone.json"
    pidfile.write_text(json.dumps({"name": "gone", "pid": finished.pid, "argv": ["true"], "log": "x", "start_time": "5"}))
    view = ManagedProcess.from_pidfile(pidfile)
    assert view.pid is None and not view.alive()


def test_stop_kills_the_whole_process_group(tmp_path: Path, started: Started) -> None:
    gc_file = tmp_path / "grandchild.pid"
    proc = started.add(managed(tmp_path, "tree", ["sh", "-c", WITH_GRANDCHILD.format(gc=gc_file)]))
    leader = proc.start()
    grandchild = int(wait_for("the grandchild writes its PID", lambda: gc_file.exists() and gc_file.read_text().strip()))
    started.strays.append((grandchild, b"sleep\x00300\x00"))
    assert os.getpgid(grandchild) == leader
    proc.stop(timeout=5)
    assert gone(leader)
    wait_for("the grandchild is gone too", lambda: gone(grandchild), budget=5)


def test_stop_kills_an_orphaned_group_whose_leader_died(tmp_path: Path, started: Started) -> None:
    gc_file = tmp_path / "grandchild.pid"
    proc = started.add(managed(tmp_path, "tree", ["sh", "-c", WITH_GRANDCHILD.format(gc=gc_file)]))
    leader = proc.start()
    grandchild = int(wait_for("the grandchild writes its PID", lambda: gc_file.exists() and gc_file.read_text().strip()))
    started.strays.append((grandchild, b"sleep\x00300\x00"))
    os.kill(leader, signal.SIGKILL)
    wait_for("the leader is dead", lambda: not proc.alive())
    proc.stop(timeout=2)
    assert gone(grandchild), "the leader's child outlived stop()"


def test_rss_counts_the_process_and_its_descendants(tmp_path: Path, started: Started) -> None:
    big = f"{sys.executable} -c 'import signal; b = b\"x\" * (48 << 20); print(\"allocated\", flush=True); signal.pause()'"
    proc = started.add(managed(tmp_path, "rss", ["sh", "-c", f"{big} & wait"]))
    proc.start()
    wait_for("the child allocated its memory", lambda: "allocated" in proc.log_tail().splitlines())
    rss = proc.rss_bytes()
    assert rss >= 48 << 20, f"rss {rss} does not include the 48 MiB child"
    proc.stop()
    assert proc.rss_bytes() == 0


def test_rss_of_a_small_process_is_positive(tmp_path: Path, started: Started) -> None:
    proc = started.add(managed(tmp_path, "pause", PAUSE))
    proc.start()
    assert proc.rss_bytes() > 0
