"""Checks of values and ScaledObjects before anything is installed: what will keep the tutorial's
configuration from scaling as the page says (the known upstream defects among them,
docs/upstream-defects.md), each as a Finding with the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


from .defects import is_aggregated, selects_model_label

from . import defects
from .scaledobject import KedaSettings, keda_from_values

# --------------------------------------------------------------------------------------------
# checks


@dataclass(frozen=True)
class Finding:
    """Something about a configuration worth telling the user, with what to do about it."""

    severity: str  # "error": cannot work as the tutorial says; "warning": likely not; "info"
    message: str
    fix: str
    defect: int | None = None  # docs/chart-contract.md defect number, when it is one of those

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} — {self.fix}"


def check_keda(
    settings: KedaSettings,
    *,
    model_url: str | None = None,
    bundled_prometheus_release: str | None = None,
) -> list[Finding]:
    """What will keep this ScaledObject from scaling as the tutorial says (docs/chart-contract.md
    defects 2-4 and KEDA's required fields). `model_url` improves the fix for defect 2;
    `bundled_prometheus_release` (the chart's kube-prometheus-stack subchart is enabled in that
    release) enables the check for defect 4."""
    findings: list[Finding] = []
    where = f"ScaledObject {settings.name}"
    if not settings.triggers:
        findings.append(Finding("error", f"{where} has no triggers", "add at least one trigger (KEDA requires one)"))
    if settings.effective_min > settings.effective_max:
        findings.append(Finding(
            "error", f"{where}: minReplicaCount {settings.effective_min} > maxReplicaCount {settings.effective_max}",
            "make minReplicaCount ≤ maxReplicaCount",
        ))
    for index, trigger in enumerate(settings.triggers):
        label = f"{where} trigger {index} ({trigger.type})"
        if trigger.type != "prometheus":
            continue
        missing = [key for key in ("serverAddress", "query", "threshold") if not trigger.metadata.get(key)]
        if missing:
            findings.append(Finding(
                "error", f"{label} lacks {', '.join(missing)}",
                "set serverAddress, query and threshold (all required by KEDA's Prometheus scaler)",
            ))
        query = trigger.query or ""
        if selects_model_label(query):
            served = model_url or "<the modelURL>"
            findings.append(Finding(
                "warning",
                f"{label} query {query!r} selects engine series by model=…, but vLLM labels them model_name; "
                "it likely matches nothing, which KEDA reads as 0, so it never scales",
                f'select model_name="{served}" instead, or aggregate without a selector: sum(vllm:num_requests_waiting)',
                defect=2,
            ))
        if query and settings.effective_max > 1 and not is_aggregated(query):
            findings.append(Finding(
                "warning",
                f"{label} query {query!r} is not aggregated: with 2+ engine pods it returns one series per pod and "
                f"KEDA's Prometheus scaler fails on more than one element, so scaling stops past 1 replica "
                f"(maxReplicaCount {settings.effective_max})",
                f"aggregate it: sum({query})",
                defect=3,
            ))
        server = trigger.server_address or ""
        if bundled_prometheus_release and "prometheus-operated.monitoring" in server:
            findings.append(Finding(
                "warning",
                f"{label} queries {server}, the standalone observability install's Prometheus, but this release "
                "enables the chart's kube-prometheus-stack subchart",
                f"use http://{bundled_prometheus_release}-kube-prometheus-stack-prometheus."
                f"{settings.namespace or '<release namespace>'}.svc:9090 (KEDA's operator runs in namespace keda, "
                "where the short name does not resolve), or install observability/install.sh and disable the subchart",
                defect=4,
            ))
        host = defects.server_host(server)
        if defects.is_short_name(host) and settings.namespace != defects.KEDA_NAMESPACE:
            findings.append(Finding(
                "warning",
                f"{label} queries {server}: {host} is a short name, which KEDA's operator resolves in its own "
                f"namespace ({defects.KEDA_NAMESPACE}), not in the release's",
                f"name the Service with its namespace: {server.replace(f'//{host}', f'//{host}.<release namespace>.svc', 1)}",
                defect=7,
            ))
    return findings


def check_values(
    values: Mapping[str, Any], *, source: str = "values", release: str = "vllm"
) -> list[Finding]:
    """Shape checks of a complete values tree for the keys the tutorial uses, then check_keda of
    every ScaledObject it would render."""
    findings: list[Finding] = []
    engine = values.get("servingEngineSpec")
    if engine is not None and not isinstance(engine, Mapping):
        return [Finding("error", f"{source}: servingEngineSpec is a {type(engine).__name__}", "make it a mapping")]
    specs = (engine or {}).get("modelSpec")
    if specs is not None and not isinstance(specs, list):
        return [Finding("error", f"{source}: servingEngineSpec.modelSpec is not a list", "write it as a list: - name: …")]
    for index, spec in enumerate(specs or []):
        where = f"{source}: servingEngineSpec.modelSpec[{index}]"
        if not isinstance(spec, Mapping):
            findings.append(Finding("error", f"{where} is not a mapping", "write each model spec as key: value pairs"))
            continue
        needed = ["name", "repository", "tag", "modelURL"]
        if not spec.get("resources"):
            needed += ["requestCPU", "requestMemory"]
        missing = [key for key in needed if spec.get(key) in (None, "")]
        if missing:
            findings.append(Finding("error", f"{where} lacks {', '.join(missing)}", "the chart requires them; add them"))
        keda = spec.get("keda")
        if keda is None:
            continue
        if not isinstance(keda, Mapping):
            findings.append(Finding("error", f"{where}.keda is not a mapping", "write keda as a mapping: enabled: true …"))
            continue
        if "triggers" in keda and not isinstance(keda["triggers"], list):
            findings.append(Finding(
                "error",
                f"{where}.keda.triggers is a {type(keda['triggers']).__name__}; the chart's ScaledObject template "
                "needs a list (its values.schema.json wrongly says object)",
                "write triggers as a list: - type: prometheus …",
                defect=1,
            ))
    bundled = (values.get("kube-prometheus-stack") or {}).get("enabled") if isinstance(
        values.get("kube-prometheus-stack"), Mapping) else False
    monitor = (engine or {}).get("serviceMonitor") if isinstance(engine, Mapping) else None
    if bundled and not (isinstance(monitor, Mapping) and monitor.get("enabled") is True):
        findings.append(Finding(
            "warning",
            f"{source}: enables the kube-prometheus-stack subchart but not servingEngineSpec.serviceMonitor (the "
            "chart's default is off): Prometheus will not scrape the engines, so a queue trigger reads 0 and never "
            "scales; a `helm upgrade -f` with these values removes the engine's ServiceMonitor",
            "set servingEngineSpec.serviceMonitor.enabled: true in these values (or upgrade with --reuse-values)",
            defect=6,
        ))
    models = {str(s.get("name")): s for s in (specs or []) if isinstance(s, Mapping)}
    for settings in keda_from_values(values, release=release):
        model = settings.name.removeprefix(f"{release}-").removesuffix("-scaledobject")
        findings += check_keda(
            settings,
            model_url=(models.get(model) or {}).get("modelURL"),
            bundled_prometheus_release=release if bundled else None,
        )
    return findings


# Prometheus durations as a ServiceMonitor writes them: "30s", "1m30s", "500ms".
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: object) -> float | None:
    """A Prometheus duration in seconds; None when it is not one (left to prometheus-operator)."""
    value = str(text or "").strip()
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        return None
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def check_servicemonitors(documents: Iterable[Mapping[str, Any]], *, source: str = "values") -> list[Finding]:
    """Rendered ServiceMonitors whose endpoint waits longer for a scrape than its interval:
    prometheus-operator (v0.90.1, pkg/prometheus/resource_selector.go) rejects such a ServiceMonitor
    whole and leaves its job out of Prometheus's configuration — one InvalidConfiguration event,
    nothing else (docs/observability.md) — so Prometheus stops scraping what it selects and a
    queue trigger reads an empty result, which KEDA takes for 0."""
    findings: list[Finding] = []
    for doc in documents:
        if doc.get("kind") != "ServiceMonitor":
            continue
        name = (doc.get("metadata") or {}).get("name", "?")
        for endpoint in (doc.get("spec") or {}).get("endpoints") or []:
            interval, timeout = endpoint.get("interval"), endpoint.get("scrapeTimeout")
            every, wait = duration_seconds(interval), duration_seconds(timeout)
            if every is None or wait is None or wait <= every:
                continue
            findings.append(Finding(
                "warning",
                f"{source}: ServiceMonitor {name} port {endpoint.get('port', '?')} has scrapeTimeout {timeout} "
                f"above its interval {interval}: prometheus-operator rejects the whole ServiceMonitor (one "
                "InvalidConfiguration event), Prometheus stops scraping it, and a trigger on its metrics reads an "
                "empty result, which KEDA takes for 0",
                f"set serviceMonitor.scrapeTimeout to at most serviceMonitor.interval ({interval}) in the same values",
            ))
    return findings
