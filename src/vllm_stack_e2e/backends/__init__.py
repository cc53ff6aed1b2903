"""Cluster backends: `lab` (default) and `current`, one interface (`base.Backend`)."""

from __future__ import annotations

from ..config import RunConfig
from .base import Backend, ChartRef, Echo


def make_backend(config: RunConfig, echo: Echo = print) -> Backend:
    """The backend a run's config names."""
    if config.cluster == "current":
        from .current import CurrentBackend

        return CurrentBackend(config, echo)
    from .lab import LabBackend

    return LabBackend(config, echo)


__all__ = ["Backend", "ChartRef", "make_backend"]
