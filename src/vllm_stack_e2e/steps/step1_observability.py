"""Step 1: the observability stack (Prometheus, known as svc/prometheus-operated in monitoring)."""

from __future__ import annotations

from ..prom import Prometheus, Target
from ..context import Stack

ENGINE_METRIC = "vllm:num_requests_waiting"


def install(stack: Stack) -> None:
    if stack.backend.install_observability():
        stack.record("observability", "observability")
        stack.echo("step 1: observability installed by this run")
    else:
        stack.echo("step 1: observability already installed; reusing it (it will be left in place)")
    version = stack.prometheus().version()
    stack.facts_cache["prometheus"] = version
    stack.echo(f"Prometheus {version} behind svc/prometheus-operated")


def uninstall(stack: Stack, wait: bool = True) -> None:
    stack.close()
    stack.backend.uninstall_observability(wait)
    stack.forget("observability", "observability")


def prometheus(stack: Stack) -> Prometheus:
    return stack.prometheus()


def stack_targets(prom: Prometheus, namespace: str) -> list[Target]:
    """Prometheus's active targets that belong to this run's namespace."""
    return [t for t in prom.targets() if t.labels.get("namespace") == namespace]


def engine_series_query(namespace: str, metric: str = ENGINE_METRIC) -> str:
    return f'{metric}{{namespace="{namespace}"}}'
