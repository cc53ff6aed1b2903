"""The one wait engine: every named wait of the harness — on the API server (watch-backed), on
Prometheus and on HTTP endpoints (polling) — goes through `until` or `holds`.

A wait observes; it does not judge. `until` returns a `Seen` (reached or not, when, the last
state), `holds` a `Held` (held or not, where it broke); a fixture that needs the state to act
calls `.expect()`, which raises `WaitTimeout` with what was seen last, while a fixture that
records a tutorial claim keeps the observation for its test to assert on.

Every wait prints one progress line per change of what it sees (through the registered
observers) and counts its wall time as waiting on the cluster — the run's wait accounting,
against which the harness's own share of a run is measured. Only the main thread counts (a
wait in a background thread overlaps the test's own wall time), and a wait inside another wait
counts once.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

from .errors import WaitTimeout

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# A source of states: given a deadline (time.monotonic()), yields the current state at once and
# then every new state (a watch event, a poll) until the deadline.
Source = Callable[[float], Iterator[T]]
Observer = Callable[[str, str, float, float], None]  # description, what is seen, elapsed s, budget s

_lock = threading.Lock()
_totals = {"seconds": 0.0, "waits": 0}
_activities: dict[str, float] = {}  # e.g. "helm": seconds the run spent running helm
_depth = threading.local()
_observers: list[Observer] = []


# ---- accounting -------------------------------------------------------------------------------
_log: list[dict[str, Any]] = []  # every counted wait: what, when, how long (run.json's "waits")


@contextlib.contextmanager
def waiting(description: str = "") -> Iterator[None]:
    """Count the block's wall time as waiting (outermost block on the main thread only)."""
    counted = threading.current_thread() is threading.main_thread() and not getattr(_depth, "n", 0)
    _depth.n = getattr(_depth, "n", 0) + 1
    started, wall = time.monotonic(), time.time()
    try:
        yield
    finally:
        _depth.n -= 1
        if counted:
            seconds = time.monotonic() - started
            with _lock:
                _totals["seconds"] += seconds
                _totals["waits"] += 1
                _log.append({"what": description, "at": round(wall, 3), "seconds": round(seconds, 3)})


def timed(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of `waiting()`, for waits that run elsewhere (helm --wait)."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with waiting(func.__qualname__):
            return func(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def spent(activity: str) -> Iterator[None]:
    """Count the block's wall time under `activity` (helm, the lab's start): not waiting on the
    cluster, but not the harness's own work either, so a run's overview can tell them apart.
    Main thread only, and not inside a wait (that time is already the wait's)."""
    counted = threading.current_thread() is threading.main_thread() and not getattr(_depth, "n", 0)
    started = time.monotonic()
    try:
        yield
    finally:
        if counted:
            with _lock:
                _activities[activity] = _activities.get(activity, 0.0) + time.monotonic() - started


def totals() -> dict[str, Any]:
    """{"seconds": time spent waiting, "waits": how many waits, "activities": {name: seconds},
    "log": [{"what", "at", "seconds"}] of every counted wait} since the last reset."""
    with _lock:
        return {**_totals, "activities": {k: round(v, 3) for k, v in _activities.items()}, "log": list(_log)}


def reset() -> None:
    with _lock:
        _totals.update(seconds=0.0, waits=0)
        _activities.clear()
        _log.clear()


# ---- progress ----------------------------------------------------------------------------------
def add_observer(observer: Observer) -> None:
    """Register a callback (description, what is seen, elapsed s, budget s) for live progress."""
    _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    with contextlib.suppress(ValueError):
        _observers.remove(observer)


def _notify(description: str, seen: str, elapsed: float, budget: float) -> None:
    for observer in list(_observers):
        observer(description, seen, elapsed, budget)


def seconds(value: float) -> str:
    """A duration for messages: whole seconds from 10 s up, else as precise as given (0.3s)."""
    return f"{value:.0f}s" if value >= 10 else f"{value:.3g}s"


# ---- predicates with words -----------------------------------------------------------------------
@dataclass(frozen=True)
class Check(Generic[T]):
    """A predicate and the words for it; the words become the wait's description."""

    test: Callable[[T], bool]
    text: str

    def __call__(self, value: T) -> bool:
        return bool(self.test(value))

    def __and__(self, other: "Check[T]") -> "Check[T]":
        return Check(lambda v: self(v) and other(v), f"{self.text} and {other.text}")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Failed:
    """A probe that raised: kept as the state, so a wait can say what went wrong last."""

    error: BaseException

    def __str__(self) -> str:
        lines = str(self.error).strip().splitlines()
        return f"error: {type(self.error).__name__}: {lines[0][:200] if lines else ''}"


# ---- observations ------------------------------------------------------------------------------
@dataclass
class Seen(Generic[T]):
    """What `until` observed: whether the predicate held within the budget, when, and the state."""

    description: str
    budget: float
    reached: bool
    state: T | None  # the state that satisfied the predicate, else the last one seen
    elapsed: float  # seconds from the start to reaching it (the budget when not reached)
    at: float  # wall clock (time.time()) when reached or given up
    shown: str  # the state in words
    hint: str = ""
    history: list[tuple[float, T]] = field(default_factory=list)  # (offset s, state), every change

    def __bool__(self) -> bool:
        return self.reached

    def explain(self) -> str:
        if self.reached:
            return f"{self.description}: reached after {self.elapsed:.1f}s of {seconds(self.budget)}: {self.shown}"
        return (f"{self.description}: not reached after {seconds(self.budget)}; last seen {self.shown}"
                + (f" — {self.hint}" if self.hint else ""))

    def expect(self) -> T:
        """The state, or WaitTimeout saying what was seen last (for waits a fixture needs to act)."""
        if not self.reached:
            raise WaitTimeout(self.explain())
        return self.state  # type: ignore[return-value]


@dataclass
class Held(Generic[T]):
    """What `holds` observed over its window: every state, and the first that broke the predicate."""

    description: str
    window: float
    history: list[tuple[float, T]]  # (offset s, state)
    broke_at: float | None = None  # offset of the first breaking state
    breaking: str = ""  # that state in words

    @property
    def held(self) -> bool:
        return self.broke_at is None

    def __bool__(self) -> bool:
        return self.held

    def states(self) -> list[T]:
        return [state for _, state in self.history]

    def explain(self) -> str:
        if self.held:
            return f"{self.description}: held for the {seconds(self.window)} window ({len(self.history)} states seen)"
        at_start = bool(self.history) and self.broke_at == self.history[0][0]
        when = "at the start" if at_start else f"after {seconds(self.broke_at or 0.0)}"
        return f"{self.description}: broke {when} of the {seconds(self.window)} window: {self.breaking}"

    def expect(self) -> list[T]:
        if not self.held:
            raise WaitTimeout(self.explain())
        return self.states()


# ---- the engine ----------------------------------------------------------------------------------
def polling(probe: Callable[[], T], interval: float = 0.5) -> Source[T | Failed]:
    """A source that calls `probe` every `interval` seconds; a probe that raises yields `Failed`."""

    def states(deadline: float) -> Iterator[T | Failed]:
        pause = threading.Event()
        while True:
            try:
                yield probe()
            except Exception as exc:  # noqa: BLE001 — the failure is the state, and the wait says so
                yield Failed(exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            pause.wait(min(interval, remaining))

    return states


def _words(show: Callable[[Any], str], state: Any, context: Callable[[], str] | None) -> str:
    text = str(state) if isinstance(state, Failed) else show(state)
    if context is not None:
        try:
            extra = context()
        except Exception:  # noqa: BLE001 — progress is best effort
            extra = ""
        if extra:
            text += f", {extra}"
    return text


def until(source: Source[T], predicate: Callable[[T], bool], budget: float, description: str, *,
          show: Callable[[T], str] = str, hint: str = "", context: Callable[[], str] | None = None) -> Seen[T]:
    """Follow `source` until `predicate(state)` holds or `budget` seconds pass. A `Failed` state
    never satisfies the predicate. `context` adds a fact to the progress line (e.g. the queue)."""
    with waiting(description):
        start = time.monotonic()
        deadline = start + budget
        history: list[tuple[float, T]] = []
        last: Any = None
        for state in source(deadline):
            offset = time.monotonic() - start
            last = state
            history.append((offset, state))
            if not isinstance(state, Failed) and predicate(state):
                return Seen(description, budget, True, state, offset, time.time(), _words(show, state, None),
                            hint, history)
            _notify(description, _words(show, state, context), offset, budget)
            if offset >= budget:
                break
        return Seen(description, budget, False, last, budget, time.time(), _words(show, last, None), hint, history)


def holds(source: Source[T], predicate: Callable[[T], bool], window: float, description: str, *,
          show: Callable[[T], str] = str, stop_on_break: bool = True) -> Held[T]:
    """Follow `source` for `window` seconds; "it did not change" is a claim too. Stops at the
    first state that breaks the predicate unless `stop_on_break` is False."""
    with waiting(description):
        start = time.monotonic()
        held: Held[T] = Held(description, window, [])
        for state in source(start + window):
            offset = time.monotonic() - start
            if offset > window and held.history:
                break
            held.history.append((offset, state))
            _notify(description, _words(show, state, None), offset, window)
            if held.broke_at is None and (isinstance(state, Failed) or not predicate(state)):
                held.broke_at, held.breaking = offset, _words(show, state, None)
                if stop_on_break:
                    break
        return held
