"""How much of a run is spent in named waits — on controllers, KEDA, the HPA, Prometheus —
as opposed to the harness's own work (helm, queries, load set-up, teardown bookkeeping).

Only the main thread counts (a wait in a background thread overlaps the test's own wall
time), and a wait inside another wait counts once.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_totals = {"seconds": 0.0, "waits": 0}
_depth = threading.local()


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Count the block's wall time as waiting (outermost block on the main thread only)."""
    counted = threading.current_thread() is threading.main_thread() and not getattr(_depth, "n", 0)
    _depth.n = getattr(_depth, "n", 0) + 1
    started = time.monotonic()
    try:
        yield
    finally:
        _depth.n -= 1
        if counted:
            with _lock:
                _totals["seconds"] += time.monotonic() - started
                _totals["waits"] += 1


def timed(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of `waiting()`."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with waiting():
            return func(*args, **kwargs)
    return wrapper


def totals() -> dict[str, float]:
    """{"seconds": time spent waiting, "waits": how many waits} since the last reset."""
    with _lock:
        return dict(_totals)


def reset() -> None:
    with _lock:
        _totals.update(seconds=0.0, waits=0)
