"""A timeline of one scaling test: replicas desired/ready, the queue, KEDA's and the HPA's view,
and the load phases, sampled about once a second; saved as JSON for reports and plots."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import kedametrics
from . import kube as k
from .prom import Prometheus


@dataclass
class Sample:
    t: float  # wall clock
    spec_replicas: int | None
    ready_replicas: int
    hpa_desired: int | None
    hpa_current: int | None
    hpa_metric: str | None
    queue: float | None
    so_ready: str | None
    so_active: str | None
    so_fallback: str | None
    # KEDA's own account (the operator's metrics, vllm_stack_e2e.kedametrics); None when unread.
    scaler_value: float | None = None  # what the first trigger's scaler read (the queue)
    scaler_active: bool | None = None  # the first trigger active
    keda_errors: float | None = None  # the ScaledObject's error counter
    keda_asked: float | None = None  # when the operator was asked for that reading (wall clock)
    keda_answered: float | None = None  # ... and when it answered
    hpa_scaling_active: str | None = None  # the HPA's ScalingActive: "True" / "False <reason>"
    # The Deployment's metadata.generation as read: it grows with every spec change the API server
    # writes, so it orders spec.replicas observations from several sources (vllm_stack_e2e.kube.ordered).
    generation: int | None = None
    running: float | None = None  # requests the engines run (vllm:num_requests_running), beside the queue


def _condition_words(obj: k.Obj | None, kind: str) -> str | None:
    """A condition as "True", or "False <reason>" (None when the object has none)."""
    cond = k.condition(obj, kind)
    if not cond:
        return None
    status = str(cond.get("status"))
    return status if status == "True" else f"{status} {cond.get('reason', '')}".strip()


@dataclass
class Span:
    name: str
    start: float
    end: float | None = None


@dataclass
class Timeline:
    """Samples the stack in a background thread between start() and stop()."""

    name: str
    kube: k.Kube
    namespace: str
    deployment: str
    scaledobject: str
    hpa: str
    prometheus: Callable[[], Prometheus] | None = None  # called per sample: port-forwards get renewed
    keda: Callable[[], str] | None = None  # the KEDA operator's metrics text (Backend.keda_metrics)
    keda_unread: str | None = None  # why the last KEDA reading failed, if it did
    started_at: float = 0.0  # wall clock of start()
    queue_query: str = "sum(vllm:num_requests_waiting)"
    running_query: str | None = None
    threshold: float | None = None
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    # The load's concurrency over time (wall time, in-flight limit) and its ceiling, when a load ran.
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    ceiling: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        dep = self.kube.get(*k.DEPLOYMENT, self.deployment, self.namespace)
        read_at = time.time()  # the Deployment's reading time: the reads after it take a while
        hpa = self.kube.get(*k.HPA, self.hpa, self.namespace)
        so = self.kube.get(*k.SCALEDOBJECT, self.scaledobject, self.namespace)
        queue = running = None
        if self.prometheus is not None:
            try:
                prom = self.prometheus()
                queue = prom.scalar(self.queue_query)
                running = prom.scalar(self.running_query) if self.running_query else None
            except Exception:  # noqa: BLE001 — a missing reading is recorded as None
                pass
        keda_asked = time.time()
        reading = self._keda()
        keda_answered = time.time()
        hpa_status = (hpa or {}).get("status") or {}
        metric = None
        for m in hpa_status.get("currentMetrics") or []:
            current = (m.get("external") or {}).get("current") or {}
            metric = str(current.get("averageValue", current.get("value")))
        return Sample(
            t=read_at,
            spec_replicas=((dep or {}).get("spec") or {}).get("replicas"),
            ready_replicas=k.ready_replicas(dep),
            hpa_desired=hpa_status.get("desiredReplicas"), hpa_current=hpa_status.get("currentReplicas"),
            hpa_metric=metric, queue=queue,
            so_ready=(k.condition(so, "Ready") or {}).get("status"),
            so_active=(k.condition(so, "Active") or {}).get("status"),
            so_fallback=(k.condition(so, "Fallback") or {}).get("status"),
            scaler_value=reading.value(0) if reading else None,
            scaler_active=reading.active.get(0) if reading else None,
            keda_errors=reading.errors if reading else None,
            keda_asked=keda_asked if reading else None, keda_answered=keda_answered if reading else None,
            hpa_scaling_active=_condition_words(hpa, "ScalingActive"),
            generation=((dep or {}).get("metadata") or {}).get("generation"),
            running=running,
        )

    def _keda(self) -> kedametrics.KedaReading | None:
        if self.keda is None:
            return None
        reading, self.keda_unread = kedametrics.read(self.keda, self.namespace, self.scaledobject)
        return reading

    def keda_errors_read(self, after: float, before: float) -> list[float]:
        """The ScaledObject's error counter as the sampler read it, oldest first: only readings asked
        after `after` and answered before `before`, so they fall in order between two readings taken
        at those times by someone else."""
        return [s.keda_errors for s in list(self.samples) if s.keda_errors is not None
                and s.keda_asked is not None and s.keda_answered is not None
                and s.keda_asked > after and s.keda_answered < before]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # noqa: BLE001 — keep sampling through API hiccups
                self.events.append((time.time(), f"sample failed: {type(exc).__name__}: {exc}"[:200]))
            self._stop.wait(self.interval)

    def start(self) -> "Timeline":
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name=f"timeline-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def load_concurrency(self, samples: list[tuple[float, float | None, int]], ceiling: int) -> None:
        """Keep a finished load's concurrency (load.AdaptiveResult.samples) and ceiling for the plot."""
        self.concurrency.extend((t, c) for t, _, c in samples)
        self.ceiling = ceiling

    def span(self, name: str, start: float, end: float | None = None) -> None:
        self.spans.append(Span(name, start, end))

    def event(self, text: str) -> None:
        self.events.append((time.time(), text))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "deployment": self.deployment,
                "threshold": self.threshold, "queue_query": self.queue_query, "keda_unread": self.keda_unread,
                "samples": [asdict(s) for s in self.samples], "spans": [asdict(s) for s in self.spans],
                "concurrency": self.concurrency, "ceiling": self.ceiling,
                "events": self.events}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def __enter__(self) -> "Timeline":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
