"""`make clean`: remove what earlier runs left on a cluster — namespaces labelled
`vllm-stack-e2e.io/owner=vllm-stack-e2e` (each run's own) and the helm releases in them.
Nothing else is touched: KEDA and observability installs are left to their own uninstall.

    python -m vllm_stack_e2e.sweep [--cluster lab|current] [--dry-run] [--older-than-minutes N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from . import config as cfg
from . import kube as k
from .errors import HarnessError


def leftovers(kube: k.Kube, older_than_minutes: float = 0.0) -> list[k.Obj]:
    now = dt.datetime.now(dt.timezone.utc)
    found = []
    for ns in kube.list(*k.NAMESPACE, label_selector=f"{cfg.OWNER_LABEL}=vllm-stack-e2e"):
        created = dt.datetime.fromisoformat(str(ns["metadata"]["creationTimestamp"]).replace("Z", "+00:00"))
        if (now - created).total_seconds() >= older_than_minutes * 60:
            found.append(ns)
    return found


def sweep(backend, dry_run: bool = False, older_than_minutes: float = 0.0, echo=print) -> list[str]:  # type: ignore[no-untyped-def]
    """Uninstall the releases in, then delete, every leftover run namespace; returns their names."""
    names = []
    for ns in leftovers(backend.kube, older_than_minutes):
        name = ns["metadata"]["name"]
        names.append(name)
        run = ns["metadata"].get("labels", {}).get(cfg.RUN_LABEL, "?")
        if dry_run:
            echo(f"would remove namespace {name} (run {run})")
            continue
        for release in backend.helm.list_releases(namespace=name):
            echo(f"helm uninstall {release['name']} -n {name}")
            backend.helm.uninstall(release["name"], namespace=name)
        echo(f"deleting namespace {name} (run {run})")
        if backend.kube.delete(*k.NAMESPACE, name):
            backend.kube.wait_gone(*k.NAMESPACE, name, None, budget=180)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", default=None)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--older-than-minutes", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        config = cfg.resolve(args.cluster)
        if config.cluster == "lab":
            from .backends.lab import LabBackend

            backend = LabBackend(config)
            if not backend.ready():
                print(f"lab {backend.lab.name} is not running: nothing to sweep")
                return 0
        else:
            from .backends import make_backend

            backend = make_backend(config)
            backend.start()
        removed = sweep(backend, args.dry_run, args.older_than_minutes)
        print(f"{'found' if args.dry_run else 'removed'} {len(removed)} leftover run namespace(s)")
        if config.cluster == "current":
            backend.stop()
    except HarnessError as exc:
        print(f"sweep error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
