"""Real KEDA on the lab: the operator, metrics API server and admission webhooks built from
KEDA's Go module, run as local processes in the lab's own network namespace, with the
CRDs from the same module version and the in-cluster objects the KEDA chart would create
(Services, APIService `v1beta1.external.metrics.k8s.io`, ValidatingWebhookConfiguration).

kube-apiserver reaches the metrics API server through an `ExternalName` Service whose name
is a loopback address (it dials `https://<externalName>:<port>`), then the relay carries
the connection into KEDA's namespace. KEDA's own cert rotation issues the certificates and
patches the APIService and webhook CA bundles, as in a real install.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml
from tenacity import Retrying, stop_after_delay, wait_fixed

from .. import kube as k
from ..errors import LabError
from . import build, dns, hosts, manifests
from . import paths as p
from .cluster import LabCluster
from .processes import ManagedProcess, ProcessSpec, stop_together

NAMESPACE = "keda"
APISERVICE = "v1beta1.external.metrics.k8s.io"
CERT_SECRET = "kedaorg-certs"
WEBHOOK_CONFIG = "keda-admission"
OPERATOR, ADAPTER, WEBHOOKS, RELAY = "keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks", "keda-netns-relay"
DNS, PROXY = "keda-netns-coredns", "keda-netns-kube-proxy"
PROCESSES = (OPERATOR, ADAPTER, WEBHOOKS, RELAY, DNS, PROXY)
KEDA_LABELS = {"app.kubernetes.io/part-of": "keda-operator", "app.kubernetes.io/instance": "keda",
               "app.kubernetes.io/version": build.KEDA_VERSION}


def netns_name(lab: str) -> str:
    return f"{lab}-keda"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()} — the lab needs root and iproute2 "
                       "to give KEDA its own network namespace")
    return proc


def _objects(lab: str) -> list[k.Obj]:
    def face(name: str, ports: list[int]) -> k.Obj:
        return manifests.process_face(lab, NAMESPACE, name, f"ghcr.io/kedacore/{name}:{build.KEDA_VERSION}",
                                      {"app": name, "app.kubernetes.io/name": name, **KEDA_LABELS}, ports)

    services = [
        manifests.service(lab, NAMESPACE, OPERATOR, [("metricsservice", p.KEDA_GRPC_PORT, p.KEDA_GRPC_PORT)],
                          external_name=p.KEDA_OPERATOR_ADDR, labels={"app": OPERATOR}),
        manifests.service(lab, NAMESPACE, ADAPTER, [("https", p.KEDA_ADAPTER_PORT, p.KEDA_ADAPTER_PORT)],
                          external_name=p.KEDA_ADAPTER_ADDR, labels={"app": ADAPTER}),
        manifests.service(lab, NAMESPACE, WEBHOOKS, [("https", p.KEDA_WEBHOOKS_PORT, p.KEDA_WEBHOOKS_PORT)],
                          external_name=p.KEDA_WEBHOOKS_ADDR, labels={"app": WEBHOOKS}),
    ]
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": APISERVICE, "labels": {manifests.LAB_LABEL: lab, **KEDA_LABELS}},
        "spec": {"service": {"name": ADAPTER, "namespace": NAMESPACE, "port": p.KEDA_ADAPTER_PORT},
                 "group": "external.metrics.k8s.io", "version": "v1beta1",
                 "groupPriorityMinimum": 100, "versionPriority": 100},
    }
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG, "labels": {manifests.LAB_LABEL: lab, **KEDA_LABELS}},
        "webhooks": [{
            "name": "vscaledobject.kb.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "matchPolicy": "Equivalent", "timeoutSeconds": 10,
            "clientConfig": {"service": {"name": WEBHOOKS, "namespace": NAMESPACE, "port": p.KEDA_WEBHOOKS_PORT,
                                         "path": "/validate-keda-sh-v1alpha1-scaledobject"}},
            "rules": [{"apiGroups": ["keda.sh"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["scaledobjects"]}],
        }],
    }
    faces = [face(OPERATOR, [p.KEDA_GRPC_PORT]), face(ADAPTER, [p.KEDA_ADAPTER_PORT]),
             face(WEBHOOKS, [p.KEDA_WEBHOOKS_PORT])]
    return [manifests.namespace(lab, NAMESPACE), *services, apiservice, webhook, *faces]


class LabKeda:
    """Install / uninstall KEDA on a running lab."""

    def __init__(self, cluster: LabCluster) -> None:
        self.cluster = cluster
        self.paths = cluster.paths
        self.echo = cluster.echo

    def _process(self, name: str, argv: list[str] | None = None, env: dict[str, str] | None = None) -> ManagedProcess:
        spec = ProcessSpec(name=name, argv=argv or [], log=self.paths.log(name), env=env or {})
        return ManagedProcess(spec, self.paths.pidfile(name))

    def _in_netns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", netns_name(self.cluster.name),
                *hosts.wrap(argv, self.paths.hosts, restart=True, resolv_file=self.paths.keda_resolv_conf)]

    def _apiserver(self) -> tuple[str, int]:
        server = yaml.safe_load(self.paths.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        url = urlparse(server)
        return url.hostname or "127.0.0.1", url.port or 443

    def installed(self) -> bool:
        return self.cluster.installed("keda")

    def up(self, budget: float = 120) -> None:
        """Install KEDA: CRDs, in-cluster objects, network namespace, relay, the three processes."""
        started = time.monotonic()
        bins = build.ensure("keda")
        kube = self.cluster.kube
        kube.wait_not_terminating(NAMESPACE)
        for crd_file in build.keda_crds():
            crd = yaml.safe_load(crd_file.read_text())
            crd["metadata"].setdefault("labels", {})[manifests.LAB_LABEL] = self.cluster.name
            kube.apply(crd)
        for crd_file in build.keda_crds():
            name = yaml.safe_load(crd_file.read_text())["metadata"]["name"]
            kube.wait_for(*k.CRD, name, None, k.has_condition("Established"), 30,
                          f"CRD {name} Established")
        kube.apply_all(_objects(self.cluster.name))

        ns = netns_name(self.cluster.name)
        if _ip("netns", "list", check=False).stdout.split().count(ns) == 0:
            _ip("netns", "add", ns)
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        hosts.write(self.paths.hosts)
        self.paths.keda_resolv_conf.write_text(dns.resolv_conf(NAMESPACE))
        api_host, api_port = self._apiserver()
        python = os.environ.get("PYTHON", _python())
        relay = self._process(RELAY, [
            python, "-m", "vllm_stack_e2e.lab.nsrelay", "--netns", f"/run/netns/{ns}",
            "--in", f"{p.KEDA_ADAPTER_ADDR}:{p.KEDA_ADAPTER_PORT}", "--in", f"{p.KEDA_WEBHOOKS_ADDR}:{p.KEDA_WEBHOOKS_PORT}",
            "--in", f"{p.KEDA_OPERATOR_ADDR}:{p.KEDA_METRICS_PORT}",  # the operator's metrics, for Prometheus
            "--out", f"{api_host}:{api_port}",
        ])
        relay.start()
        self._start_cluster_dns(ns, budget=30)

        certs = self.paths.keda_certs
        certs.mkdir(parents=True, exist_ok=True)
        env = {"KUBECONFIG": str(self.paths.kubeconfig), "WATCH_NAMESPACE": "", "POD_NAMESPACE": NAMESPACE,
               "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE, "OPERATOR_NAME": OPERATOR,
               "KEDA_HTTP_DEFAULT_TIMEOUT": "3000", "KEDA_HTTP_MIN_TLS_VERSION": "TLS12"}
        operator = self._process(OPERATOR, self._in_netns([
            str(bins["keda-operator"]), "--leader-elect=false", "--zap-log-level=info", "--zap-encoder=console",
            "--zap-time-encoding=rfc3339", "--disable-compression=true",
            f"--cert-dir={certs}", "--enable-cert-rotation=true", f"--cert-secret-name={CERT_SECRET}",
            f"--operator-service-name={OPERATOR}", f"--metrics-server-service-name={ADAPTER}",
            f"--webhooks-service-name={WEBHOOKS}", "--k8s-cluster-name=kubernetes-default",
            "--k8s-cluster-domain=cluster.local", "--enable-webhook-patching=true",
            f"--metrics-bind-address={p.KEDA_OPERATOR_ADDR}:{p.KEDA_METRICS_PORT}",
            f"--health-probe-bind-address={p.KEDA_OPERATOR_ADDR}:8081",
            f"--metrics-service-bind-address={p.KEDA_OPERATOR_ADDR}:{p.KEDA_GRPC_PORT}",
            f"--ca-dir={certs / 'custom-ca'}",
        ]), {**env, "POD_NAME": f"{OPERATOR}-lab"})
        operator.start()
        self._mount_cert_secret(operator, budget=60)

        kubeconfig = str(self.paths.kubeconfig)
        adapter = self._process(ADAPTER, self._in_netns([
            str(bins["keda-adapter"]), f"--secure-port={p.KEDA_ADAPTER_PORT}", f"--bind-address={p.KEDA_ADAPTER_ADDR}",
            "--port=8090", "--logtostderr=true", "--v=0",
            f"--metrics-service-address={OPERATOR}.{NAMESPACE}.svc.cluster.local:{p.KEDA_GRPC_PORT}",
            f"--tls-cert-file={certs / 'tls.crt'}", f"--tls-private-key-file={certs / 'tls.key'}", f"--cert-dir={certs}",
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", f"--lister-kubeconfig={kubeconfig}",
        ]), {**env, "POD_NAME": f"{ADAPTER}-lab"})
        webhooks = self._process(WEBHOOKS, self._in_netns([
            str(bins["keda-admission-webhooks"]), "--zap-log-level=info", "--zap-encoder=console",
            "--zap-time-encoding=rfc3339", f"--cert-dir={certs}", f"--port={p.KEDA_WEBHOOKS_PORT}",
            f"--health-probe-bind-address={p.KEDA_WEBHOOKS_ADDR}:8081",
            f"--metrics-bind-address={p.KEDA_WEBHOOKS_ADDR}:8080", f"--kubeconfig={kubeconfig}",
        ]), {**env, "POD_NAME": f"{WEBHOOKS}-lab"})
        adapter.start()
        webhooks.start()
        remaining = max(10.0, budget - (time.monotonic() - started))
        try:
            kube.wait_for(*k.APISERVICE, APISERVICE, None, k.has_condition("Available"), remaining,
                          f"APIService {APISERVICE} Available")
            # KEDA's cert rotation may issue the secret twice at first start: keep projecting it
            # (the adapter reloads its certificate files) until the metrics API really answers.
            retryer = Retrying(stop=stop_after_delay(max(10.0, budget - (time.monotonic() - started))),
                               wait=wait_fixed(0.5), reraise=True)
            for attempt in retryer:
                with attempt:
                    project_cert_secret(kube, self.paths.keda_certs)
                    kube.raw("/apis/external.metrics.k8s.io/v1beta1")
        except Exception as exc:
            tails = "; ".join(f"{proc.spec.name}: {proc.log_tail(3)!r}" for proc in (operator, adapter, relay)
                              if not proc.alive())
            raise LabError(f"KEDA did not become ready: {exc}" + (f" (exited: {tails})" if tails else "")) from exc
        self.cluster.mark("keda", True, {"version": build.KEDA_VERSION})
        self.echo(f"KEDA {build.KEDA_VERSION} up in {time.monotonic() - started:.1f}s "
                  f"(APIService {APISERVICE} Available)")

    def _start_cluster_dns(self, ns: str, budget: float) -> None:
        """CoreDNS and the ClusterIP proxy for KEDA's namespace (lab/dns.py, lab/kubeproxy.py)."""
        corefile = self.paths.root / "Corefile"
        corefile.write_text(dns.corefile(self.paths.kubeconfig))
        coredns = build.ensure("coredns")["coredns"]
        self._process(DNS, ["ip", "netns", "exec", ns, str(coredns), "-conf", str(corefile)]).start()
        self._process(PROXY, [os.environ.get("PYTHON", _python()), "-m", "vllm_stack_e2e.lab.kubeproxy",
                              "--netns", f"/run/netns/{ns}", "--kubeconfig", str(self.paths.kubeconfig)]).start()
        ready = ["ip", "netns", "exec", ns, os.environ.get("PYTHON", _python()), "-c",
                 f"import urllib.request; urllib.request.urlopen('http://{p.DNS_ADDR}:8181/ready', timeout=2)"]
        for attempt in Retrying(stop=stop_after_delay(budget), wait=wait_fixed(0.5), reraise=True):
            with attempt:
                subprocess.run(ready, capture_output=True, check=True)

    def _mount_cert_secret(self, operator: ManagedProcess, budget: float) -> None:
        """Do what a kubelet does for KEDA's pods: project Secret `kedaorg-certs` into the cert dir."""
        kube = self.cluster.kube

        def check(secret: k.Obj | None) -> bool:
            if not operator.alive():  # the restart loop itself died
                raise LabError(f"{OPERATOR} exited (log {operator.spec.log}): {operator.log_tail(5)}")
            return bool(secret and {"ca.crt", "tls.crt", "tls.key"} <= set((secret.get("data") or {})))

        secret = kube.wait_for("v1", "Secret", CERT_SECRET, NAMESPACE, check, budget,
                               f"KEDA operator issues Secret {NAMESPACE}/{CERT_SECRET}",
                               hint=f"see {operator.spec.log}")
        assert secret is not None
        project_cert_secret(kube, self.paths.keda_certs, secret)

    def down(self, wait: bool = True) -> None:
        """Uninstall KEDA from the lab: processes, in-cluster objects, CRDs, namespace. With
        `wait` False the namespace is left to the namespace controller (a caller that waits for
        several deletions at once); a later up() waits for it first.

        As `helm uninstall keda` does, the release's Deployments go first (their pods with them), then
        the namespace — asked for before the processes stop: kube-controller-manager's namespace
        controller holds every namespace deletion 5 s before it starts (`namespaceDeletionGracePeriod`,
        for HA API servers to see it), and a pod still there then defers it by half its grace period
        again. The processes stop side by side."""
        kube = self.cluster.kube
        kube.delete(*k.APISERVICE, APISERVICE)
        kube.delete("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", WEBHOOK_CONFIG)
        for deployment in (OPERATOR, ADAPTER, WEBHOOKS):
            kube.delete(*k.DEPLOYMENT, deployment, NAMESPACE)
        deleting = kube.delete(*k.NAMESPACE, NAMESPACE)
        stop_together([self._process(name) for name in (WEBHOOKS, ADAPTER, OPERATOR, PROXY, DNS, RELAY)])
        for crd_file in build.keda_crds():
            kube.delete(*k.CRD, yaml.safe_load(crd_file.read_text())["metadata"]["name"])
        if deleting and wait:
            kube.wait_gone(*k.NAMESPACE, NAMESPACE, None, budget=120)
        ns = netns_name(self.cluster.name)
        if ns in _ip("netns", "list", check=False).stdout.split():
            _ip("netns", "del", ns, check=False)
        self.cluster.mark("keda", False)

    def resolve(self, name: str) -> list[str]:
        """What `name` resolves to for KEDA's processes (their network namespace and resolv.conf)."""
        return dns.resolve_from(netns_name(self.cluster.name), self.paths.keda_resolv_conf, name)

    def processes(self) -> dict[str, ManagedProcess]:
        return {name: self._process(name) for name in PROCESSES}

    def crash(self, name: str) -> int:
        """SIGKILL the KEDA binary `name` (OPERATOR, ADAPTER, WEBHOOKS) runs, as a crash would: its
        restart loop (hosts.BACKOFF_LOOP) starts it again with a kubelet's back-off. Returns the
        PID killed — the loop's child, found by the loop's own PID, never by name."""
        process = ManagedProcess.from_pidfile(self.paths.pidfile(name))
        loop = process.pid
        if loop is None:
            raise LabError(f"{name} is not running on lab {self.cluster.name} (see {self.paths.log(name)})")
        try:
            children = [int(c) for c in Path(f"/proc/{loop}/task/{loop}/children").read_text().split()]
        except OSError as exc:
            raise LabError(f"{name}: cannot read its restart loop's children (pid {loop}): {exc}") from exc
        # The command, not the loop's own helpers (`date`, the back-off's `sleep`): the child whose
        # command line is the tail of the loop's.
        children = [c for c in children if _is_tail(_cmdline(c), process.spec.argv)]
        if not children:
            raise LabError(f"{name}: its restart loop (pid {loop}) runs no process right now (it is backing off)")
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children[0]

    def running(self) -> bool:
        """Every KEDA process of this lab (operator, metrics server, webhooks, relay) is alive."""
        return all(proc.alive() for proc in self.processes().values())


def project_cert_secret(kube: k.Kube, folder: Path, secret: k.Obj | None = None) -> bool:
    """Write Secret keda/kedaorg-certs into `folder` as a kubelet keeps a secret volume in sync;
    True when a file changed."""
    secret = secret or kube.get("v1", "Secret", CERT_SECRET, NAMESPACE)
    if not secret or not secret.get("data"):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    changed = False
    for key, value in secret["data"].items():
        content = base64.b64decode(value)
        target = folder / key
        if not target.exists() or target.read_bytes() != content:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(content)
            tmp.chmod(0o600)
            tmp.replace(target)
            changed = True
    return changed


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _is_tail(part: list[str], whole: list[str]) -> bool:
    return bool(part) and len(part) <= len(whole) and whole[-len(part):] == part


def _python() -> str:
    import sys

    return sys.executable
