"""Preflight: the checks a run makes in seconds, before anything is installed. Every problem is
one line: what is wrong and how to fix it. Errors stop the run; warnings are reported
(known upstream defects among them, docs/chart-contract.md).

    python -m vllm_stack_e2e.preflight [--cluster lab|current]      (make preflight)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import config as cfg
from . import editions
from . import checks, defects, scaledobject, tools, values
from .helm import STANDIN_CHART
from .errors import ConfigError, HarnessError, ProvisionError
from .prom import Prometheus, colon_names
from .checks import Finding

# KEDA minor → the Kubernetes minors it supports (docs/keda.md).
KEDA_K8S = {"2.20": (33, 35), "2.19": (32, 34), "2.18": (31, 33), "2.21": (34, 36)}
SCENARIOS = ("scale-to-zero", "hpa-behavior", "fallback")


@dataclass
class Report:
    """What preflight found; `facts` are the versions it read."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    _rendered: dict[tuple[str, ...], list[dict]] = field(default_factory=dict, repr=False)

    def render(self, chart: str | Path, plan: values.ValuesPlan) -> list[dict]:
        """`helm template` of the chart with a plan, once per preflight: several checks read it."""
        key = (str(chart), *map(str, plan.files), repr(plan.sets))  # sets may hold lists: not hashable
        if key not in self._rendered:
            from .helm import Helm

            self._rendered[key] = Helm().template(chart, files=plan.files, sets=plan.sets)
        return self._rendered[key]

    def add(self, severity: str, message: str, fix: str, defect: int | None = None) -> None:
        self.findings.append(Finding(severity, message, fix, defect))

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            if finding not in self.findings:
                self.findings.append(finding)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def lines(self) -> list[str]:
        out = [f"preflight: {key} {value}" for key, value in self.facts.items()]
        out += [f"preflight {f.severity}: {f.message} — {f.fix}"
                + (f" [upstream defect {f.defect}: {defects.get(f.defect).doc}]" if f.defect else "") for f in self.findings]
        return out


# ---- checks that need no cluster ------------------------------------------------------------
def check_tools(report: Report) -> None:
    for name, find in (("helm", tools.helm), ("kubectl", tools.kubectl)):
        try:
            report.facts[name] = str(find())
        except ProvisionError as exc:
            report.add("error", f"{name} is missing: {exc}", f"install {name} or set {name.upper()}=/path/to/{name}")


def value_plans(config: cfg.RunConfig, backend_overlays: list[str], edition: str | None = None
                ) -> dict[str, values.ValuesPlan]:
    """Every values plan a run applies: step 2, step 4, and step 4 + each scenario (of `edition`)."""
    backend = backend_overlays[0] if backend_overlays else None
    plans = {"step 2": values.plan_for(2, config.profile, backend, edition=edition),
             "step 4": values.plan_for(4, config.profile, backend, extra=config.extra_values_for(None),
                                       edition=edition)}
    for scenario in SCENARIOS:
        extra = (*values.with_variant(config.profile, scenario, (), edition), *config.extra_values_for(scenario))
        plans[f"step 4 + {scenario}"] = values.plan_for(4, config.profile, backend, scenario, extra, edition=edition)
    return plans


def check_values(report: Report, config: cfg.RunConfig, backend_overlays: list[str],
                 edition: str | None = None, chart: str | Path = STANDIN_CHART) -> dict[str, values.ValuesPlan]:
    """Every values file parses; the values as written have no known trap; what helm renders from
    each plan (with `chart`, a local directory: the stand-in follows the chart's contract) has no
    ServiceMonitor prometheus-operator would refuse."""
    try:
        plans = value_plans(config, backend_overlays, edition)
    except ConfigError as exc:
        report.add("error", str(exc), "fix the file and run again")
        return {}
    if edition:
        report.extend(check_extra_prometheus(config, editions.get(edition)))
    refused: dict[str, tuple[Finding, list[str]]] = {}  # one line per endpoint, naming every plan with it
    for label, plan in plans.items():
        if label not in ("step 2",):
            report.extend(checks.check_values(values.load_values(plan.base), source=plan.base.name))
        for finding in check_rendered(report, plan, label, chart, config.fix_defects if label != "step 2" else ()):
            source, what = finding.message.split(": ", 1)
            if what in refused:
                refused[what][1].append(label)
            else:
                refused[what] = (finding, [source])
    for what, (finding, where) in refused.items():
        report.add(finding.severity, f"{where[0]}" + (f", also {', '.join(where[1:])}" if where[1:] else "")
                   + f": {what}", finding.fix, finding.defect)
    return plans


def check_extra_prometheus(config: cfg.RunConfig, edition: editions.Edition) -> list[Finding]:
    """EXTRA_VALUES whose triggers name the *other* edition's Prometheus Service (a static overlay
    written for one edition, given in the other): KEDA would query a
    Prometheus the run does not have, and claims would fail for that, not for what they state."""
    own_ns, own = edition.prometheus(config.release, "the release's namespace")
    others = {e.name: e.prometheus(config.release, "")[1] for e in editions.EDITIONS.values()
              if e.name != edition.name}
    findings: list[Finding] = []
    for scope, path in config.extra_values:
        given = Path(path)
        data = values.load_values(given if given.exists() or given.is_absolute() else values.VALUES_DIR / given)
        for spec in ((data.get("servingEngineSpec") or {}).get("modelSpec") or []):
            for trigger in (((spec or {}).get("keda") or {}).get("triggers") or []):
                address = str(((trigger or {}).get("metadata") or {}).get("serverAddress") or "")
                host = defects.server_host(address).split(".")[0]
                for name, service in others.items():
                    if host == service:
                        findings.append(Finding(
                            "error", f"EXTRA_VALUES {Path(path).name}"
                            + (f" (for {scope})" if scope else "") + f" points KEDA at {address}, the {name} "
                            f"edition's Prometheus, but this run follows {edition.name} (its Prometheus is "
                            f"svc/{own} in {own_ns})",
                            f"name svc/{own} in the overlay, or run EDITION={name} (for the aggregated query, "
                            "FIX_DEFECTS=3 writes the fix for the run's edition)"))
    return findings


def check_rendered(report: Report, plan: values.ValuesPlan, label: str, chart: str | Path,
                   fix: tuple[int, ...] = ()) -> list[Finding]:
    """Checks of what helm renders from one plan, with the harness's fixes for `fix` applied as the
    run applies them (last); a plan helm refuses is left to helm's own error, at install."""
    import tempfile

    from . import fixes

    source = f"{label} ({' + '.join(p.name for p in plan.sources)})"
    try:
        if fix:
            with tempfile.TemporaryDirectory(prefix="vse-preflight-") as folder:
                path, _seen = fixes.overlay(plan, fix, chart=str(chart), run=fixes.FixContext("default", "vllm"),
                                            folder=Path(folder), name="preflight")
                if path is not None:
                    plan = values.plan_values([*plan.sources, path], plan.sets)
                    source = f"{label} ({' + '.join(p.name for p in plan.sources[:-1])} + the fix for "
                    source += f"FIX_DEFECTS={','.join(map(str, fix))})"
                documents = report.render(chart, plan)
        else:
            documents = report.render(chart, plan)
    except HarnessError:
        return []
    return checks.check_servicemonitors(documents, source=source)


def check_chart(report: Report, chart_ref: str, plans: dict[str, values.ValuesPlan], local: bool) -> None:
    """`helm lint` with the tutorial's values (local charts; a repo chart is pulled first)."""
    from .helm import Helm

    helm = Helm()
    path = chart_ref
    if not local:
        report.add("info", f"helm lint skipped for {chart_ref}: not a local chart directory",
                   "pull the chart (helm pull --untar) and set VLLM_CHART to lint it")
        return
    for label in ("step 4",):
        plan = plans.get(label)
        if plan is None:
            continue
        result = helm.lint(path, [plan.base])
        for message in result.errors + result.warnings:
            severity = "warning" if message.defect or not result.errors else "error"
            fix = (f"{message.explanation}; {message.fix}" if message.defect
                   else "fix the chart or the values")
            report.add(severity, f"helm lint {Path(path).name} -f {plan.base.name}: {message.path}: {message.message}",
                       fix, message.defect)


def check_gpus(report: Report, allocatable: int, plans: dict[str, values.ValuesPlan], chart: str) -> None:
    """Enough allocatable nvidia.com/gpu for maxReplicaCount × requestGPU of every plan."""
    report.facts["gpus"] = f"{allocatable} allocatable nvidia.com/gpu"
    for label, plan in plans.items():
        if label == "step 2":
            continue
        merged = values.load_values(plan.base)
        spec = ((merged.get("servingEngineSpec") or {}).get("modelSpec") or [{}])[0]
        gpus = int(spec.get("requestGPU") or 0)
        for key, value in plan.sets:
            if key.endswith("requestGPU"):
                gpus = int(value)
        try:
            settings = scaledobject.scaledobjects_from_manifest(report.render(chart, plan))
        except HarnessError:
            continue
        for so in settings:
            need = so.effective_max * gpus
            if need > allocatable:
                severity = "error" if label == "step 4" else "warning"
                report.add(severity, f"{label}: maxReplicaCount {so.effective_max} × requestGPU {gpus} = {need} GPUs, "
                           f"but the cluster has {allocatable} allocatable nvidia.com/gpu",
                           "add GPU nodes, or lower maxReplicaCount in the values")


def check_keda_compat(report: Report, keda_version: str | None, kube_version: str) -> None:
    match = re.match(r"v?1\.(\d+)", kube_version)
    if not keda_version or not match:
        return
    minor = int(match.group(1))
    keda_minor = ".".join(keda_version.lstrip("v").split(".")[:2])
    supported = KEDA_K8S.get(keda_minor)
    report.facts["kubernetes"] = kube_version
    report.facts["keda"] = keda_version
    if supported and not supported[0] <= minor <= supported[1]:
        report.add("warning", f"KEDA {keda_version} supports Kubernetes 1.{supported[0]}–1.{supported[1]}, "
                   f"the cluster runs {kube_version}", "install a KEDA release that supports this Kubernetes")


def check_trigger_metrics(prom: Prometheus, settings: Iterable[scaledobject.KedaSettings]) -> list[Finding]:
    """Once Prometheus holds engine metrics: does each trigger query name the metric in the form
    this Prometheus stores (colon vs underscore, docs/metrics.md), with labels it has?"""
    findings: list[Finding] = []
    for so in settings:
        for index, trigger in enumerate(so.triggers):
            query = trigger.query or ""
            for name in colon_names(query):
                form = prom.name_form(name)
                if form.colons and not form.underscores:
                    continue
                if form.underscores or form.colons:
                    findings.append(Finding("error", f"ScaledObject {so.name} trigger {index}: {form.explanation}",
                                            "query the stored form, or use a Prometheus 3.x (UTF-8 names)",
                                            defect=5))
                else:
                    findings.append(Finding("info", f"ScaledObject {so.name} trigger {index}: Prometheus has no "
                                            f"{name} series yet", "checked again once the engines are scraped"))
            for name, matchers in re.findall(r"(vllm:[a-z_]+)\s*\{([^}]*)\}", query):
                for label, _op, _value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
                    if prom.series(f'{name}{{{label}=~".+"}}') == [] and prom.series(name):
                        findings.append(Finding(
                            "warning", f"ScaledObject {so.name} trigger {index} selects {label}=… on {name}, but "
                            f"no {name} series has a {label} label", "select a label the series carry (model_name)",
                            defect=2 if label == "model" else None))
    return findings


# ---- the whole preflight --------------------------------------------------------------------
def run(config: cfg.RunConfig, backend=None, prom: Prometheus | None = None) -> Report:  # type: ignore[no-untyped-def]
    """All checks possible now. With a started backend, the cluster checks too."""
    report = Report()
    report.facts["backend"] = config.cluster
    report.facts["profile"] = config.profile
    check_tools(report)
    overlays = backend.overlays() if backend is not None else (["lab"] if config.cluster == "lab" else [])
    chart = backend.chart() if backend is not None else None
    # The edition's own values: the one asked for, else the page for the chart (when known yet).
    edition = (editions.choose(config.edition, chart.version, stand_in=chart.stand_in).name if chart is not None
               else config.edition)
    if edition:
        report.facts["edition"] = edition
    local_chart = chart.ref if chart is not None and Path(chart.ref).is_dir() else STANDIN_CHART
    plans = check_values(report, config, overlays, edition, local_chart)
    if report.errors or backend is None or chart is None:
        return report
    report.facts["chart"] = chart.describe()
    check_chart(report, chart.ref, plans, local=Path(chart.ref).is_dir())
    kube_version = backend.kube.server_version()
    report.facts["kubernetes"] = kube_version
    allocatable = sum(int((n.get("status") or {}).get("allocatable", {}).get("nvidia.com/gpu", 0) or 0)
                      for n in backend.kube.list("v1", "Node"))
    check_gpus(report, allocatable, plans, str(local_chart))
    check_keda_compat(report, backend.keda_version() or backend.facts().get("keda"), kube_version)
    if prom is not None:
        settings = scaledobject.scaledobjects_from_manifest(report.render(local_chart, plans["step 4"]))
        report.extend(check_trigger_metrics(prom, settings))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preflight", description="Check a run's inputs and cluster; installs nothing.")
    parser.add_argument("--cluster", default=None)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    try:
        config = cfg.resolve(args.cluster, args.profile)
        backend = None
        if config.cluster == "current":
            from .backends import make_backend

            backend = make_backend(config, echo=lambda _m: None)
            backend.start()
        else:
            from .backends.lab import LabBackend

            lab_backend = LabBackend(config, echo=lambda _m: None)
            lab_backend.lab.preflight()
            if lab_backend.ready():
                backend = lab_backend  # a running lab is checked like any cluster; none is started
        if backend is not None and backend.kube.get("v1", "Service", "prometheus-operated", "monitoring"):
            from . import kubectl as kubectl_cli

            with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, "monitoring", "svc/prometheus-operated",
                                9090) as port:
                report = run(config, backend, Prometheus(f"http://127.0.0.1:{port}"))
        else:
            report = run(config, backend)
    except HarnessError as exc:
        print(f"preflight error: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("preflight error") else sys.stdout)
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
