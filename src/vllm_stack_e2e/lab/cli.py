"""`vllm-stack-lab`: build, start, stop and inspect the local lab.

    vllm-stack-lab build              build missing binaries into the cache (prints times)
    vllm-stack-lab up [--only C,…]    cluster + data plane + observability + KEDA (idempotent)
    vllm-stack-lab down               stop every lab process (by PID) and remove the lab's files
    vllm-stack-lab status             processes, whether each runs, and its log
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import HarnessError
from . import build


def _status(as_json: bool) -> int:
    from .lab import Lab

    status = Lab(echo=lambda _m: None).status()
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        print(f"lab {status['lab']}: {'exists' if status['exists'] else 'not created'}; state {status['state']}")
        print(f"components installed: {', '.join(status['components']) or 'none'}")  # type: ignore[arg-type]
        for row in status["processes"]:  # type: ignore[union-attr]
            mark = "running" if row["running"] else "NOT RUNNING"
            print(f"  {row['name']:<40} {mark:<12} pid {row['pid'] or '-':<8} log {row['log']}")
    crashed = [r for r in status["processes"] if not r["running"]]  # type: ignore[union-attr]
    return 1 if crashed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vllm-stack-lab", description="The local lab: a real control plane, "
                                     "real KEDA and Prometheus, simulated GPU nodes and vLLM engines.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build missing binaries")
    up = sub.add_parser("up", help="start the lab")
    up.add_argument("--only", default="cluster,observability,keda", help="components (default: all)")
    sub.add_parser("down", help="stop the lab and remove its files")
    status = sub.add_parser("status", help="show the lab's processes")
    status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build.ensure_all()
            for row in build.build_report():
                took = f"{row['seconds']:.0f}s" if row["seconds"] is not None else "-"
                print(f"  {row['component']:<28} {'prebuilt (LAB_BIN_DIR)' if row['override'] else took}")
            return 0
        from .lab import Lab

        if args.command == "up":
            Lab().up([c.strip() for c in args.only.split(",") if c.strip()])
            return 0
        if args.command == "down":
            Lab().down()
            return 0
        return _status(args.json)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
