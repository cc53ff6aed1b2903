"""Which TCP connections leave loopback, as `ss -tanp` shows them, sampled while a run goes.

The lab rehearses a GPU cluster's run with no network of its own: every connection its processes
and the harness's make must stay on 127.0.0.0/8 (or ::1), or inside a network namespace the lab
created (KEDA's). `Watch` samples the machine's own network namespace every half second and keeps
each connection seen whose local or peer address is not loopback, with the process that holds it
and whether that process is ours — the harness, the lab or one of their children (a process
whose command line, or an ancestor's, names `vllm_stack_e2e` or `vllm-stack-e2e`). Other
processes of the machine are listed, never counted.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

MARKS = ("vllm_stack_e2e", "vllm-stack-e2e")
_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


@dataclass(frozen=True)
class Connection:
    state: str
    local: str
    peer: str
    process: str  # `name(pid)`, or "" when ss names none (TIME-WAIT)
    ours: bool

    def __str__(self) -> str:
        return f"{self.state} {self.local} → {self.peer} {self.process or '(no process)'}"


def _host(address: str) -> str:
    """The address part of `ss`'s `addr:port` (`[::1]:80`, `127.0.0.1:9090`, `*:22`)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.split("%", 1)[0]


def loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and v4-mapped loopback; wildcards (`*`, 0.0.0.0) count as local."""
    host = _host(address)
    if host in ("*", "0.0.0.0", "::"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def ours(pid: int) -> bool:
    """The process or one of its ancestors is the harness's or the lab's."""
    seen = 0
    while pid > 1 and seen < 64:
        if any(mark in _cmdline(pid) for mark in MARKS):
            return True
        pid, seen = _parent(pid), seen + 1
    return False


def parse(text: str) -> list[Connection]:
    """Non-listening TCP connections of `ss -tanpH` output whose local or peer address leaves loopback."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[0] == "LISTEN":
            continue
        state, local, peer = parts[0], parts[3], parts[4]
        if loopback(local) and loopback(peer):
            continue
        users = _USERS.findall(" ".join(parts[5:]))
        process = ", ".join(f"{name}({pid})" for name, pid in users)
        found.append(Connection(state, local, peer, process, any(ours(int(pid)) for _, pid in users)))
    return found


def sample() -> list[Connection]:
    out = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=False, timeout=10).stdout
    return parse(out)


@dataclass
class Watch:
    """Samples `ss -tanp` in a thread between start() and stop(); `ours` is what fails a rehearsal."""

    interval: float = 0.5
    samples: int = 0
    seen: dict[tuple[str, str, str], Connection] = field(default_factory=dict)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "Watch":
        if shutil.which("ss") is None:
            self.error = "ss (iproute2) is not installed"
            return self
        self._thread = threading.Thread(target=self._run, name="loopback-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for conn in sample():
                    self.seen.setdefault((conn.local, conn.peer, conn.process), conn)
                self.samples += 1
            except (OSError, subprocess.SubprocessError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self.interval)

    def stop(self) -> "Watch":
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        return self

    @property
    def ours(self) -> list[Connection]:
        return [c for c in self.seen.values() if c.ours]

    @property
    def others(self) -> list[Connection]:
        return [c for c in self.seen.values() if not c.ours]

    def explain(self) -> str:
        if self.error and not self.samples:
            return f"ss could not be sampled: {self.error}"
        head = f"{self.samples} samples of `ss -tanp` (every {self.interval:g}s)"
        if self.ours:
            return f"{head}: {len(self.ours)} connection(s) of ours left loopback: " + "; ".join(map(str, self.ours[:8]))
        tail = f"; other processes of the machine: {len(self.others)}" if self.others else ""
        return f"{head}: none of ours left loopback{tail}"


def watching(interval: float = 0.5) -> Watch:
    """A started watch (stop it with `.stop()`)."""
    return Watch(interval=interval).start()
