"""The kubelet's part for the current edition's monitoring pods: the Prometheus Operator's pod
and the Prometheus pods the operator creates (docs/lab.md, "Monitoring through the chart").

- The operator pod (image `…/prometheus-operator`) runs the operator built from its module
  (lab/build.py), against the lab's API server with the lab's client credentials (the operator
  takes `--apiserver` and certificate files, not a kubeconfig), its web port on the pod's
  loopback twin. It generates Prometheus's configuration from the Prometheus object and the
  ServiceMonitors it selects, into Secret `prometheus-<name>` (`prometheus.yaml.gz`).
- A Prometheus pod (label `app.kubernetes.io/managed-by=prometheus-operator`,
  `app.kubernetes.io/name=prometheus`) runs the lab's Prometheus with that configuration, kept in
  sync as the config-reloader sidecar keeps it (rewritten and reloaded when the Secret changes).
  Two changes make the generated configuration work on the lab, and only these: Kubernetes
  discovery reads the lab's API server through its kubeconfig (not the in-cluster account), and
  a target's pod IP is dialled on its loopback twin (10.244.b.c → 127.244.b.c, the `instance`
  label keeps the pod IP). Selection — which ServiceMonitors, which Services, which port — is
  the operator's and Prometheus's own.
"""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path
from typing import Any

import yaml

from .paths import KEDA_SCRAPE_JOB, keda_scrape_job

Obj = dict[str, Any]
OPERATOR_IMAGE = "prometheus-operator/prometheus-operator"
OPERATOR_PORT = 8080
PROMETHEUS_PORT = 9090
CONFIG_KEY = "prometheus.yaml.gz"
#: Operator flags a pod may set that mean the same for a local process.
OPERATOR_PASSTHROUGH = ("--namespaces", "--deny-namespaces", "--prometheus-instance-namespaces",
                        "--prometheus-instance-selector", "--controller-id", "--cluster-domain",
                        "--secret-field-selector", "--localhost", "--kubelet-service")


def _labels(pod: Obj) -> dict[str, str]:
    return pod.get("metadata", {}).get("labels") or {}


def is_operator(pod: Obj) -> bool:
    return any(OPERATOR_IMAGE in (c.get("image") or "") for c in pod["spec"].get("containers") or [])


def is_prometheus(pod: Obj) -> bool:
    labels = _labels(pod)
    return labels.get("app.kubernetes.io/managed-by") == "prometheus-operator" and \
        labels.get("app.kubernetes.io/name") == "prometheus"


def container(pod: Obj, name: str) -> Obj:
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == name:
            return c
    return pod["spec"]["containers"][0]


def operator_args(pod: Obj) -> list[str]:
    """The pod's operator flags that keep their meaning for a local process."""
    c = pod["spec"]["containers"][0]
    return [a for a in list(c.get("args") or []) if a.split("=", 1)[0] in OPERATOR_PASSTHROUGH]


def api_credentials(kubeconfig: Path, folder: Path) -> list[str]:
    """`--apiserver` and certificate flags for the operator from a kubeconfig's first cluster and
    user (file references kept, inline data written to `folder`, mode 600)."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    folder.mkdir(parents=True, exist_ok=True)

    def file_of(key: str, name: str, where: dict) -> str | None:
        if where.get(f"{key}-data"):
            path = folder / name
            path.write_bytes(base64.b64decode(where[f"{key}-data"]))
            path.chmod(0o600)
            return str(path)
        return where.get(key)

    flags = [f"--apiserver={cluster['server']}"]
    for flag, key, name, where in (("--ca-file", "certificate-authority", "ca.crt", cluster),
                                   ("--cert-file", "client-certificate", "client.crt", user),
                                   ("--key-file", "client-key", "client.key", user)):
        path = file_of(key, name, where)
        if path:
            flags.append(f"{flag}={path}")
    if cluster.get("insecure-skip-tls-verify"):
        flags.append("--tls-insecure")
    return flags


def config_secret(pod: Obj) -> str | None:
    """The Secret the pod's `config` volume mounts (the operator's generated configuration)."""
    for volume in pod["spec"].get("volumes") or []:
        if volume.get("name") == "config" and volume.get("secret"):
            return volume["secret"].get("secretName")
    return None


_ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_POD_IP = r"10\.244\.(\d+)\.(\d+):(\d+)"


def lab_config(secret: Obj, kubeconfig: Path, env: dict[str, str]) -> str:
    """Prometheus's configuration from the operator's Secret, as it runs on the lab (see module doc)."""
    data = (secret.get("data") or {}).get(CONFIG_KEY)
    if not data:
        raise ValueError(f"Secret {secret['metadata']['name']} has no {CONFIG_KEY} yet")
    text = gzip.decompress(base64.b64decode(data)).decode()
    text = _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)  # what the config-reloader expands
    config = yaml.safe_load(text) or {}
    for job in config.get("scrape_configs") or []:
        for sd in job.get("kubernetes_sd_configs") or []:
            for key in ("api_server", "authorization", "bearer_token_file", "tls_config"):
                sd.pop(key, None)
            sd["kubeconfig_file"] = str(kubeconfig)
        job["relabel_configs"] = list(job.get("relabel_configs") or []) + [
            {"source_labels": ["instance", "__address__"], "separator": ";", "regex": ";(.+)",
             "target_label": "instance", "replacement": "$1", "action": "replace"},
            {"source_labels": ["__address__"], "regex": _POD_IP, "target_label": "__address__",
             "replacement": "127.244.$1.$2:$3", "action": "replace"},
        ]
    config.pop("alerting", None)  # no Alertmanager on the lab
    # The lab's KEDA runs outside the cluster: its metrics are scraped as a static job, the lab's
    # stand-in for KEDA's own ServiceMonitor (docs/beyond.md, "KEDA's own evidence").
    jobs = config.setdefault("scrape_configs", []) or []
    if not any(job.get("job_name") == KEDA_SCRAPE_JOB for job in jobs):
        jobs.append(keda_scrape_job())
    config["scrape_configs"] = jobs
    return yaml.safe_dump(config, sort_keys=False)
