"""The kubelet's probes for the containers the lab runs as local processes: the pod spec's
startupProbe, readinessProbe and livenessProbe, timed as the kubelet times them.

- Every probe waits `initialDelaySeconds` from the container's start, then runs every
  `periodSeconds` (defaults: 0, 10; timeout 1 s; success threshold 1; failure threshold 3).
- While a startup probe has not succeeded, readiness and liveness probes do not run. The startup
  probe failing `failureThreshold` times in a row restarts the container.
- Ready: without a readiness probe, once started; with one, after `successThreshold` successes in
  a row, and not Ready again after `failureThreshold` failures in a row. A container starts not Ready.
- Liveness failing `failureThreshold` times in a row restarts the container.
- httpGet succeeds on a status from 200 to 399; tcpSocket on a connection. exec and grpc probes
  cannot run against a local process: they are reported once and counted as passing.

`Prober` is the bookkeeping, driven by a clock the caller gives (unit-tested without waiting);
`check` runs one probe against an address."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import podspec

log = logging.getLogger("vllm_stack_e2e.lab.probes")
KINDS = ("startup", "readiness", "liveness")


@dataclass(frozen=True)
class Probe:
    kind: str  # startup | readiness | liveness
    action: str  # http | tcp | exec | grpc
    port: int | None = None
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_spec(cls, kind: str, spec: dict[str, Any], pod: dict[str, Any]) -> "Probe":
        """A probe from a container's `<kind>Probe` field; ports by number or container port name."""
        timing = {"initial_delay": float(spec.get("initialDelaySeconds", 0)),
                  "period": float(spec.get("periodSeconds", 10)), "timeout": float(spec.get("timeoutSeconds", 1)),
                  "success_threshold": int(spec.get("successThreshold", 1)),
                  "failure_threshold": int(spec.get("failureThreshold", 3))}
        if "httpGet" in spec:
            http = spec["httpGet"]
            headers = tuple((h["name"], h["value"]) for h in http.get("httpHeaders") or [])
            return cls(kind, "http", podspec.port_number(pod, http.get("port")), http.get("path", "/"),
                       http.get("scheme", "HTTP"), headers, **timing)
        if "tcpSocket" in spec:
            return cls(kind, "tcp", podspec.port_number(pod, spec["tcpSocket"].get("port")), **timing)
        return cls(kind, "grpc" if "grpc" in spec else "exec", **timing)

    def describe(self) -> str:
        target = {"http": f"GET {self.path} on {self.port}", "tcp": f"tcp {self.port}"}.get(self.action, self.action)
        return (f"{self.kind} {target} delay={self.initial_delay:g}s period={self.period:g}s "
                f"#success={self.success_threshold} #failure={self.failure_threshold}")


def probes_of(pod: dict[str, Any], index: int = 0) -> list[Probe]:
    container = podspec.container(pod, index)
    return [Probe.from_spec(kind, container[f"{kind}Probe"], pod) for kind in KINDS if container.get(f"{kind}Probe")]


@dataclass
class _Worker:
    probe: Probe
    next_at: float
    successes: int = 0
    failures: int = 0


@dataclass
class Prober:
    """The probe state of one container since its (re)start at `started_at`."""

    probes: list[Probe]
    started_at: float
    restart_reason: str = ""  # set when a startup or liveness probe says restart
    started: bool = False
    ready: bool = False
    restarts: int = 0
    _workers: list[_Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reset(self.started_at)

    def _reset(self, now: float) -> None:
        self.started_at = now
        self._workers = [_Worker(p, now + p.initial_delay) for p in self.probes]
        self.started = not self._has("startup")
        self.ready = self.started and not self._has("readiness")
        self.restart_reason = ""

    def _has(self, kind: str) -> bool:
        return any(p.kind == kind for p in self.probes)

    def due(self, now: float) -> list[Probe]:
        """The probes to run now. A readiness or liveness probe whose turn comes before the startup
        probe succeeded skips that turn."""
        out = []
        for worker in self._workers:
            while worker.next_at <= now:
                worker.next_at += worker.probe.period
                if worker.probe.kind == "startup" and self.started:
                    continue  # done once it succeeded
                if worker.probe.kind != "startup" and not self.started:
                    continue
                out.append(worker.probe)
                break
        return out

    def next_due(self) -> float:
        return min((w.next_at for w in self._workers), default=float("inf"))

    def record(self, probe: Probe, ok: bool) -> None:
        worker = next(w for w in self._workers if w.probe == probe)
        if ok:
            worker.successes, worker.failures = worker.successes + 1, 0
        else:
            worker.successes, worker.failures = 0, worker.failures + 1
        if probe.kind == "startup":
            if ok:
                self.started = True
                self.ready = not self._has("readiness")
            elif worker.failures >= probe.failure_threshold:
                self.restart_reason = f"startup probe failed {worker.failures} times"
        elif probe.kind == "readiness":
            if ok and worker.successes >= probe.success_threshold:
                self.ready = True
            elif not ok and worker.failures >= probe.failure_threshold:
                self.ready = False
        elif not ok and worker.failures >= probe.failure_threshold:
            self.restart_reason = f"liveness probe failed {worker.failures} times"

    def restarted(self, now: float) -> None:
        """The container was restarted: every probe starts over, not Ready."""
        self.restarts += 1
        self._reset(now)


_UNSUPPORTED_SEEN: set[str] = set()


def check(probe: Probe, address: str, client: httpx.Client) -> tuple[bool, str]:
    """Run one probe against the container's address; (passed, what was seen)."""
    if probe.action in ("exec", "grpc"):
        if probe.action not in _UNSUPPORTED_SEEN:
            _UNSUPPORTED_SEEN.add(probe.action)
            log.warning("%s probes cannot run against a local process on the lab: counted as passing", probe.action)
        return True, f"{probe.action} probe not run (unsupported on the lab)"
    if probe.port is None:
        return False, f"{probe.kind} probe names a port no container declares"
    if probe.action == "tcp":
        try:
            with socket.create_connection((address, probe.port), timeout=probe.timeout):
                return True, "connected"
        except OSError as exc:
            return False, f"tcp {address}:{probe.port}: {exc}"
    url = f"{probe.scheme.lower()}://{address}:{probe.port}{probe.path}"
    try:
        reply = client.get(url, headers=dict(probe.headers), timeout=probe.timeout)
    except httpx.HTTPError as exc:
        return False, f"GET {url}: {type(exc).__name__}"
    return 200 <= reply.status_code < 400, f"GET {url}: HTTP {reply.status_code}"
