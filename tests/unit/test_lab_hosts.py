"""The lab's private /etc/hosts: what it contains, how a process is wrapped to see it, and
(where this machine allows mount namespaces) that a wrapped process really resolves with it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vllm_stack_e2e.lab import hosts
from vllm_stack_e2e.lab import paths as p

BASE = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.1.2.3 build-box\n"
CLUSTER_NAMES = {
    p.KEDA_OPERATOR_ADDR: "keda-operator.keda.svc",
    p.KEDA_ADAPTER_ADDR: "keda-operator-metrics-apiserver.keda.svc",
    p.KEDA_WEBHOOKS_ADDR: "keda-admission-webhooks.keda.svc",
}


def parse_hosts(text: str) -> dict[str, str]:
    """name -> address, the way a resolver reads a hosts file (first match wins)."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            table.setdefault(name, fields[0])
    return table


def test_render_keeps_the_machines_entries_first() -> None:
    text = hosts.render(BASE)
    assert text.startswith(BASE), "the machine's own entries come first, unchanged"
    table = parse_hosts(text)
    assert table["localhost"] == "127.0.0.1" and table["build-box"] == "10.1.2.3"
    assert text.endswith("\n") and "\n\n" not in text


def test_render_adds_every_in_cluster_name_short_and_fully_qualified() -> None:
    table = parse_hosts(hosts.render(BASE))
    for addr, name in CLUSTER_NAMES.items():
        assert table[name] == addr, f"{name} must resolve to {addr}"
        assert table[f"{name}.cluster.local"] == addr, f"{name}.cluster.local must resolve to {addr}"
    added = {n for n, a in table.items() if a in CLUSTER_NAMES}
    assert added == set(CLUSTER_NAMES.values()) | {f"{n}.cluster.local" for n in CLUSTER_NAMES.values()}


def test_render_without_trailing_newline_in_base() -> None:
    table = parse_hosts(hosts.render("127.0.0.1 localhost"))
    assert table["localhost"] == "127.0.0.1"
    assert table["keda-operator.keda.svc"] == p.KEDA_OPERATOR_ADDR
    assert "prometheus-operated.monitoring.svc" not in table, "Prometheus's names come from CoreDNS, not the hosts file"


def test_render_defaults_to_the_machines_hosts_file() -> None:
    machine = Path("/etc/hosts").read_text()
    assert hosts.render().startswith(machine.rstrip("\n"))


def test_write_creates_the_parent_folder(tmp_path: Path) -> None:
    target = hosts.write(tmp_path / "lab" / "hosts")
    assert parse_hosts(target.read_text())["keda-operator.keda.svc"] == p.KEDA_OPERATOR_ADDR


def test_wrap_binds_the_hosts_file_then_execs(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    argv = hosts.wrap(["keda-operator", "--zap-log-level=info"], hosts_file)
    assert argv[:6] == ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    script, zero, *rest = argv[6:]
    assert zero == str(hosts_file), "the hosts file is the script's $0"
    assert rest == ["keda-operator", "--zap-log-level=info"], "the command follows as \"$@\", unquoted and unchanged"
    assert 'mount --bind "$0" /etc/hosts' in script and 'exec "$@"' in script
    assert "while" not in script


def test_wrap_with_restart_loops_the_command(tmp_path: Path) -> None:
    argv = hosts.wrap(["keda-operator"], tmp_path / "hosts", restart=True)
    script = argv[6]
    assert argv[7:] == [str(tmp_path / "hosts"), "keda-operator"]
    assert script.startswith('mount --bind "$0" /etc/hosts || exit 1')
    assert "while :" in script and '"$@"' in script and "exec" not in script


def test_restart_loop_script_is_valid_sh() -> None:
    check = subprocess.run(["sh", "-n", "-c", hosts.wrap(["true"], Path("/x"), restart=True)[6]],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_can_isolate_is_a_stable_answer() -> None:
    assert hosts.can_isolate() is hosts.can_isolate()
    assert isinstance(hosts.can_isolate(), bool)


@pytest.mark.skipif(not hosts.can_isolate(), reason="no mount namespaces here (needs root and util-linux unshare)")
def test_wrapped_process_resolves_cluster_names_from_the_lab_hosts_file(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n127.0.77.9 prometheus-operated.monitoring.svc\n")
    inside = subprocess.run(hosts.wrap(["getent", "hosts", "prometheus-operated.monitoring.svc"], hosts_file),
                            capture_output=True, text=True, timeout=10, check=False)
    assert inside.returncode == 0, f"getent inside the wrapper failed: {inside.stderr.strip()}"
    assert inside.stdout.split()[0] == "127.0.77.9", inside.stdout
    outside = subprocess.run(["getent", "hosts", "prometheus-operated.monitoring.svc"],
                             capture_output=True, text=True, timeout=10, check=False)
    assert "127.0.77.9" not in outside.stdout, "the bind mount leaked out of the private mount namespace"


def test_wrap_with_resolv_conf_binds_both_files(tmp_path: Path) -> None:
    argv = hosts.wrap(["keda-operator"], tmp_path / "hosts", restart=True, resolv_file=tmp_path / "resolv.conf")
    script = argv[6]
    assert argv[7:] == [str(tmp_path / "hosts"), str(tmp_path / "resolv.conf"), "keda-operator"]
    assert script.startswith('mount --bind "$1" /etc/resolv.conf || exit 1; shift; mount --bind "$0" /etc/hosts')
    check = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


@pytest.mark.skipif(not hosts.can_isolate(), reason="no mount namespaces here (needs root and util-linux unshare)")
def test_wrapped_process_sees_the_lab_resolv_conf(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(hosts.render(BASE))
    (tmp_path / "resolv.conf").write_text("search keda.svc.cluster.local\nnameserver 127.0.92.53\noptions ndots:5\n")
    inside = subprocess.run(hosts.wrap(["cat", "/etc/resolv.conf"], tmp_path / "hosts",
                                       resolv_file=tmp_path / "resolv.conf"),
                            capture_output=True, text=True, timeout=10, check=False)
    assert inside.returncode == 0, inside.stderr
    assert "nameserver 127.0.92.53" in inside.stdout, inside.stdout


@pytest.mark.skipif(not hosts.can_isolate(), reason="no mount namespaces here (needs root and util-linux unshare)")
def test_wrapped_process_exit_code_is_the_commands(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(hosts.render(BASE))
    proc = subprocess.run(hosts.wrap(["sh", "-c", "exit 7"], hosts_file), capture_output=True, timeout=10, check=False)
    assert proc.returncode == 7


def test_the_restart_loop_backs_off_as_a_kubelet() -> None:
    """First restart at once, then 10 s doubling (capped at 300 s): `sleep` stands in as a shell
    function that records the delay and ends the loop after the fourth restart."""
    script = 'c=0; sleep() { c=$((c+1)); [ $c -ge 7 ] && exit 0; }; ' + hosts.BACKOFF_LOOP
    out = subprocess.run(["sh", "-c", script, "sh", "false"], capture_output=True, text=True, timeout=10, check=False)
    delays = [line.split(" in ")[1].split("s ")[0] for line in out.stdout.splitlines()]
    assert delays == ["0", "10", "20", "40", "80", "160", "300"], out.stdout + out.stderr
