"""Shared set-up of the lab self-tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def with_observability_and_keda(backend: Any) -> Iterator[None]:
    """Prometheus and KEDA on the lab: installed here when absent, removed afterwards only then."""
    undo = []
    try:
        if backend.install_observability():
            undo.append(backend.uninstall_observability)
        if backend.install_keda():
            undo.append(backend.uninstall_keda)
        yield
    finally:
        for step in reversed(undo):
            step()
