"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.errors import ProvisionError
from vllm_stack_e2e.helm import Helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    """The real helm binary (`make tools` provisions it; a missing one fails, it is not skipped)."""
    found = Helm()
    try:
        found.binary
    except ProvisionError as exc:
        pytest.fail(f"no helm binary for the chart/values tests: {exc} — run `make tools`")
    return found
