"""Timelines: read from the run folder, summed up, and drawn as one PNG each (matplotlib)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..redaction import redact_text
from .model import shorten

# ---- timelines and plots -----------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineSummary:
    """The numbers a reader wants next to a timeline's plot."""

    name: str
    samples: int
    seconds: float
    peak_spec: int | None
    peak_ready: int | None
    peak_queue: float | None
    threshold: float | None
    scale_up_after_load: float | None  # seconds from the first load span to spec.replicas growing
    events: tuple[tuple[float, str], ...]
    queue_after_load: float | None = None  # seconds from the first load span to the queue above the threshold
    peak_concurrency: int | None = None  # the load's most concurrent requests
    ceiling: int | None = None  # ... and the most it was allowed
    peak_running: float | None = None  # the engines' most running requests


def load_timelines(run: Mapping[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The run's timelines: those run.json lists, then any other timelines/*.json."""
    paths = [run_dir / p for p in run.get("timelines") or []]
    paths += [p for p in sorted((run_dir / "timelines").glob("*.json")) if p not in paths]
    found = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            data.setdefault("name", path.stem)
            found.append(data)
    return found


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _origin(timeline: Mapping[str, Any]) -> float:
    samples = timeline.get("samples") or []
    if samples:
        return float(samples[0]["t"])
    times = [float(s["start"]) for s in timeline.get("spans") or []]
    times += [float(e[0]) for e in timeline.get("events") or []]
    return min(times) if times else 0.0


def summarize_timeline(timeline: Mapping[str, Any]) -> TimelineSummary:
    """Peaks, the scale-up reaction to load, and the events, in seconds from the first sample."""
    samples = timeline.get("samples") or []
    t0 = _origin(timeline)
    spec = [s["spec_replicas"] for s in samples if isinstance(s.get("spec_replicas"), int)]
    ready = [s["ready_replicas"] for s in samples if isinstance(s.get("ready_replicas"), int)]
    queue = [float(s["queue"]) for s in samples if isinstance(s.get("queue"), (int, float))]
    load = [float(s["start"]) for s in timeline.get("spans") or [] if str(s.get("name", "")).startswith("load")]
    reaction = None
    if load and spec:
        start = min(load)
        before = [s["spec_replicas"] for s in samples if s["t"] <= start and isinstance(s.get("spec_replicas"), int)]
        base = before[-1] if before else spec[0]
        grown = next((s["t"] for s in samples if s["t"] >= start and isinstance(s.get("spec_replicas"), int)
                      and s["spec_replicas"] > base), None)
        reaction = grown - start if grown is not None else None
    queued = None
    threshold = float(timeline["threshold"]) if isinstance(timeline.get("threshold"), (int, float)) else None
    if load and threshold is not None:
        crossed = next((float(s["t"]) for s in samples if float(s["t"]) >= min(load)
                        and isinstance(s.get("queue"), (int, float)) and s["queue"] > threshold), None)
        queued = crossed - min(load) if crossed is not None else None
    offered = [int(c) for _, c in timeline.get("concurrency") or []]
    running = [float(s["running"]) for s in samples if isinstance(s.get("running"), (int, float))]
    return TimelineSummary(
        name=str(timeline.get("name", "timeline")), samples=len(samples),
        seconds=(float(samples[-1]["t"]) - t0) if samples else 0.0,
        peak_spec=max(spec) if spec else None, peak_ready=max(ready) if ready else None,
        peak_queue=max(queue) if queue else None,
        threshold=threshold, scale_up_after_load=reaction,
        events=tuple((float(t) - t0, redact_text(str(text))) for t, text in timeline.get("events") or []),
        queue_after_load=queued, peak_concurrency=max(offered) if offered else None,
        ceiling=int(timeline["ceiling"]) if isinstance(timeline.get("ceiling"), int) else None,
        peak_running=max(running) if running else None)


def condition_intervals(times: Sequence[float], states: Sequence[Any], wanted: str,
                        end: float) -> list[tuple[float, float]]:
    """(start, width) runs where `states` equals `wanted`; sample i holds until sample i+1, the
    last one until `end`."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for i, state in enumerate(states):
        if state == wanted and start is None:
            start = times[i]
        elif state != wanted and start is not None:
            runs.append((start, times[i] - start))
            start = None
    if start is not None:
        runs.append((start, end - start))
    return runs


_SPAN_COLOURS = {"ramp": "#cfe2f3", "hold": "#9fc5e8", "stop": "#6d7f91"}
_STRIP = (("KEDA Active", "so_active", "True", "#38a169"), ("Fallback", "so_fallback", "True", "#dd8a1c"),
          ("Ready=False", "so_ready", "False", "#d64545"), ("HPA not scaling", "hpa_scaling_active", "False", "#805ad5"))


def plot_timeline(timeline: Mapping[str, Any], out: Path) -> Path:
    """Draw one timeline as a PNG at `out`: replicas (spec, ready, HPA desired) and the queue
    against the threshold over seconds from the first sample; load phases shaded; KEDA's
    Active / Fallback / Ready=False intervals in a strip below; events as labelled lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    samples = list(timeline.get("samples") or [])
    t0 = _origin(timeline)
    times = [float(s["t"]) - t0 for s in samples]
    step = statistics.median(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else 1.0
    end = (times[-1] + step) if times else 1.0
    spans = [(str(s.get("name", "")), float(s["start"]) - t0,
              (float(s["end"]) if s.get("end") is not None else t0 + end) - t0)
             for s in timeline.get("spans") or []]
    summary = summarize_timeline(timeline)
    lo = min([0.0, *(s[1] for s in spans), *(e[0] for e in summary.events)])
    hi = max([end, *(s[2] for s in spans), *(e[0] for e in summary.events)])

    fig = Figure(figsize=(11, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.2, 1])
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    name = str(timeline.get("name", "timeline"))
    fig.suptitle(f"{name}: replicas and queue — {timeline.get('deployment', '?')}", fontsize=13, fontweight="bold")
    handles: list[Any] = []

    # Load phases: shaded bands (a line when too short to see as a band).
    for label, start, stop in spans:
        phase = label.split(":", 1)[-1]
        colour = _SPAN_COLOURS.get(phase, "#e0e0e0")
        if stop - start < (hi - lo) * 0.006:
            ax.axvline(start, color=colour, lw=2.2)
        else:
            ax.axvspan(start, stop, color=colour, alpha=0.55, lw=0)
        if label not in [h.get_label() for h in handles]:
            handles.append(Patch(color=colour, alpha=0.7, label=label))

    if not samples:
        ax.text(0.5, 0.5, "no samples recorded", transform=ax.transAxes, ha="center", va="center", fontsize=14)
    spec = [_num(s.get("spec_replicas")) for s in samples]
    ready = [_num(s.get("ready_replicas")) for s in samples]
    desired = [_num(s.get("hpa_desired")) for s in samples]
    queue = [_num(s.get("queue")) for s in samples]
    handles.append(ax.step(times, spec, where="post", color="tab:blue", lw=2.2, label="replicas desired (spec)")[0])
    handles.append(ax.step(times, ready, where="post", color="tab:green", lw=2.2, ls="--", label="replicas ready")[0])
    # Drawn wide and faint underneath, so it stays visible where it equals spec.replicas.
    handles.append(ax.step(times, desired, where="post", color="tab:purple", lw=5, alpha=0.3, zorder=1.5,
                           label="HPA desiredReplicas")[0])
    top = max([v for v in spec + ready + desired if not math.isnan(v)] or [1.0])
    ax.set_ylim(0, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("replicas")
    ax.grid(True, axis="y", alpha=0.3)

    qax = ax.twinx()
    handles.append(qax.plot(times, queue, color="tab:orange", lw=1.6, label="queue (waiting requests)")[0])
    # KEDA's own reading of the same trigger (keda_scaler_metrics_value): the queue as KEDA saw it.
    scaler = [_num(s.get("scaler_value")) for s in samples]
    if any(not math.isnan(v) for v in scaler):
        handles.append(qax.plot(times, scaler, color="tab:brown", lw=1.3, ls=(0, (4, 2)),
                                label="KEDA scaler value (trigger 0)")[0])
    # Beside the queue, in the same unit (requests): what the engines ran and what the load offered —
    # so a queue at 0 reads as "the load was too small" or "the metric is missing" at a glance.
    running = [_num(s.get("running")) for s in samples]
    if any(not math.isnan(v) for v in running):
        handles.append(qax.plot(times, running, color="tab:cyan", lw=1.3, label="engines' running requests")[0])
    offered = [(float(t) - t0, float(c)) for t, c in timeline.get("concurrency") or []]
    if offered:
        handles.append(qax.step([t for t, _ in offered], [c for _, c in offered], where="post", color="dimgray",
                                lw=1.2, ls=(0, (1, 1)), label="load concurrency")[0])
    ceiling = timeline.get("ceiling")
    if ceiling:
        handles.append(qax.axhline(float(ceiling), color="dimgray", ls=":", lw=1.0,
                                   label=f"load ceiling {int(ceiling)}"))
    threshold = summary.threshold
    if threshold is not None:
        handles.append(qax.axhline(threshold, color="darkred", ls="--", lw=1.3, label=f"queue threshold {threshold:g}"))
        qax.text(0.995, threshold, f"threshold {threshold:g} ", transform=qax.get_yaxis_transform(), ha="right",
                 va="bottom", fontsize=8, color="darkred")
    qtop = max([v for v in queue + scaler + running + [c for _, c in offered] if not math.isnan(v)]
               + [threshold or 0.0, float(ceiling or 0), 1.0])
    qax.set_ylim(0, qtop * 1.18)
    qax.set_ylabel("requests (queue, running, load)", color="tab:orange")
    qax.tick_params(axis="y", colors="tab:orange")

    # Events: vertical markers, labels inside the top of the plot (consecutive repeats unlabelled;
    # a label close to the previous one goes on the other side of its line).
    previous, last_at, side, labelled = None, -math.inf, "right", 0
    for when, text in summary.events:
        for axis in (ax, strip):
            axis.axvline(when, color="#333333", lw=1.0, ls=(0, (2, 2)), alpha=0.8)
        if text != previous and labelled < 12:
            side = ("left" if side == "right" else "right") if when - last_at < (hi - lo) * 0.025 else "right"
            ax.text(when, 0.97, " " + shorten(text) + " ", transform=ax.get_xaxis_transform(), rotation=90,
                    ha=side, va="top", fontsize=8, color="#222222",
                    bbox={"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 1})
            labelled, last_at = labelled + 1, when
        previous = text
    if summary.events:
        handles.append(Line2D([], [], color="#333333", lw=1.0, ls=(0, (2, 2)), label="event"))

    # KEDA's own account: one row per condition, bands where it holds.
    for row, (label, key, wanted, colour) in enumerate(reversed(_STRIP)):
        # A condition's status is its first word ("False FailedGetExternalMetric" for the HPA's).
        states = [str(s[key]).split()[0] if s.get(key) else s.get(key) for s in samples]
        runs = condition_intervals(times, states, wanted, end)
        unknown = condition_intervals(times, ["?" if st in (None, "Unknown") else "" for st in states], "?", end)
        if unknown:
            strip.broken_barh(unknown, (row + 0.2, 0.6), facecolors="#e6e6e6", edgecolor="#bbbbbb", hatch="///", lw=0)
        if runs:
            strip.broken_barh(runs, (row + 0.2, 0.6), facecolors=colour)
    strip.set_yticks([r + 0.5 for r in range(len(_STRIP))], [s[0] for s in reversed(_STRIP)], fontsize=9)
    strip.set_ylim(0, len(_STRIP))
    pad = (hi - lo) * 0.02
    strip.set_xlim(lo - pad, hi + pad)
    strip.set_xlabel("seconds since the first sample")
    strip.grid(True, axis="x", alpha=0.3)
    strip.set_title("ScaledObject conditions (grey hatch: Unknown / absent)", fontsize=9, loc="left")
    ax.tick_params(labelbottom=False)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8.5, frameon=False)

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
