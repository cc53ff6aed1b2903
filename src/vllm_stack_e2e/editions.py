"""The published editions of "Autoscaling with KEDA" (docs/tutorial.md). The page changes under
us; each edition is pinned here — its values files, the commands it tells the user to type, how
step 1 installs monitoring and where Prometheus is — and a run picks one and says why.

The tests state the page's claims, which stay the same across editions; only step 1's install
and the name of Prometheus differ, and those are read from the edition. Both editions run, on
the lab (the stand-in chart stands in for the monitoring subchart too) and on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

#: The folder of pinned values; an edition's own files sit in a subfolder named after it.
VALUES_ROOT = Path(__file__).resolve().parents[2] / "values"
# kube-prometheus-stack cuts its fullname (`<release>-kube-prometheus-stack`) to this many characters.
KPS_FULLNAME_LIMIT = 26
#: The page, as the values files' headers and docs/tutorial.md name it.
PAGE_TITLE = "Autoscaling with KEDA"
PAGE_PATH = "use_cases/autoscaling-keda"  # in the vLLM Production Stack docs


@dataclass(frozen=True)
class Edition:
    name: str
    title: str
    charts: str  # the chart versions the page is written for
    first_chart: tuple[int, int, int]  # the first chart version this edition is the page for
    monitoring: str  # "script": observability/install.sh; "subchart": the chart's kube-prometheus-stack
    commands: dict[str, str] = field(default_factory=dict)  # role -> the command the page gives
    published: str = ""  # when and how upstream published this page (docs/tutorial.md)
    commit: str = ""  # the upstream commit the pinned page was read from; empty: not recorded

    def values_file(self, name: str, root: Path = VALUES_ROOT) -> Path:
        """The edition's own copy of a values file when it has one, else the shared one."""
        own = root / self.name / name
        return own if own.is_file() else root / name

    def prometheus(self, release: str, namespace: str) -> tuple[str, str]:
        """(namespace, Service) of the Prometheus the page port-forwards to and KEDA queries."""
        if self.monitoring == "script":
            return "monitoring", "prometheus-operated"
        return namespace, f"{kps_fullname(release)}-prometheus"


def kps_fullname(release: str) -> str:
    """kube-prometheus-stack's fullname for a release (the subchart's name appended, cut to 26
    characters, a trailing '-' dropped): `vllm` → `vllm-kube-prometheus-stack`."""
    return f"{release}-kube-prometheus-stack"[:KPS_FULLNAME_LIMIT].rstrip("-")


_SHARED_COMMANDS = {
    "keda-namespace": "kubectl create namespace keda",
    "keda-install": "helm install keda kedacore/keda --namespace keda",
    "vllm-install": "helm install vllm vllm/vllm-stack -f values.yaml",
    "vllm-upgrade": "helm upgrade vllm vllm/vllm-stack -f values.yaml",
    "router-port-forward": "kubectl port-forward svc/vllm-router-service 30080:80",
    "load-generator": "python3 tutorials/assets/example-10-load-generator.py --num-requests 100 --prompt-len 3000",
    "keda-uninstall": "helm uninstall keda -n keda",
    "keda-namespace-delete": "kubectl delete namespace keda",
}

EDITIONS: dict[str, Edition] = {e.name: e for e in (
    Edition("observability-script", "first edition: observability/install.sh, prometheus-operated in monitoring",
            "0.1.9–0.1.10", (0, 1, 9), "script", {
                **_SHARED_COMMANDS,
                "observability-install": "bash install.sh",
                "prometheus-port-forward": "kubectl port-forward svc/prometheus-operated -n monitoring 9090:9090",
                "observability-uninstall": "bash uninstall.sh",
            }, published="the page as first published, for chart 0.1.9+; replaced in June 2026 by PR #965"),
    Edition("integrated-monitoring", "current edition: the chart's kube-prometheus-stack subchart",
            "≥ 0.1.11", (0, 1, 11), "subchart", {
                **_SHARED_COMMANDS,
                "prometheus-port-forward": "kubectl port-forward svc/vllm-kube-prometheus-stack-prometheus 9090:9090",
            }, published="the page since June 2026 (production-stack PR #965), for chart ≥ 0.1.11"),
)}
DEFAULT = "observability-script"


def get(name: str) -> Edition:
    try:
        return EDITIONS[name]
    except KeyError:
        raise ConfigError(f"EDITION={name!r} is not a published edition of the tutorial — choose one of "
                          f"{', '.join(EDITIONS)}") from None


def _version(text: str | None) -> tuple[int, int, int] | None:
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def choose(explicit: str | None, chart_version: str | None, *, stand_in: bool = False) -> tuple[Edition, str]:
    """The edition a run follows and why: the one asked for, else the page published for the
    chart under test (the lab's stand-in, 0.1.12-standin.N, counts as 0.1.12: it stands in for the
    monitoring subchart too)."""
    if explicit:
        return get(explicit), "asked for (EDITION)"
    version = _version(chart_version)
    current = EDITIONS["integrated-monitoring"]
    if version is not None and version >= current.first_chart:
        return current, f"chart {chart_version} ≥ 0.1.11: the page users read today"
    if version is not None:
        return EDITIONS[DEFAULT], f"chart {chart_version} < 0.1.11: the page as first published"
    return EDITIONS[DEFAULT], f"chart version {chart_version or 'unknown'}: the page as first published"
