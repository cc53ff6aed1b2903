"""The lab resolves names for KEDA as cluster DNS resolves them for a pod in namespace `keda`
(lab/dns.py: CoreDNS with the kubernetes plugin, the pod's search path and ndots 5;
lab/kubeproxy.py: the Service's ClusterIP reaches its endpoints). So a trigger's serverAddress
works on the lab exactly when it would on a cluster — the current edition's short name included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _lab import with_observability_and_keda

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import waits
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.floors import MARGIN
from vllm_stack_e2e.lab.manifests import LAB_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.lab]
PROBE = "dns-probe"
FORMS = ("{svc}.{ns}.svc.cluster.local", "{svc}.{ns}.svc", "{svc}.{ns}")


def _service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": 9090}]}}


@pytest.fixture(scope="module")
def dns(backend: Any, run_config: Any) -> Iterator[dict[str, Any]]:
    """KEDA (installed here when absent, removed after), then — after KEDA started — a namespace
    with Service dns-probe, and Service dns-probe-keda in keda."""
    if not isinstance(backend, LabBackend):
        pytest.skip("the lab's DNS is the lab backend's (CLUSTER=lab)")
    kube, ns = backend.kube, f"vse-dns-{run_config.run_id.lower()}"[:63]
    with with_observability_and_keda(backend):
        try:
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "dns"}}})
            probe = kube.apply(_service(PROBE, ns))
            in_keda = kube.apply(_service(f"{PROBE}-keda", "keda"))
            resolve = backend.lab.keda.resolve
            # CoreDNS learns a new Service from its watch of the API, as on a cluster: each name is
            # read until it answers or the margin passes (what it answered is the observation).
            looked: dict[str, waits.Seen[list[str]]] = {}
            for name, ip in [(form.format(svc=PROBE, ns=ns), probe["spec"]["clusterIP"]) for form in FORMS] + \
                    [(f"{PROBE}-keda", in_keda["spec"]["clusterIP"])]:
                looked[name] = waits.until(waits.polling(lambda name=name: resolve(name), 0.25),
                                           lambda ips, ip=ip: ips == [ip], MARGIN, f"{name} resolves from keda",
                                           show=lambda ips: str(ips))
            yield {"ns": ns, "ip": probe["spec"]["clusterIP"], "keda_ip": in_keda["spec"]["clusterIP"],
                   "resolve": resolve, "looked": looked}
        finally:
            kube.delete(*k.SERVICE, f"{PROBE}-keda", "keda")
            if kube.delete(*k.NAMESPACE, ns):
                kube.wait_gone(*k.NAMESPACE, ns, None, budget=120)


@pytest.mark.parametrize("form", FORMS)
def test_a_service_resolves_from_keda_by_its_namespaced_names(dns: dict[str, Any], form: str) -> None:
    """Also proves a Service created after KEDA started resolves, without restarting KEDA."""
    seen = dns["looked"][form.format(svc=PROBE, ns=dns["ns"])]
    assert seen.reached, seen.explain()


def test_a_short_name_from_another_namespace_does_not_resolve_from_keda(dns: dict[str, Any]) -> None:
    """Read after the namespaced names resolved: CoreDNS knows the Service by then."""
    assert dns["resolve"](PROBE) == [], f"{PROBE} (Service in {dns['ns']}) must not resolve from namespace keda"


def test_a_short_name_resolves_in_kedas_own_namespace(dns: dict[str, Any]) -> None:
    seen = dns["looked"][f"{PROBE}-keda"]
    assert seen.reached, seen.explain()


def test_the_clusterip_reaches_the_service_from_keda(dns: dict[str, Any], backend: Any) -> None:
    """The first edition's address, through CoreDNS and the ClusterIP: Prometheus answers."""
    import subprocess
    import sys

    from vllm_stack_e2e.lab.keda import netns_name

    # The request must come from KEDA's network namespace, so not from this process's client.
    lab = backend.lab
    script = ('mount --bind "$0" /etc/resolv.conf && exec "$1" -c "import urllib.request,sys; '
              'print(urllib.request.urlopen(sys.argv[1], timeout=5).status)" "$2"')
    proc = subprocess.run(["ip", "netns", "exec", netns_name(lab.name), "unshare", "--mount", "--propagation",
                           "private", "sh", "-c", script, str(lab.paths.keda_resolv_conf), sys.executable,
                           "http://prometheus-operated.monitoring.svc:9090/-/ready"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.stdout.strip() == "200", f"GET /-/ready from KEDA's namespace: {proc.stdout.strip()} {proc.stderr.strip()[-300:]}"
