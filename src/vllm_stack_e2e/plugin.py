"""pytest plugin: options, markers and the session fixtures that stand the stack up in the
tutorial's order. Loaded by the root conftest.py (and the `pytest11` entry point)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vllm-stack-e2e")
    group.addoption("--cluster", default=None, help="backend: lab (default) or current (env CLUSTER)")
    group.addoption("--profile", default=None, help="timing profile: tutorial or fast (env PROFILE)")
    group.addoption("--keep", action="store_true", default=False, help="keep the stack after the run, for debugging")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs against a cluster backend (the lab by default)")
    config.addinivalue_line("markers", "integration: starts real local processes (Prometheus, simulators)")
    config.addinivalue_line("markers", "bench: a benchmark, run by `make bench` only")
