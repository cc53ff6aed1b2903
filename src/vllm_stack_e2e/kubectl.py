"""The kubectl binary, for what the tutorial does with it and the API client cannot:
`kubectl port-forward` (how the tutorial reaches Prometheus and the router) and `kubectl
describe` (failure evidence)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from .errors import CommandError, HarnessError
from .net import free_port


class PodNotRunning(OSError):
    """kubectl port-forward found no Running pod behind its target (yet)."""


class PortForward:
    """`kubectl port-forward -n NS TARGET LOCAL:REMOTE` on 127.0.0.1, as the tutorial does.

    kubectl forwards to one pod and exits when that pod goes away; `alive()` tells, and the
    caller opens a new one."""

    def __init__(self, kubectl: Path, kubeconfig: Path, namespace: str, target: str, remote_port: int,
                 local_port: int | None = None) -> None:
        self.namespace, self.target, self.remote_port = namespace, target, remote_port
        self.port = local_port or free_port()
        self._cmd = [str(kubectl), "--kubeconfig", str(kubeconfig), "port-forward", "--address", "127.0.0.1",
                     "-n", namespace, target, f"{self.port}:{remote_port}"]
        self._proc: subprocess.Popen[str] | None = None

    def open(self, budget: float = 30.0) -> "PortForward":
        """Start kubectl and wait until it listens. kubectl exits at once when the target's pod
        is not Running yet (just created, or a restarted scheduler has not placed it); that is
        retried within the budget, any other exit is not."""
        self._launch()

        def listening() -> None:
            if self._proc is not None and self._proc.poll() is not None:
                message = self._proc.stderr.read() if self._proc.stderr else "exited"
                if "pod is not running" in message or "not found" in message:
                    self._launch()
                    raise PodNotRunning(message)
                raise HarnessError(message)
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass

        try:
            for attempt in Retrying(stop=stop_after_delay(budget), wait=wait_fixed(0.2),
                                    retry=retry_if_exception_type(OSError), reraise=True):
                with attempt:
                    listening()
        except (OSError, HarnessError) as exc:
            self.close()
            raise CommandError(
                f"kubectl port-forward -n {self.namespace} {self.target} {self.port}:{self.remote_port} did not "
                f"listen within {budget:.0f}s: {str(exc).strip()[-300:]} — check that {self.target} has a Running pod"
            ) from exc
        return self

    def _launch(self) -> None:
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@contextlib.contextmanager
def port_forward(kubectl: Path, kubeconfig: Path, namespace: str, target: str, remote_port: int,
                 local_port: int | None = None, budget: float = 30.0) -> Iterator[int]:
    """A PortForward for the duration of a block; yields the local port."""
    forward = PortForward(kubectl, kubeconfig, namespace, target, remote_port, local_port).open(budget)
    try:
        yield forward.port
    finally:
        forward.close()

def describe(kubectl: Path, kubeconfig: Path, kind: str, name: str, namespace: str | None = None) -> str:
    """`kubectl describe KIND NAME` text, for failure evidence (errors become the text)."""
    cmd = [str(kubectl), "--kubeconfig", str(kubeconfig), "describe", kind, name]
    if namespace:
        cmd += ["-n", namespace]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout if proc.returncode == 0 else f"<kubectl describe {kind} {name} failed: {proc.stderr.strip()}>"
