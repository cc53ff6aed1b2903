"""Step 4: the same values plus the tutorial's `keda:` block, then `helm upgrade`; the ScaledObject
Ready and its HPA created by KEDA.

The upgrade is the kit's (steps/scenario.py): scenarios (step 7, beyond) and cleanup (step 8) are
upgrades too, the step-4 values plus an overlay."""

from __future__ import annotations

from .scenario import upgrade, wait_hpa, wait_scaledobject_ready

__all__ = ["upgrade", "wait_hpa", "wait_scaledobject_ready"]
