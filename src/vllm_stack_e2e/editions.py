"""The published editions of "Autoscaling with KEDA" (docs/tutorial.md). The page changes under
us; each edition is pinned here — its values files, the commands it tells the user to type, how
step 1 installs monitoring and where Prometheus is — and a run picks one and says why.

The tests state the page's claims, which stay the same across editions; only step 1's install,
the name of Prometheus and how step 8 removes monitoring differ, and those are read from the
edition's record (`Monitoring`). Every edition runs, on the lab (the stand-in chart stands in for
the monitoring subchart, and its kube-prometheus-stack part for a cluster's own stack) and on a
cluster. Adding an edition is one record below and one folder values/<name>/ with the files it
changes; `make e2e EDITION=<name>`, the drift check and step 1 read it from here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

#: The folder of pinned values; an edition's own files sit in a subfolder named after it.
VALUES_ROOT = Path(__file__).resolve().parents[2] / "values"
# kube-prometheus-stack cuts its fullname (`<release>-kube-prometheus-stack`) to this many characters.
KPS_FULLNAME_LIMIT = 26
KPS_CHART = "kube-prometheus-stack"
#: The page, as the values files' headers and docs/tutorial.md name it.
PAGE_TITLE = "Autoscaling with KEDA"
PAGE_PATH = "use_cases/autoscaling-keda"  # in the vLLM Production Stack docs


@dataclass(frozen=True)
class ExistingStack:
    """A kube-prometheus-stack the user already runs, installed as its own release (the page's note
    under step 1): the run installs one with the chart's defaults when the cluster has none."""

    release: str
    namespace: str
    chart_version: str  # the kube-prometheus-stack chart a cluster gets (the vLLM chart's own subchart's)

    @property
    def prometheus_service(self) -> str:
        """The chart's Prometheus Service: the fullname (here the release, which names the chart) + -prometheus."""
        return f"{kps_fullname(self.release)}-prometheus"


@dataclass(frozen=True)
class Monitoring:
    """How an edition's monitoring comes, where its Prometheus is, and how the page removes it."""

    comes_with_release: bool  # the chart's subchart: up with step 2's install, off with step 8's upgrade
    # "<namespace>/<Service>"; {namespace}: the release's, {kps}: the subchart's fullname; "" with `existing`
    prometheus: str
    removal: str  # step 8: "script" (observability/uninstall.sh), "values:<file>" (an upgrade), "" (left in place)
    existing: ExistingStack | None = None  # the user's own stack, which the page leaves in place
    ledger_name: str = "observability"  # how a run's ledger names what step 1 set up

    @property
    def by_script(self) -> bool:
        """The first edition's way: observability/install.sh before the release, uninstall.sh after."""
        return self.removal == "script"

    def prometheus_at(self, release: str, namespace: str) -> tuple[str, str]:
        if self.existing is not None:
            return self.existing.namespace, self.existing.prometheus_service
        where = self.prometheus.format(namespace=namespace, kps=kps_fullname(release))
        found, service = where.split("/", 1)
        return found, service


@dataclass(frozen=True)
class Edition:
    name: str
    title: str
    charts: str  # the chart versions the page is written for
    first_chart: tuple[int, int, int]  # the first chart version this edition is the page for
    monitoring: Monitoring
    commands: dict[str, str] = field(default_factory=dict)  # role -> the command the page gives
    published: str = ""  # when and how upstream published this page (docs/tutorial.md)
    publication: str = ""  # where upstream publishes it today: the file in production-stack
    commit: str = ""  # the upstream commit the pinned page was read from; empty: not recorded
    based_on: str | None = None  # the edition whose values files this one keeps where it has none of its own
    # How the drift check tells this edition's page (tutorial_diff.guess, in registry order): a command
    # role the page gives, or a pattern a YAML block of it matches; None: not a page of its own.
    recognised_by: tuple[str, str] | None = None
    why: str = ""  # why a run follows it (set by choose())

    @property
    def folders(self) -> tuple[str, ...]:
        """The values folders this edition reads, its own first (values/<name>/, then its base's)."""
        base = EDITIONS[self.based_on].folders if self.based_on else ()
        return (self.name, *base)

    def values_file(self, name: str, root: Path = VALUES_ROOT) -> Path:
        """The edition's own copy of a values file when it has one (or its base's), else the shared one."""
        for folder in self.folders:
            if (root / folder / name).is_file():
                return root / folder / name
        return root / name

    def prometheus(self, release: str, namespace: str) -> tuple[str, str]:
        """(namespace, Service) of the Prometheus the page port-forwards to and KEDA queries."""
        return self.monitoring.prometheus_at(release, namespace)


def kps_fullname(release: str) -> str:
    """kube-prometheus-stack's fullname for a release (the chart's name appended unless the release
    name contains it, cut to 26 characters, a trailing '-' dropped — the stand-in's `kps.fullname`):
    `vllm` → `vllm-kube-prometheus-stack`, `kube-prometheus-stack` → `kube-prometheus-stack`."""
    name = release if KPS_CHART in release else f"{release}-{KPS_CHART}"
    return name[:KPS_FULLNAME_LIMIT].rstrip("-")


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

#: Where upstream publishes the page (production-stack, read at the commit named in each record).
RST_PAGE = "docs/source/use_cases/autoscaling-keda.rst"
MD_PAGE = "tutorials/20-keda-autoscaling.md"
UPSTREAM_HEAD = "a6c01db"  # production-stack's main on 2026-08-05, where both publications were read

EDITIONS: dict[str, Edition] = {e.name: e for e in (
    Edition("observability-script", "first edition: observability/install.sh, prometheus-operated in monitoring",
            "0.1.9–0.1.10", (0, 1, 9),
            Monitoring(comes_with_release=False, prometheus="monitoring/prometheus-operated", removal="script"), {
                **_SHARED_COMMANDS,
                "observability-install": "bash install.sh",
                "prometheus-port-forward": "kubectl port-forward svc/prometheus-operated -n monitoring 9090:9090",
                "observability-uninstall": "bash uninstall.sh",
            }, published="the page as first published, for chart 0.1.9+; replaced on the docs site in June 2026 by "
                         "PR #965",
            publication=f"the repository's {MD_PAGE} (still this edition at {UPSTREAM_HEAD}, beside chart 0.1.12)",
            commit=UPSTREAM_HEAD, recognised_by=("command", "observability-install")),
    Edition("integrated-monitoring", "current edition: the chart's kube-prometheus-stack subchart",
            "≥ 0.1.11", (0, 1, 11),
            Monitoring(comes_with_release=True, prometheus="{namespace}/{kps}-prometheus",
                       removal="values:scenario-monitoring-disabled.yaml", ledger_name="kube-prometheus-stack subchart"),
            {
                **_SHARED_COMMANDS,
                "prometheus-port-forward": "kubectl port-forward svc/vllm-kube-prometheus-stack-prometheus 9090:9090",
            }, published="the page since June 2026 (production-stack PR #965), for chart ≥ 0.1.11",
            publication=f"the docs site's page, {RST_PAGE}", commit=UPSTREAM_HEAD,
            recognised_by=("yaml", r"^kube-prometheus-stack:")),
    Edition("existing-prometheus", "current edition's note under step 1: a kube-prometheus-stack the user already runs",
            "≥ 0.1.11", (0, 1, 11),
            Monitoring(comes_with_release=False, prometheus="", removal="",
                       existing=ExistingStack("kube-prometheus-stack", "prometheus", "82.4.3"),
                       ledger_name="existing kube-prometheus-stack"),
            {
                **_SHARED_COMMANDS,
                "prometheus-port-forward": "kubectl port-forward svc/vllm-kube-prometheus-stack-prometheus 9090:9090",
            }, published="a note under step 1 of the current edition: with a Prometheus stack already on the "
                         "cluster, set kube-prometheus-stack.enabled: false and enable only the serviceMonitor "
                         "resources; \"your existing Prometheus Operator will automatically discover the ServiceMonitors\"",
            publication=f"the note under step 1 of the docs site's page, {RST_PAGE}", commit=UPSTREAM_HEAD,
            based_on="integrated-monitoring"),
)}
DEFAULT = "observability-script"
CURRENT = "integrated-monitoring"


def get(name: str) -> Edition:
    try:
        return EDITIONS[name]
    except KeyError:
        raise ConfigError(f"EDITION={name!r} is not a published edition of the tutorial — choose one of "
                          f"{', '.join(EDITIONS)}") from None


def _version(text: str | None) -> tuple[int, int, int] | None:
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def choose(explicit: str | None, chart_version: str | None, *, stand_in: bool = False) -> Edition:
    """The edition a run follows, its `why` set: the one asked for, else the page published for the
    chart under test (the lab's stand-in, 0.1.12-standin.N, counts as 0.1.12: it stands in for the
    monitoring subchart too). When chosen from the chart, `why` also says that the other
    publication teaches the other edition (upstream publishes the page twice)."""
    if explicit:
        return dataclasses.replace(get(explicit), why="asked for (EDITION)")
    version = _version(chart_version)
    current = EDITIONS[CURRENT]
    if version is not None and version >= current.first_chart:
        chosen, why = current, f"chart {chart_version} ≥ 0.1.11: the page users read today"
    elif version is not None:
        chosen, why = EDITIONS[DEFAULT], f"chart {chart_version} < 0.1.11: the page as first published"
    else:
        chosen, why = EDITIONS[DEFAULT], f"chart version {chart_version or 'unknown'}: the page as first published"
    other = EDITIONS[DEFAULT if chosen is current else CURRENT]
    why += f"; {other.publication} teaches the {other.name} edition (EDITION={other.name})"
    return dataclasses.replace(chosen, why=why)


def describe() -> list[str]:
    """One line per edition: its name, what it is, the charts it is for, where upstream publishes it."""
    return [f"{e.name}: {e.title} (chart {e.charts}); {e.publication or e.published}" for e in EDITIONS.values()]


if __name__ == "__main__":
    print("\n".join(describe()))
