"""The TCP relay between the machine's loopback and a network namespace's loopback.

Real namespaces, real sockets, real processes: each test makes its own namespace
`vse-test-<random>` (never the lab's), uses 127.0.77.x addresses (clear of the lab's), and
stops everything it started by PID."""

from __future__ import annotations

import http.server
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _waits import wait_for

from vllm_stack_e2e.net import free_port

BUDGET = 10.0
NEEDS_NETNS = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="network namespaces need root and iproute2's `ip`")


class Processes:
    """Processes a test starts, each in its own session; all stopped by PID at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.started.append(proc)
        return proc, log

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with its loopback up; deleted afterwards."""
    name = f"vse-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def relay(processes: Processes, ns: str, *flags: str) -> tuple[subprocess.Popen[bytes], Path]:
    proc, log = processes.start("relay", [sys.executable, "-m", "vllm_stack_e2e.lab.nsrelay",
                                          "--netns", f"/run/netns/{ns}", *flags])
    wait_for("relay prints that it is relaying", lambda: proc.poll() is None and "relaying in=" in log.read_text())
    return proc, log


def in_netns(ns: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=BUDGET, check=False)


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@NEEDS_NETNS
def test_in_reaches_a_server_inside_the_namespace(netns: str, processes: Processes, tmp_path: Path) -> None:
    host = "127.0.77.1"
    port = free_port(host)
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.txt").write_text(f"inside {netns}\n")
    server, server_log = processes.start("server", [
        "ip", "netns", "exec", netns, sys.executable, "-u", "-m", "http.server", "--bind", host,
        "--directory", str(site), str(port)])
    wait_for("http.server listens inside the namespace", lambda: "Serving HTTP" in server_log.read_text())
    assert refused(host, port), "the namespace's server must not be reachable from the machine without the relay"

    proc, _ = relay(processes, netns, "--in", f"{host}:{port}")
    body = urllib.request.urlopen(f"http://{host}:{port}/hello.txt", timeout=5).read().decode()
    assert body == f"inside {netns}\n"

    Processes.stop(proc)
    assert proc.returncode == 0, "the relay exits cleanly on SIGTERM"
    assert server.poll() is None
    assert refused(host, port), "with the relay stopped the machine reaches nothing there again"


@NEEDS_NETNS
def test_out_reaches_a_server_on_the_machine(netns: str, processes: Processes) -> None:
    host = "127.0.77.2"

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = f"machine says {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Hello)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fetch = f"import urllib.request; print(urllib.request.urlopen('http://{host}:{port}/x', timeout=5).read().decode())"
        before = in_netns(netns, fetch)
        assert before.returncode != 0, "inside the namespace the machine's loopback is unreachable without the relay"

        relay(processes, netns, "--out", f"{host}:{port}")
        after = in_netns(netns, fetch)
        assert after.returncode == 0, after.stderr
        assert after.stdout.strip() == "machine says /x"
    finally:
        server.shutdown()
        server.server_close()


@NEEDS_NETNS
def test_in_and_out_together_carry_many_connections(netns: str, processes: Processes, tmp_path: Path) -> None:
    """Like the lab's relay: several --in and --out at once; each connection is relayed separately."""
    host_in, host_out = "127.0.77.3", "127.0.77.4"
    port_in = free_port(host_in)
    echo = ("import socket, threading\n"
            f"s = socket.create_server(('{host_in}', {port_in}))\n"
            "print('listening', flush=True)\n"
            "def serve(c):\n"
            "    with c:\n"
            "        while data := c.recv(65536): c.sendall(data)\n"
            "while True:\n"
            "    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()\n")
    _, echo_log = processes.start("echo", ["ip", "netns", "exec", netns, sys.executable, "-c", echo])
    wait_for("echo server listens inside the namespace", lambda: "listening" in echo_log.read_text())
    with socket.create_server((host_out, 0)) as machine:
        port_out = machine.getsockname()[1]
        relay(processes, netns, "--in", f"{host_in}:{port_in}", "--out", f"{host_out}:{port_out}")

        clients = [socket.create_connection((host_in, port_in), timeout=5) for _ in range(5)]
        payload = secrets.token_bytes(200_000)
        for i, client in enumerate(clients):
            client.sendall(bytes([i]) + payload)
        for i, client in enumerate(clients):
            received = b""
            while len(received) < len(payload) + 1:
                received += client.recv(65536)
            assert received == bytes([i]) + payload, f"connection {i} got another connection's bytes"
            client.close()

        probe = in_netns(netns, f"import socket; socket.create_connection(('{host_out}', {port_out}), timeout=5)")
        assert probe.returncode == 0, probe.stderr
        machine.settimeout(5)
        conn, _ = machine.accept()
        conn.close()


@NEEDS_NETNS
def test_half_close_is_passed_on(netns: str, processes: Processes) -> None:
    """A client that sends its request, shuts down its write side and then reads the answer
    (`nc -N`, many RPC clients) must get the answer."""
    host = "127.0.77.5"
    port = free_port(host)
    upper = ("import socket\n"
             f"s = socket.create_server(('{host}', {port}))\n"
             "print('listening', flush=True)\n"
             "while True:\n"
             "    c = s.accept()[0]\n"
             "    data = b''\n"
             "    while chunk := c.recv(65536): data += chunk\n"
             "    try: c.sendall(data.upper())\n"
             "    except OSError: pass\n"
             "    c.close()\n")
    _, log = processes.start("upper", ["ip", "netns", "exec", netns, sys.executable, "-c", upper])
    wait_for("the upper-casing server listens", lambda: "listening" in log.read_text())
    relay(processes, netns, "--in", f"{host}:{port}")
    with socket.create_connection((host, port), timeout=5) as client:
        client.sendall(b"ping")
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer == b"PING", "the relay closed the upstream connection instead of half-closing it"


def test_unknown_namespace_fails_in_one_line(tmp_path: Path) -> None:
    port = free_port("127.0.77.6")
    proc = subprocess.run([sys.executable, "-m", "vllm_stack_e2e.lab.nsrelay", "--netns", str(tmp_path / "nope"),
                           "--out", f"127.0.77.6:{port}"], capture_output=True, text=True, timeout=BUDGET, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("nsrelay: ") and str(tmp_path / "nope") in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_address_in_use_fails_in_one_line() -> None:
    with socket.create_server(("127.0.77.7", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "vllm_stack_e2e.lab.nsrelay", "--netns", "/proc/self/ns/net",
                               "--in", f"127.0.77.7:{port}"], capture_output=True, text=True, timeout=BUDGET, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("nsrelay: ") and "in use" in proc.stderr, proc.stderr


def test_split_takes_the_last_colon() -> None:
    from vllm_stack_e2e.lab.nsrelay import _split

    assert _split("127.0.91.2:6443") == ("127.0.91.2", 6443)
    with pytest.raises(ValueError):
        _split("127.0.91.2")
