#!/usr/bin/env python3
"""Sample the resident memory of every process of the running lab (control plane, KEDA,
Prometheus, data plane, simulated engines) and print the peak and what made it up.

    .venv/bin/python scripts/lab_memory.py --seconds 600 [--interval 2]

Stops by itself after --seconds (or on Ctrl-C) and prints a table."""

from __future__ import annotations

import argparse
import signal
import threading
import time

from vllm_stack_e2e.lab.lab import Lab
from vllm_stack_e2e.lab.processes import ManagedProcess, _descendants, _rss


def snapshot(lab: Lab) -> dict[str, int]:
    """RSS by component; every PID counted once (engines are the data plane's children, so
    the pod processes are attributed first and the data plane gets only what is left)."""
    rows = {name: _rss(pid) for name, pid in lab.cluster.kwok_pids().items() if pid}
    seen: set[int] = set()
    pidfiles = sorted(lab.paths.pids.glob("*.json"), key=lambda f: not f.name.startswith("pod-")) \
        if lab.paths.pids.exists() else []
    for pidfile in pidfiles:
        proc = ManagedProcess.from_pidfile(pidfile)
        pid = proc.pid
        if pid is None:
            continue
        name = "engines+gateways" if proc.spec.name.startswith("pod-") else proc.spec.name
        tree = ({pid} | _descendants(pid)) - seen
        seen |= tree
        rows[name] = rows.get(name, 0) + sum(_rss(p) for p in tree)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--interval", type=float, default=2)
    args = parser.parse_args()
    lab = Lab(echo=lambda _m: None)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    peak: dict[str, int] = {}
    peak_total, samples, deadline = 0, 0, time.monotonic() + args.seconds
    while not stop.is_set() and time.monotonic() < deadline:
        rows = snapshot(lab)
        samples += 1
        if sum(rows.values()) > peak_total:
            peak_total, peak = sum(rows.values()), rows
        stop.wait(args.interval)
    print(f"lab {lab.name}: {samples} samples; peak RSS of all its processes {peak_total / 2**20:.0f} MiB")
    for name, rss in sorted(peak.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<36} {rss / 2**20:8.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
