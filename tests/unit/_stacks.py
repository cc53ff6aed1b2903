"""Fake stacks for the unit tests: the typed handles of context.Stack on any object with `kube`,
`config` and `namespace`."""

from __future__ import annotations

from typing import Any

from vllm_stack_e2e.context import Stack


def with_handles(fake: Any) -> Any:
    """`fake` with the Stack's `engine`, `scaledobject` and `hpa` handles, built on its own kube."""
    for name in ("engine", "scaledobject", "hpa"):
        setattr(fake, name, getattr(Stack, name).fget(fake))
    return fake
