"""Shared helpers of the tutorial suite (fixtures come from vllm_stack_e2e.plugin)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import values


@pytest.fixture(scope="session")
def tutorial_keda() -> dict[str, Any]:
    """The tutorial's own keda block (values/tutorial-step4.yaml): the numbers its claims name."""
    spec = values.load_values(values.VALUES_DIR / "tutorial-step4.yaml")["servingEngineSpec"]["modelSpec"][0]
    return spec["keda"]
