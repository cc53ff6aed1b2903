"""What a kubelet writes into a KEDA pod's /etc: the hosts file and resolv.conf.

KEDA runs as local processes in a private mount namespace whose /etc/hosts and
/etc/resolv.conf are bind mounts of the lab's own files, so the machine's are never touched.
resolv.conf is a pod's (dns.resolv_conf: CoreDNS, the namespace's search path, ndots 5), so
every name in a trigger — the tutorial's Prometheus addresses included — resolves exactly as
from a pod in namespace `keda`. The hosts file adds only KEDA's own three Service names,
which its processes use to reach each other (on a cluster, through their Services).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from . import paths as p


def _names(service: str, namespace: str) -> list[str]:
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


ENTRIES: dict[str, list[str]] = {
    p.KEDA_OPERATOR_ADDR: _names("keda-operator", "keda"),
    p.KEDA_ADAPTER_ADDR: _names("keda-operator-metrics-apiserver", "keda"),
    p.KEDA_WEBHOOKS_ADDR: _names("keda-admission-webhooks", "keda"),
}


def render(base: str | None = None) -> str:
    """The lab's hosts file: the machine's own entries, then the cluster names."""
    if base is None:
        try:
            base = Path("/etc/hosts").read_text()
        except OSError:
            base = "127.0.0.1 localhost\n"
    lines = [base.rstrip("\n"), "# vllm-stack-e2e lab: in-cluster names of local processes"]
    lines += [f"{addr} {' '.join(names)}" for addr, names in ENTRIES.items()]
    return "\n".join(lines) + "\n"


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path


@functools.cache
def can_isolate() -> bool:
    """True when this machine lets us give a process its own /etc/hosts (mount namespace)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"],
        capture_output=True, check=False,
    )
    return probe.returncode == 0


# Like a kubelet with restartPolicy Always: KEDA's operator exits on purpose after it first
# writes its certificates ("so pod can be restarted"), and a crashed process comes back with the
# kubelet's back-off: the first restart at once, then 10 s, doubling up to 300 s; a process that
# ran 10 minutes starts the count again (Kubernetes' CrashLoopBackOff).
BACKOFF_LOOP = ('n=0; while :; do s=$(date +%s); "$@"; rc=$?; '
                '[ $(($(date +%s) - s)) -ge 600 ] && n=0; '
                'if [ $n -eq 0 ]; then d=0; elif [ $n -gt 5 ]; then d=300; else d=$((10 << (n - 1))); fi; '
                'n=$((n+1)); echo "lab: exited with $rc, restart $n in ${d}s (kubelet back-off)"; sleep $d; done')
_RESTART_LOOP = 'mount --bind "$0" /etc/hosts || exit 1; ' + BACKOFF_LOOP


_RESOLV = 'mount --bind "$1" /etc/resolv.conf || exit 1; shift; '


def wrap(argv: list[str], hosts_file: Path, restart: bool = False, resolv_file: Path | None = None) -> list[str]:
    """argv run with `hosts_file` as its /etc/hosts (and `resolv_file` as its /etc/resolv.conf);
    with `restart`, restarted whenever it exits."""
    script = _RESTART_LOOP if restart else 'mount --bind "$0" /etc/hosts && exec "$@"'
    files = [str(hosts_file)]
    if resolv_file is not None:
        script = _RESOLV + script
        files.append(str(resolv_file))
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, *files, *argv]
