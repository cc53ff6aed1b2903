"""The controller floor of each scaling claim: the least time KEDA, the HPA controller and an
engine's readiness need before the claim can be seen, whatever the harness does — polling
intervals, HPA syncs, cooldowns, stabilization windows, readiness — from the ScaledObject a
scenario deploys (its values, rendered by helm) and the profile's HPA sync and readiness.

`make bench` sets a run's wall time per step against it (docs/keda.md has the rules). A ratio
near 1 means the run waits on the controllers and little else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import PROFILE_SETTINGS
from .helm import STANDIN_CHART, Helm
from .scaledobject import KedaSettings, effective_keda, rate_window
from .values import merge_order, with_variant

# Seconds an engine takes to become Ready on the lab (its simulated model load, LAB_ENGINE_STARTUP_S).
LAB_ENGINE_READY = 2.0
# The margin a claim's budget adds to its floor: an API round trip, a scrape that lands just after
# a reading, a process slow to start on two busy cores. Stated once; every budget prints it.
MARGIN = 10.0


@dataclass(frozen=True)
class Budget:
    """A claim's budget: the floor the controllers need, derived from what is deployed, plus MARGIN.
    A claim under a known defect then fails as soon as the floor allows; printed with its sum."""

    seconds: float
    formula: str

    def __str__(self) -> str:
        return f"{self.seconds:.0f}s = {self.formula}"


def first_hpa_reading(sync: float) -> Budget:
    """From KEDA creating the HPA to the HPA holding a reading of its external metric: the HPA
    controller reads it on its sync; the first sync may come before KEDA's metrics server serves
    the new ScaledObject's metric, so two syncs."""
    return Budget(2 * sync + MARGIN, f"2 HPA syncs ({sync:g}s) + margin {MARGIN:g}s")


def queue_rise(ramp: float, lag: float) -> Budget:
    """From the load's start to Prometheus showing the queue above the threshold: the load's ramp
    to its ceiling, then two reading lags (a scrape just before the rise, the next one after)."""
    return Budget(ramp + 2 * lag + MARGIN, f"load ramp {ramp:g}s + 2 reading lags ({lag:g}s: scrape interval + 1s) "
                                           f"+ margin {MARGIN:g}s")


def scrape_change(lag: float) -> Budget:
    """After a helm upgrade, until a ServiceMonitor it added or removed shows in what Prometheus
    scrapes: prometheus-operator's reconcile and Prometheus's reload (seconds on the lab), then one
    reading lag (scrape interval + 1 s) — within the margin."""
    return Budget(lag + MARGIN, f"1 reading lag ({lag:g}s: scrape interval + 1s) + margin {MARGIN:g}s "
                                f"(the operator's reconcile and Prometheus's reload)")


def replicas_follow(poll: float, sync: float) -> Budget:
    """From the queue above the threshold (as Prometheus shows it) to spec.replicas raised: KEDA's
    metrics server reads Prometheus when the HPA asks, on its sync; KEDA's own poll decides
    activation. Two of each, for a reading that lands just after one. Readiness is not part of it:
    the HPA sizes an AverageValue metric by the metric alone."""
    return Budget(2 * (poll + sync) + MARGIN, f"2 × (KEDA poll {poll:g}s + HPA sync {sync:g}s) + margin {MARGIN:g}s")


@dataclass(frozen=True)
class Floor:
    step: str
    seconds: float
    formula: str  # the sum, in words and numbers


def _scenario(profile: str, backend: str | None, scenario: str | None, helm: Helm) -> KedaSettings:
    """The scenario's ScaledObject, without the harness fixes it applies: those change the triggers'
    query and server (docs/upstream-defects.md), no number a floor reads."""
    files = merge_order(4, profile, backend, scenario, with_variant(profile, scenario))
    return effective_keda(files, chart=STANDIN_CHART, helm=helm)[0]


def _window(settings: KedaSettings, default: float = 300.0) -> float:
    down = (settings.behavior or {}).get("scaleDown") or {}
    return float(down.get("stabilizationWindowSeconds", default))


def floors(profile: str, backend: str | None = "lab", *, engine_ready: float = LAB_ENGINE_READY,
           helm: Helm | None = None, sync: float | None = None) -> list[Floor]:
    """Each scaling step's floor for `profile` on `backend`, whose HPA syncs every `sync` seconds
    (Kubernetes' default when not given)."""
    helm = helm or Helm()
    sync = sync if sync is not None else PROFILE_SETTINGS[profile].hpa_sync_seconds
    step4 = _scenario(profile, backend, None, helm)
    poll = float(step4.effective_polling_interval)
    up = poll + sync + engine_ready
    out = [Floor("step 6", up + poll + sync,
                 f"scale-up (poll {poll:g} + HPA sync {sync:g} + ready {engine_ready:g}) + hold within max "
                 f"(poll {poll:g} + sync {sync:g})")]
    zero = _scenario(profile, backend, "scale-to-zero", helm)
    z_poll, cooldown, rate = (float(zero.effective_polling_interval), float(zero.effective_cooldown_period),
                            rate_window(t.query or "" for t in zero.triggers))
    out.append(Floor("step 7a", rate + cooldown + z_poll + z_poll + engine_ready + 2 * cooldown,
                     f"to zero (rate window {rate:g} + cooldown {cooldown:g} + poll {z_poll:g}) + cold start "
                     f"(poll {z_poll:g} + ready {engine_ready:g}) + steady traffic (2 cooldowns)"))
    hpa = _scenario(profile, backend, "hpa-behavior", helm)
    down = (hpa.behavior or {}).get("scaleDown") or {}
    period = float(((down.get("policies") or [{}])[0]).get("periodSeconds", 15))
    maximum = hpa.effective_max
    halvings = math.ceil(math.log2(maximum)) if maximum > 1 else 0
    # After the window the HPA steps down at most once per sync (15 s), by at most the policy's share.
    out.append(Floor("step 7b", float(hpa.effective_polling_interval) + sync + engine_ready + _window(hpa)
                     + max(halvings - 1, 0) * min(period, sync),
                     f"scale-up to {maximum} (poll + sync + ready) + window {_window(hpa):g} + "
                     f"{max(halvings - 1, 0)} more step(s) × min(period {period:g}, sync {sync:g})"))
    fb = _scenario(profile, backend, "fallback", helm)
    f_poll = float(fb.effective_polling_interval)
    threshold = float((fb.fallback or {}).get("failureThreshold", 3))
    out.append(Floor("step 7c", threshold * f_poll + sync + engine_ready + (f_poll + sync) + f_poll
                     + _window(fb) + sync + 2 * f_poll,
                     f"fallback ({threshold:g} failed polls + sync + ready) + hold (poll + sync) + clear (poll) + "
                     f"back to 1 (window {_window(fb):g} + sync) + contrast (fail and recover: 2 polls)"))
    return out


def against(run: Mapping[str, Any], found: list[Floor]) -> list[tuple[str, float, float, str]]:
    """(step, the run's wall time in that step, its floor, the formula) for each floored step,
    and a last row for the scaling steps together."""
    wall: dict[str, float] = {}
    for test in run.get("tests") or []:
        wall[str(test.get("step"))] = wall.get(str(test.get("step")), 0.0) + float(test.get("duration") or 0.0)
    rows = [(f.step, wall.get(f.step, 0.0), f.seconds, f.formula) for f in found]
    rows.append(("scaling steps", sum(r[1] for r in rows), sum(r[2] for r in rows), "sum of the above"))
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m vllm_stack_e2e.floors [RUN_DIR]`: a run's wall time per scaling step against its
    controller floor (the newest run under reports/ when no folder is given)."""
    import argparse
    import json
    from pathlib import Path

    from .report import latest_run, reports_root

    parser = argparse.ArgumentParser(prog="python -m vllm_stack_e2e.floors", description=main.__doc__)
    parser.add_argument("run_dir", nargs="?", type=Path, default=None)
    args = parser.parse_args(argv)
    run_dir = args.run_dir or latest_run(reports_root())
    run = json.loads((run_dir / "run.json").read_text())
    profile, backend = str(run.get("profile") or "fast"), str(run.get("backend") or "lab")
    rows = against(run, floors(profile, "lab" if backend == "lab" else None,
                               sync=float(run.get("hpa_sync_seconds") or PROFILE_SETTINGS[profile].hpa_sync_seconds)))
    print(f"(c) e2e wall time ÷ controller floor, run {run_dir.name} ({backend}, profile {profile})")
    print(f"| {'step':<13} | {'wall':>8} | {'floor':>8} | {'ratio':>5} | floor")
    print(f"|{'-' * 15}|{'-' * 10}|{'-' * 10}|{'-' * 7}|------")
    for step, wall, floor, formula in rows:
        ratio = f"{wall / floor:.2f}" if floor else "—"
        print(f"| {step:<13} | {wall:7.1f}s | {floor:7.1f}s | {ratio:>5} | {formula}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
