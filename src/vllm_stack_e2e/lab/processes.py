"""Local processes the lab and the integration fixtures start: started with a log file and a
PID file, stopped by PID (their own process group), never by name."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from ..errors import LabError
from ..redaction import redact_argv


@dataclass
class ProcessSpec:
    """What to run: a name (for logs and status), argv, the log file, extra environment."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a PID, to tell our process from a recycled PID."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class ManagedProcess:
    """A process with a PID file, so another run (`lab-down`) can stop exactly it."""

    def __init__(self, spec: ProcessSpec, pidfile: Path) -> None:
        self.spec = spec
        self.pidfile = pidfile
        self._popen: subprocess.Popen[bytes] | None = None
        self._started_at: str | None = None

    @classmethod
    def from_pidfile(cls, pidfile: Path) -> "ManagedProcess":
        """The process a PID file names; a damaged file gives a process that is not running."""
        try:
            record = json.loads(pidfile.read_text())
            spec = ProcessSpec(name=record["name"], argv=record["argv"], log=Path(record["log"]))
        except (OSError, ValueError, KeyError, TypeError):
            spec = ProcessSpec(name=pidfile.stem, argv=[], log=pidfile.with_suffix(".log"))
        return cls(spec, pidfile)

    @property
    def pid(self) -> int | None:
        if self._popen is not None:
            return self._popen.pid
        record = self._record()
        if record is None or _start_time(record["pid"]) != record.get("start_time"):
            return None  # no file, a damaged one, or a recycled PID: not ours
        return int(record["pid"])

    def _record(self) -> dict | None:
        try:
            record = json.loads(self.pidfile.read_text())
            int(record["pid"])
            return record  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _group_is_ours(self, group: int) -> bool:
        """Leftover members of our group may outlive its leader. Linux does not reuse a PID as
        long as a group of that id has members; so the group is ours unless a *different*
        process now holds the leader's PID (the group emptied and the PID was recycled)."""
        now = _start_time(group)
        if now is None:
            return True
        record = self._record()
        expected = record.get("start_time") if record else self._started_at
        return now == expected

    @property
    def group(self) -> int | None:
        """The process group we started (its id is the leader's PID; it outlives the leader)."""
        if self._popen is not None:
            return self._popen.pid
        record = self._record()
        return int(record.get("pgid", record["pid"])) if record else None

    def start(self) -> int:
        if self.alive():
            return self.pid  # type: ignore[return-value]
        self.spec.log.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(self.spec.env)
        with self.spec.log.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(redact_argv(self.spec.argv))}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    self.spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, cwd=self.spec.cwd, start_new_session=True,
                )
            except OSError as exc:
                raise LabError(f"cannot start {self.spec.name} ({self.spec.argv[0]}): {exc}") from exc
        self._started_at = _start_time(self._popen.pid)
        record = {
            "name": self.spec.name, "pid": self._popen.pid, "pgid": self._popen.pid, "argv": self.spec.argv,
            "log": str(self.spec.log), "start_time": self._started_at,
        }
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.pidfile)  # atomic: a reader never sees half a PID file
        return self._popen.pid

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        pid = self.pid
        return pid is not None and _pid_alive(pid)

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def terminate(self) -> None:
        """SIGTERM to the process we started (not its group: it passes the signal on itself, and a
        second SIGTERM would make a server give up its graceful shutdown). Does not wait."""
        pid = self.pid
        if pid is not None and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group we started, then SIGKILL after `timeout`; remove the PID file.
        The group is signalled even when its leader has died (its children may live on)."""
        pid, group = self.pid, self.group
        if pid is not None and _pid_alive(pid):
            self._signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._signal(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        if group is not None and self._group_is_ours(group) and _group_members(group):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
            retryer = Retrying(stop=stop_after_delay(5), wait=wait_fixed(0.05),
                               retry=retry_if_result(bool), retry_error_callback=lambda _state: None)
            retryer(_group_members, group)
        if self._popen is not None:
            try:
                self._popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.pidfile.unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # we started it with start_new_session: its group is its PID
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        retryer = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.1),
                           retry=retry_if_result(bool), retry_error_callback=lambda _state: True)
        return not retryer(_pid_alive, pid)

    def rss_bytes(self) -> int:
        """Resident memory of the process and its descendants (0 when not running)."""
        pid = self.pid
        if pid is None:
            return 0
        return sum(_rss(p) for p in _descendants(pid) | {pid})

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.spec.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def stop_together(processes: Iterable[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop several processes side by side (each as `ManagedProcess.stop`): the slowest one's
    graceful shutdown, not their sum."""
    with concurrent.futures.ThreadPoolExecutor() as pool:
        for future in [pool.submit(proc.stop, timeout) for proc in processes]:
            future.result()

