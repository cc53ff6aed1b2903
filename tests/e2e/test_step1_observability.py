"""Step 1 — monitoring: Prometheus answers through the page's port-forward (first edition:
svc/prometheus-operated in monitoring; current edition: svc/vllm-kube-prometheus-stack-prometheus
in the release namespace), scrapes the stack, and holds `vllm:num_requests_waiting` for the engine."""

from __future__ import annotations

import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import step1_observability as step

pytestmark = pytest.mark.e2e


def test_prometheus_answers_through_the_pages_port_forward(monitoring: Stack) -> None:
    namespace, service = monitoring.prometheus_service
    prom = step.prometheus(monitoring)
    assert prom.ready(), f"Prometheus behind svc/{service} -n {namespace} is not ready"
    assert prom.major_version() >= 2, f"Prometheus {prom.version()} behind svc/{service}"


@pytest.mark.upstream_defect(12)
def test_prometheus_targets_include_the_stack(vllm_release: Stack, scraped: waits.Seen[float | None]) -> None:
    assert_reached(scraped)
    jobs = {t.labels.get("service") for t in step.stack_targets(vllm_release.prometheus(), vllm_release.namespace)
            if t.up}
    cfg = vllm_release.config
    assert {f"{cfg.release}-{cfg.model}-engine-service", cfg.router_service} <= jobs, jobs


@pytest.mark.upstream_defect(12)
def test_queue_metric_has_series_for_the_engine(vllm_release: Stack, scraped: waits.Seen[float | None]) -> None:
    """Its premise, the engine scraped at all, is test_prometheus_targets_include_the_stack's claim."""
    requires(scraped)
    prom = vllm_release.prometheus()
    query = step.engine_series_query(vllm_release.namespace)
    prom.wait_for_value(f"count({query})", lambda v: (v or 0) >= 1, 90,
                        f"Prometheus holds {step.ENGINE_METRIC} for the engine")
    series = prom.query(query)
    assert series and all(s.labels.get("model_name") for s in series), [s.labels for s in series]
