"""Connections that leave loopback, read from `ss -tanp` as the rehearsal samples it."""

from __future__ import annotations

import subprocess
import sys

from vllm_stack_e2e import loopback

SS = """\
LISTEN 0 4096 127.0.0.1:6443 0.0.0.0:* users:(("kube-apiserver",pid=11,fd=3))
ESTAB 0 0 127.0.0.1:6443 127.0.0.1:50000 users:(("kube-apiserver",pid=11,fd=9))
ESTAB 0 0 [::1]:9090 [::1]:41000 users:(("prometheus",pid=12,fd=7))
SYN-SENT 0 1 10.0.2.15:40404 10.244.0.7:8080 users:(("kube-apiserver",pid={me},fd=12))
ESTAB 0 0 10.0.2.15:22 10.0.2.2:51515 users:(("sshd",pid=1,fd=4))
TIME-WAIT 0 0 10.0.2.15:40000 93.184.216.34:443
"""


def test_only_connections_leaving_loopback_are_kept_and_ours_are_told_apart() -> None:
    """A child process whose command line names the harness's package stands in for a lab process."""
    # The child lives until its stdin closes (no timer to wait out).
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()",
                              "vllm_stack_e2e-standin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "up"  # exec'd: its command line is set
    try:
        found = loopback.parse(SS.format(me=child.pid))
    finally:
        child.communicate(timeout=10)
    assert [(c.state, c.peer) for c in found] == [("SYN-SENT", "10.244.0.7:8080"), ("ESTAB", "10.0.2.2:51515"),
                                                 ("TIME-WAIT", "93.184.216.34:443")]
    mine, sshd, closing = found
    assert mine.ours and f"kube-apiserver({child.pid})" in str(mine)
    assert not sshd.ours and not closing.ours and closing.process == ""


def test_loopback_addresses() -> None:
    assert loopback.loopback("127.0.91.1:8080") and loopback.loopback("[::1]:9090")
    assert loopback.loopback("[::ffff:127.0.0.1]:80") and loopback.loopback("*:*")
    assert not loopback.loopback("10.244.0.7:8080") and not loopback.loopback("[fe80::1%eth0]:22")


def test_a_watch_says_what_it_saw() -> None:
    watch = loopback.Watch(samples=4)
    assert watch.explain() == "4 samples of `ss -tanp` (every 0.5s): none of ours left loopback"
    conn = loopback.Connection("SYN-SENT", "10.0.2.15:1", "10.244.0.7:8080", "kube-apiserver(7)", True)
    watch.seen[("a", "b", "c")] = conn
    assert "1 connection(s) of ours left loopback: SYN-SENT 10.0.2.15:1 → 10.244.0.7:8080" in watch.explain()
