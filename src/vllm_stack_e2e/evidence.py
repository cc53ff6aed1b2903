"""Failure evidence: what a person needs to see why a step failed, gathered into
`reports/<run>/artifacts/<test>/` — events, `kubectl describe` of the autoscaling objects,
pod logs, the KEDA operator's log lines about the run's namespace, `helm get values/manifest`
(secrets masked), Prometheus query dumps with each series' recent history, the timeline."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import kube as k
from . import kubectl as kubectl_cli
from . import tools
from .context import Stack
from .prom import Series
from .redaction import redact_text

QUERIES = ("vllm:num_requests_waiting", "vllm:num_requests_running", "sum(vllm:num_requests_waiting)",
           "vllm:num_incoming_requests_total", "up")
# The series whose history is dumped: when each was visible to PromQL (what KEDA's queries see),
# over the last HISTORY_WINDOW seconds at HISTORY_STEP — a deleted pod's series that outlives its
# pod (no staleness marker) shows as a span running past the pod's end.
HISTORY = ("up", "vllm:num_requests_waiting")
HISTORY_WINDOW, HISTORY_STEP = 900.0, 5.0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


def _write(folder: Path, name: str, produce: Callable[[], Any]) -> None:
    try:
        content = produce()
    except Exception as exc:  # noqa: BLE001 — evidence is best effort; say what failed
        content = f"<could not collect {name}: {type(exc).__name__}: {exc}>"
    if not isinstance(content, str):
        content = json.dumps(content, indent=1, default=str)
    (folder / name).write_text(content)


def presence(series: Series, step: float) -> dict[str, Any]:
    """A series' history in a few lines: the spans in which PromQL saw it (points no more than a
    step and a half apart), each with its first and last time (UTC) and its lowest and highest value."""
    spans: list[dict[str, float]] = []
    for at, value in series.points:
        if spans and at - spans[-1]["to"] <= step * 1.5:
            span = spans[-1]
            span.update(to=at, min=min(span["min"], value), max=max(span["max"], value))
        else:
            spans.append({"from": at, "to": at, "min": value, "max": value})

    def utc(at: float) -> str:
        return datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M:%SZ")

    return {"labels": series.labels,
            "seen": [{"from": utc(s["from"]), "to": utc(s["to"]), "min": s["min"], "max": s["max"]} for s in spans]}


def keda_lines(log: str, namespace: str) -> str:
    """The KEDA operator's log lines about the run's objects (its namespace is in each line KEDA
    writes about a ScaledObject: TriggerError, x509, connection refused, no such host …), secrets
    masked; a line saying so when there are none."""
    lines = [line for line in log.splitlines() if namespace in line]
    return redact_text("\n".join(lines)) if lines else f"(no line of the KEDA operator's log names namespace {namespace})"


def collect(stack: Stack, test_name: str, timelines: dict[str, Any] | None = None) -> Path:
    """Gather the evidence for one failed test; returns its folder."""
    folder = stack.config.artifacts_dir / _safe(test_name)
    folder.mkdir(parents=True, exist_ok=True)
    ns, cfg = stack.namespace, stack.config
    kubectl, kubeconfig = tools.kubectl(), stack.backend.kubeconfig

    def events() -> str:
        rows = sorted(stack.kube.events(ns), key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return "\n".join(f"{e.get('lastTimestamp') or e.get('eventTime')} {e.get('type')} "
                         f"{e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')} "
                         f"{e.get('reason')}: {e.get('message')}" for e in rows)

    _write(folder, "events.txt", events)
    for kind, name in (("scaledobject", cfg.scaledobject), ("hpa", cfg.hpa), ("deployment", cfg.engine_deployment)):
        _write(folder, f"describe-{kind}.txt", lambda kind=kind, name=name: kubectl_cli.describe(kubectl, kubeconfig, kind, name, ns))

    def logs() -> str:
        out = []
        for pod in stack.kube.list(*k.POD, namespace=ns):
            out.append(f"===== {pod['metadata']['name']}")
            out.append(stack.kube.pod_logs(ns, pod["metadata"]["name"], tail=300))
        return "\n".join(out)

    _write(folder, "pod-logs.txt", logs)
    _write(folder, "keda-operator.log", lambda: keda_lines(stack.backend.keda_operator_log(), ns))
    helm = stack.backend.helm
    _write(folder, "helm-values.json", lambda: helm.get_values(cfg.release, namespace=ns, all_values=True))
    _write(folder, "helm-manifest.yaml", lambda: helm.get_manifest(cfg.release, namespace=ns))

    def prom_dump() -> dict[str, Any]:
        prom = stack.prometheus()
        dump: dict[str, Any] = {q: [s.__dict__ for s in prom.query(q)] for q in QUERIES}
        dump["targets"] = [t.__dict__ for t in prom.targets()]
        return dump

    def prom_history() -> dict[str, Any]:
        prom, now = stack.prometheus(), time.time()
        return {q: [presence(s, HISTORY_STEP) for s in prom.query_range(q, now - HISTORY_WINDOW, now, HISTORY_STEP)]
                for q in HISTORY}

    _write(folder, "prometheus.json", prom_dump)
    _write(folder, "prometheus-history.json", prom_history)
    for name, timeline in (timelines or {}).items():
        _write(folder, f"timeline-{_safe(name)}.json", timeline.to_dict)
        try:
            from .report import plot_timeline

            plot_timeline(timeline.to_dict(), folder / f"timeline-{_safe(name)}.png")
        except Exception as exc:  # noqa: BLE001 — the JSON is the evidence; the plot is a convenience
            (folder / f"timeline-{_safe(name)}.png.txt").write_text(f"plot failed: {exc}")
    return folder
