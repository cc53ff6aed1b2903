"""PortForward's start-up: kubectl exits at once when the target's pod is not Running yet;
that is retried within the budget, any other failure is reported at once.

These use a stand-in `kubectl` script: the window in which a real kubectl meets a Pending pod
(a restarted scheduler waiting for its old lease) is timing-dependent and cannot be produced
on demand; the lab e2e test of a restarted lab exercises the real one."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from vllm_stack_e2e import kubectl as kubectl_cli
from vllm_stack_e2e.errors import CommandError

FAKE = textwrap.dedent("""\
    #!{python}
    import socket, sys, time
    from pathlib import Path
    state = Path({state!r})
    tries = int(state.read_text()) if state.exists() else 0
    state.write_text(str(tries + 1))
    if tries < {pending}:
        sys.stderr.write("error: unable to forward port because pod is not running. Current status=Pending\\n")
        sys.exit(1)
    if {broken}:
        sys.stderr.write("error: services \\"nope\\" is forbidden\\n")
        sys.exit(1)
    port = int(sys.argv[-1].split(":")[0])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    deadline = time.monotonic() + 30
    server.settimeout(1)
    while time.monotonic() < deadline:
        try:
            server.accept()[0].close()
        except OSError:
            pass
""")


def _kubectl(tmp_path: Path, pending: int, broken: bool = False) -> Path:
    script = tmp_path / "kubectl"
    script.write_text(FAKE.format(python=sys.executable, state=str(tmp_path / "tries"), pending=pending,
                                  broken=broken))
    script.chmod(0o755)
    return script


def test_waits_out_a_pending_pod(tmp_path: Path) -> None:
    forward = kubectl_cli.PortForward(_kubectl(tmp_path, pending=3), tmp_path / "kubeconfig", "ns", "svc/router", 80)
    try:
        forward.open(budget=20)
        assert forward.alive()
        assert (tmp_path / "tries").read_text() == "4"  # three Pending exits, then listening
    finally:
        forward.close()


def test_other_kubectl_errors_fail_at_once_naming_the_target(tmp_path: Path) -> None:
    forward = kubectl_cli.PortForward(_kubectl(tmp_path, pending=0, broken=True), tmp_path / "kubeconfig", "ns",
                            "svc/nope", 80)
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"svc/nope .*forbidden"):
        forward.open(budget=20)
    assert time.monotonic() - started < 10


def test_a_pod_that_never_runs_fails_after_the_budget_with_kubectls_words(tmp_path: Path) -> None:
    forward = kubectl_cli.PortForward(_kubectl(tmp_path, pending=10_000), tmp_path / "kubeconfig", "ns", "svc/router", 80)
    with pytest.raises(CommandError, match="pod is not running"):
        forward.open(budget=2)
