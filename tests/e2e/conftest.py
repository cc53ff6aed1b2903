"""Shared helpers of the tutorial suite (fixtures come from vllm_stack_e2e.plugin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import pytest

from vllm_stack_e2e import values, waits
from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.steps import beyond, step1_observability



@pytest.fixture(scope="session")
def scraped(monitoring: Stack, vllm_release: Stack) -> waits.Seen[float | None]:
    """Step 1's observation, once Prometheus answers and the engines are Ready: Prometheus scrapes
    the engine and the router of this run (up == 1). The premise of every claim on the series it
    stores (step 1's, step 5's metric names)."""
    namespace = vllm_release.namespace
    budget = step1_observability.first_scrape_budget(vllm_release)
    seen = vllm_release.prometheus().reach_value(
        f'count(up{{namespace="{namespace}"}} == 1)', lambda v: (v or 0) >= 2, budget.seconds,
        f"Prometheus scrapes the engine and the router of this run (up == 1; budget {budget})")
    vllm_release.echo(f"step 1: {seen.explain()}")
    return seen

@pytest.fixture(scope="session")
def tutorial_step4(stack: Stack) -> dict[str, Any]:
    """The page's own step-4 values (the edition's tutorial-step4.yaml), as the page prints them."""
    return values.load_values(stack.edition.values_file("tutorial-step4.yaml"))


@pytest.fixture(scope="session")
def tutorial_keda(tutorial_step4: dict[str, Any]) -> dict[str, Any]:
    """The page's own keda block: the numbers its claims name."""
    return tutorial_step4["servingEngineSpec"]["modelSpec"][0]["keda"]


KedaClaim = Callable[[Optional["beyond.KedaErrors"]], None]


def _keda_claim(counted: bool) -> KedaClaim:
    """A judge of the errors KEDA counted in one phase: none (`counted` False) or some. Unread KEDA
    metrics fail on the lab and skip, saying why, on a cluster that does not let the API server proxy
    to the operator."""
    def judge(errors: beyond.KedaErrors | None) -> None:
        assert errors is not None, "KEDA's errors were not read: the scenario ended before this phase"
        if errors.skip_reason:
            pytest.skip(errors.skip_reason)
        if counted:
            assert errors.new is not None and errors.new > 0, errors.explain()
        else:
            assert errors.new == 0, errors.explain()
    return judge


@pytest.fixture(scope="session")
def no_new_keda_errors() -> KedaClaim:
    """The claim of a healthy phase: KEDA counted no new error for the tutorial's ScaledObject
    (`keda_scaled_object_errors_total`)."""
    return _keda_claim(counted=False)


@pytest.fixture(scope="session")
def new_keda_errors() -> KedaClaim:
    """The claim of a broken phase: KEDA counted the failure (its counter is live, so a zero
    elsewhere means zero)."""
    return _keda_claim(counted=True)
