"""Cluster DNS for KEDA's network namespace: CoreDNS (built from its module, lab/build.py) with
the kubernetes plugin against the lab's API server, and the resolv.conf a kubelet writes for a
pod in namespace `keda` (dnsPolicy ClusterFirst).

So a trigger's serverAddress resolves from KEDA exactly as from a pod there: a Service's FQDN
and `svc.ns.svc` work, `svc.ns` works through the search path, a bare `svc` only when the
Service is in `keda` — and a Service created after KEDA started resolves at once (the plugin
watches Services; no cache plugin). kubeproxy.py then serves the ClusterIP the answer names.
"""

from __future__ import annotations

from pathlib import Path

from . import paths as p

CLUSTER_DOMAIN = "cluster.local"
NDOTS = 5


def search_path(namespace: str) -> list[str]:
    return [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]


def resolv_conf(namespace: str, nameserver: str = p.DNS_ADDR) -> str:
    """A ClusterFirst pod's /etc/resolv.conf in `namespace`."""
    return (f"search {' '.join(search_path(namespace))}\n"
            f"nameserver {nameserver}\n"
            f"options ndots:{NDOTS}\n")


def corefile(kubeconfig: Path, address: str = p.DNS_ADDR) -> str:
    """The kubeadm-style Corefile, less what a lab has no use for (caching, metrics): the
    kubernetes plugin answers for the cluster's zones. A cluster forwards every other name to
    its upstream resolver, which answers NXDOMAIN for a bare Service name; the lab has no
    upstream, so its root zone answers NXDOMAIN itself — a resolver sees "no such host", as on a
    cluster. It listens on port 53 of KEDA's network namespace, where nothing else lives."""
    return (
        f"{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{\n"
        "    errors\n"
        f"    health {address}:8080\n"
        f"    ready {address}:8181\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {kubeconfig}\n"
        "        pods insecure\n"
        "        ttl 5\n"
        "    }\n"
        "}\n"
        ".:53 {\n"
        "    errors\n"
        "    template ANY ANY {\n"
        "        rcode NXDOMAIN\n"
        "    }\n"
        "}\n"
    )


def resolve_from(netns: str, resolv_file: Path, name: str) -> list[str]:
    """The IPv4 addresses `name` resolves to for a process in network namespace `netns` whose
    /etc/resolv.conf is `resolv_file` (glibc's resolver, which reads search/ndots as Go's does);
    [] when it does not resolve."""
    import subprocess

    script = 'mount --bind "$0" /etc/resolv.conf && exec getent ahostsv4 "$1"'
    proc = subprocess.run(["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
                           "sh", "-c", script, str(resolv_file), name],
                          capture_output=True, text=True, timeout=20, check=False)
    return sorted({line.split()[0] for line in proc.stdout.splitlines() if line.strip()})
