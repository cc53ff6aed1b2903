"""KEDA's own account of a ScaledObject, from the operator's Prometheus metrics endpoint.

Names as KEDA 2.20.2 exports them (pkg/metricscollector, read at the pinned version; docs/beyond.md):
- `keda_scaler_metrics_value` — the value the scaler read for a trigger (the query result);
- `keda_scaler_active` — 1 while the trigger is active;
- `keda_scaler_detail_errors_total` — errors per trigger (the name `keda_scaler_errors_total` of
  older releases is gone);
- `keda_scaled_object_errors_total` — errors per ScaledObject (scaler errors and cache errors).

Every series carries `namespace` and `scaledObject`; the per-trigger ones also `triggerIndex`,
`scaler`, `metric`. The reading is parsed with prometheus-client's text parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

VALUE = "keda_scaler_metrics_value"
ACTIVE = "keda_scaler_active"
SCALER_ERRORS = "keda_scaler_detail_errors_total"
OBJECT_ERRORS = "keda_scaled_object_errors_total"


@dataclass
class KedaReading:
    """One scrape of the operator, narrowed to one ScaledObject."""

    values: dict[int, float] = field(default_factory=dict)  # trigger index → scaler metric value
    active: dict[int, bool] = field(default_factory=dict)  # trigger index → active
    scaler_errors: dict[int, float] = field(default_factory=dict)  # trigger index → error counter
    object_errors: float | None = None  # the ScaledObject's error counter (absent until it counts)

    @property
    def errors(self) -> float:
        """All errors counted for the ScaledObject: its own counter (which every scaler error also
        increments), or the scalers' sum when the operator has not exported it yet."""
        return self.object_errors if self.object_errors is not None else sum(self.scaler_errors.values())

    def value(self, trigger: int = 0) -> float | None:
        return self.values.get(trigger)


def parse(text: str, namespace: str, scaledobject: str) -> KedaReading:
    """The series of `namespace`/`scaledobject` in an operator's /metrics text."""
    reading = KedaReading()
    # Only this object's lines are parsed (the operator exports ~100 KB of runtime series besides).
    own = f'scaledObject="{scaledobject}"'
    lines = "\n".join(line for line in text.splitlines() if own in line and line.startswith("keda_"))
    for family in text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("namespace") != namespace or labels.get("scaledObject") != scaledobject:
                continue
            if sample.name == OBJECT_ERRORS:
                reading.object_errors = (reading.object_errors or 0.0) + sample.value
                continue
            try:
                index = int(labels.get("triggerIndex", "0"))
            except ValueError:
                continue
            if sample.name == VALUE:
                reading.values[index] = sample.value
            elif sample.name == ACTIVE:
                reading.active[index] = sample.value > 0
            elif sample.name == SCALER_ERRORS:
                reading.scaler_errors[index] = reading.scaler_errors.get(index, 0.0) + sample.value
    return reading


def read(fetch: Callable[[], str], namespace: str, scaledobject: str) -> tuple[KedaReading | None, str | None]:
    """One reading of the operator (`fetch` returns its /metrics text), or None and why not."""
    try:
        return parse(fetch(), namespace, scaledobject), None
    except Exception as exc:  # noqa: BLE001 — a missing reading is recorded as None, and why
        return None, f"{type(exc).__name__}: {exc}"[:200]


def new_errors(counts: list[float | None]) -> float | None:
    """Errors counted over a run of readings of one counter: the sum of its increases, a drop read
    as a restart of the operator (the counter starts again from 0). None with no reading at all."""
    seen = [c for c in counts if c is not None]
    if not seen:
        return None
    total = 0.0
    for before, after in zip(seen, seen[1:]):
        total += after - before if after >= before else after
    return total
