"""Shared helpers of the tutorial suite (fixtures come from vllm_stack_e2e.plugin)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_stack_e2e import values
from vllm_stack_e2e.context import Stack


@pytest.fixture(scope="session")
def tutorial_keda(stack: Stack) -> dict[str, Any]:
    """The page's own keda block (the edition's tutorial-step4.yaml): the numbers its claims name."""
    page = values.load_values(stack.edition[0].values_file("tutorial-step4.yaml"))
    return page["servingEngineSpec"]["modelSpec"][0]["keda"]
