"""The ScaledObjects a set of values produces: rendered by helm (`effective_keda`), read from a
manifest, or derived from a complete values tree with the chart's rules (docs/chart-contract.md),
as typed settings with KEDA's defaults (docs/keda.md) applied where the chart leaves a field out."""

from __future__ import annotations

import re

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


from .helm import STANDIN_CHART, Helm

from .values import SetPairs, model_specs, plan_values

# KEDA's defaults for ScaledObject fields the chart leaves out (docs/keda.md).
KEDA_DEFAULT_POLLING_INTERVAL = 30
KEDA_DEFAULT_COOLDOWN_PERIOD = 300
KEDA_DEFAULT_MIN_REPLICAS = 0
KEDA_DEFAULT_MAX_REPLICAS = 100
# The chart's default trigger when a modelSpec's keda block has none (docs/chart-contract.md).
CHART_DEFAULT_SERVER = "http://prometheus-operated.monitoring.svc:9090"
CHART_DEFAULT_THRESHOLD = "5"


# --------------------------------------------------------------------------------------------
# the KEDA settings a set of values produces


@dataclass(frozen=True)
class KedaTrigger:
    """One ScaledObject trigger."""

    type: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def server_address(self) -> str | None:
        return _str_or_none(self.metadata.get("serverAddress"))

    @property
    def query(self) -> str | None:
        return _str_or_none(self.metadata.get("query"))

    @property
    def threshold(self) -> str | None:
        """The threshold as KEDA reads it (a string in ScaledObject metadata)."""
        return _str_or_none(self.metadata.get("threshold"))

    @property
    def activation_threshold(self) -> str:
        return _str_or_none(self.metadata.get("activationThreshold")) or "0"


@dataclass(frozen=True)
class KedaSettings:
    """A ScaledObject's scaling settings: as rendered (None = not written, so KEDA's default
    applies) and with KEDA's defaults filled in (the effective_* properties)."""

    name: str
    target: str
    triggers: tuple[KedaTrigger, ...]
    namespace: str | None = None
    min_replica_count: int | None = None
    max_replica_count: int | None = None
    polling_interval: int | None = None
    cooldown_period: int | None = None
    idle_replica_count: int | None = None
    initial_cooldown_period: int | None = None
    fallback: Mapping[str, Any] | None = None
    advanced: Mapping[str, Any] | None = None

    @property
    def effective_min(self) -> int:
        return KEDA_DEFAULT_MIN_REPLICAS if self.min_replica_count is None else self.min_replica_count

    @property
    def effective_max(self) -> int:
        return KEDA_DEFAULT_MAX_REPLICAS if self.max_replica_count is None else self.max_replica_count

    @property
    def effective_polling_interval(self) -> int:
        return KEDA_DEFAULT_POLLING_INTERVAL if self.polling_interval is None else self.polling_interval

    @property
    def effective_cooldown_period(self) -> int:
        return KEDA_DEFAULT_COOLDOWN_PERIOD if self.cooldown_period is None else self.cooldown_period

    @property
    def hpa_name(self) -> str:
        """The HPA KEDA creates: advanced.horizontalPodAutoscalerConfig.name, else keda-hpa-<name>."""
        hpa = (self.advanced or {}).get("horizontalPodAutoscalerConfig") or {}
        return str(hpa.get("name") or f"keda-hpa-{self.name}")

    @property
    def hpa_min_replicas(self) -> int:
        """The HPA's minReplicas: KEDA moves 0↔1 itself, so the HPA never goes below 1."""
        return max(self.effective_min, 1)

    @property
    def behavior(self) -> Mapping[str, Any] | None:
        """advanced.horizontalPodAutoscalerConfig.behavior, which KEDA copies into the HPA."""
        hpa = (self.advanced or {}).get("horizontalPodAutoscalerConfig") or {}
        return hpa.get("behavior")

    @property
    def threshold(self) -> str | None:
        """The first trigger's threshold (the tutorial has one trigger, or the queue trigger first)."""
        return self.triggers[0].threshold if self.triggers else None

    def hpa_metric_name(self, index: int) -> str:
        """The external metric KEDA names for trigger `index` in the HPA, e.g. 's0-prometheus'."""
        return f"s{index}-{self.triggers[index].type}"


def scaledobjects_from_manifest(docs: Sequence[Mapping[str, Any]]) -> list[KedaSettings]:
    """The ScaledObjects among rendered or live objects, as KedaSettings."""
    return [_settings_from_scaledobject(doc) for doc in docs if doc.get("kind") == "ScaledObject"]


def _settings_from_scaledobject(doc: Mapping[str, Any]) -> KedaSettings:
    spec = doc.get("spec") or {}
    meta = doc.get("metadata") or {}
    triggers = tuple(
        KedaTrigger(type=str(t.get("type", "")), metadata=dict(t.get("metadata") or {}), name=t.get("name"))
        for t in (spec.get("triggers") or [])
        if isinstance(t, Mapping)
    )
    return KedaSettings(
        name=str(meta.get("name", "")),
        namespace=meta.get("namespace"),
        target=str((spec.get("scaleTargetRef") or {}).get("name", "")),
        triggers=triggers,
        min_replica_count=_int_or_none(spec.get("minReplicaCount")),
        max_replica_count=_int_or_none(spec.get("maxReplicaCount")),
        polling_interval=_int_or_none(spec.get("pollingInterval")),
        cooldown_period=_int_or_none(spec.get("cooldownPeriod")),
        idle_replica_count=_int_or_none(spec.get("idleReplicaCount")),
        initial_cooldown_period=_int_or_none(spec.get("initialCooldownPeriod")),
        fallback=spec.get("fallback"),
        advanced=spec.get("advanced"),
    )


def effective_keda(
    files: Sequence[str | os.PathLike[str]],
    sets: SetPairs | Mapping[str, Any] = (),
    *,
    chart: str | os.PathLike[str] = STANDIN_CHART,
    chart_version: str | None = None,
    release: str = "vllm",
    namespace: str = "default",
    helm: Helm | None = None,
) -> list[KedaSettings]:
    """The ScaledObjects these values produce, by asking helm: `helm template` of the chart with
    the run's files (first = base, rest = overlays) and sets, then the rendered ScaledObjects.
    An empty list means the values render no ScaledObject (keda disabled)."""
    plan = plan_values(files, sets)
    docs = (helm or Helm()).template(
        chart, release=release, files=plan.files, sets=plan.sets, namespace=namespace, version=chart_version
    )
    return scaledobjects_from_manifest(docs)


def keda_from_values(values: Mapping[str, Any], *, release: str = "vllm", namespace: str | None = None) -> list[KedaSettings]:
    """The ScaledObjects the chart would render from a complete values tree (e.g. `helm get values
    --all` of a live release), without running helm — the chart's rules from docs/chart-contract.md:
    one per modelSpec when servingEngineSpec.enableEngine, keda.enabled and no raySpec; only the
    fields present are set; without triggers, the chart's default queue trigger for that model."""
    engine = values.get("servingEngineSpec") or {}
    if not engine.get("enableEngine", True):
        return []
    out: list[KedaSettings] = []
    for spec in model_specs(values):
        keda = spec.get("keda")
        if not isinstance(keda, Mapping) or not keda.get("enabled") or "raySpec" in spec:
            continue
        model = str(spec.get("name", ""))
        if "triggers" in keda:
            raw = keda["triggers"] if isinstance(keda["triggers"], list) else [keda["triggers"]]
            triggers = tuple(
                KedaTrigger(type=str(t.get("type", "")), metadata=dict(t.get("metadata") or {}), name=t.get("name"))
                for t in raw
                if isinstance(t, Mapping)
            )
        else:
            triggers = (default_trigger(model),)
        out.append(KedaSettings(
            name=f"{release}-{model}-scaledobject",
            namespace=namespace,
            target=f"{release}-{model}-deployment-vllm",
            triggers=triggers,
            min_replica_count=_int_or_none(keda.get("minReplicaCount")),
            max_replica_count=_int_or_none(keda.get("maxReplicaCount")),
            polling_interval=_int_or_none(keda.get("pollingInterval")),
            cooldown_period=_int_or_none(keda.get("cooldownPeriod")),
            idle_replica_count=_int_or_none(keda.get("idleReplicaCount")),
            initial_cooldown_period=_int_or_none(keda.get("initialCooldownPeriod")),
            fallback=keda.get("fallback"),
            advanced=keda.get("advanced"),
        ))
    return out


def default_trigger(model: str) -> KedaTrigger:
    """The chart's trigger for a keda block without triggers (docs/chart-contract.md)."""
    return KedaTrigger(type="prometheus", metadata={
        "serverAddress": CHART_DEFAULT_SERVER,
        "metricName": "vllm:num_requests_waiting",
        "query": f'vllm:num_requests_waiting{{model="{model}"}}',
        "threshold": CHART_DEFAULT_THRESHOLD,
    })

def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


_RANGE = re.compile(r"\[(\d+)([smh])\]")


def rate_window(queries: Iterable[str]) -> float:
    """The longest range in trigger queries (the keepalive's `rate(…[1m])`): how long a trigger keeps
    reading traffic after it stops. 0 when no query has one."""
    seconds = [int(n) * {"s": 1, "m": 60, "h": 3600}[unit] for q in queries for n, unit in _RANGE.findall(q or "")]
    return float(max(seconds, default=0))
