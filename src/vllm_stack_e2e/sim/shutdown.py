"""What the simulated engine does on SIGTERM, following docs/termination.md ("vLLM's OpenAI server").

Two behaviours, chosen with the simulator knob `--sim-shutdown` / `VLLM_SIM_SHUTDOWN`:

- `shutdown-timeout` (the default: vLLM ≥ 0.18, what the chart's floating `lmcache/vllm-openai:latest`
  image carries today) honours vLLM's `--shutdown-timeout N` (seconds, default 0). SIGTERM starts an
  engine shutdown while the listener stays open and `/health` keeps answering 200; requests arriving
  during the shutdown are answered at once with `finish_reason: "abort"` and no text.
  - N = 0 (mode `abort`): every request in flight ends at once with the tokens it has and
    `finish_reason: "abort"` — HTTP 200; a stream gets its final chunk and `data: [DONE]`.
  - N > 0 (mode `drain`): requests in flight may finish; what is left after max(N, 5 s) is cut — the
    process goes and its connections close, so a stream ends without a finish_reason and without
    `[DONE]`, and a non-streamed request gets no response.
  The process exits once nothing is left: no request in the engine and no response still being sent.
- `no-drain` (vLLM ≤ 0.17): the engine processes are gone at once, so requests in flight stop
  receiving tokens and nothing tells their clients; the HTTP server stops accepting (uvicorn's own
  shutdown) and waits without limit for the open connections — in practice until the kubelet's
  SIGKILL, when they drop. `--shutdown-timeout` does not exist there (a real 0.17 would refuse it);
  the simulator ignores it with a warning.

`--sim-shutdown-exit-delay S` (default 0) keeps a `shutdown-timeout` engine up S seconds longer once
nothing is left (listener open, `/health` 200, new requests answered "abort"): a stand-in for the
engine's own teardown time, so a test can watch the shutdown window. It is the simulator's; vLLM has
no such setting.

The controller here runs on the engine's event loop; the CLI (`sim.cli`) wires it to uvicorn's server
(`exit`) and to the process (`cut`). In-process servers never receive SIGTERM: tests call `begin()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import Engine

log = logging.getLogger("vllm_stack_e2e.sim.shutdown")

BEHAVIOURS = ("shutdown-timeout", "no-drain")
MIN_CUT_SECONDS = 5.0  # vLLM ≥ 0.18 cuts what is left after max(--shutdown-timeout, 5 s)


@dataclass(frozen=True)
class ShutdownPolicy:
    """Which vLLM's SIGTERM handling the engine models, with its `--shutdown-timeout`."""

    behaviour: str = "shutdown-timeout"
    timeout: float = 0.0
    exit_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"shutdown behaviour must be one of {', '.join(BEHAVIOURS)}, got {self.behaviour!r}")
        if self.timeout < 0:
            raise ValueError(f"--shutdown-timeout must be ≥ 0 seconds, got {self.timeout:g}")
        if self.exit_delay < 0:
            raise ValueError(f"shutdown exit delay must be ≥ 0 seconds, got {self.exit_delay:g}")

    @property
    def mode(self) -> str:
        """`abort` (≥ 0.18, timeout 0), `drain` (≥ 0.18, timeout > 0) or `no-drain` (≤ 0.17)."""
        if self.behaviour == "no-drain":
            return "no-drain"
        return "drain" if self.timeout > 0 else "abort"

    @property
    def cut_after(self) -> float | None:
        """Seconds after SIGTERM when what is left is cut (`drain` only)."""
        return max(self.timeout, MIN_CUT_SECONDS) if self.mode == "drain" else None

    def describe(self, in_flight: int) -> str:
        """The one line the engine logs on SIGTERM: which behaviour applies, and to how many requests."""
        if self.mode == "no-drain":
            return (f"SIGTERM: vLLM ≤ 0.17 behaviour (VLLM_SIM_SHUTDOWN=no-drain), no drain: the requests in flight "
                    f"({in_flight}) stop receiving tokens and hang until SIGKILL; the listener closes")
        head = f"SIGTERM: vLLM ≥ 0.18 shutdown, --shutdown-timeout {self.timeout:g}"
        tail = "/health stays 200 and new requests are answered abort until the process exits"
        if self.mode == "abort":
            return f"{head}: the requests in flight ({in_flight}) end now with finish_reason abort; {tail}"
        return (f"{head}: the requests in flight ({in_flight}) may finish; what is left after {self.cut_after:g}s "
                f"is cut; {tail}")


class EngineShutdown:
    """The engine's SIGTERM handling (module docstring), on the engine's event loop.

    `exit(wait_forever)` stops the HTTP server: with False once nothing is left (≥ 0.18), with True at
    once for `no-drain` (uvicorn's shutdown then waits without limit for open connections). `cut(n)`
    ends the process with `n` requests still in flight (≥ 0.18 after max(N, 5 s)). The CLI sets both;
    the defaults do nothing, for in-process use and tests."""

    def __init__(self, engine: Engine, policy: ShutdownPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or ShutdownPolicy()
        self.exit: Callable[[bool], None] = lambda wait_forever: None
        self.cut: Callable[[int], None] = lambda remaining: None
        self.started = False
        self.in_flight_at_start = 0
        self.open = 0  # /v1/ responses not yet fully sent
        self.exited = False
        self.cut_requests: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = False  # the exit delay is over: exit as soon as nothing is left
        self._delay_handle: asyncio.TimerHandle | None = None
        self._cut_handle: asyncio.TimerHandle | None = None

    @property
    def refusing(self) -> bool:
        """New requests are answered "abort" at once (≥ 0.18, once SIGTERM came)."""
        return self.started and self.policy.mode != "no-drain"

    def state(self) -> dict[str, Any]:
        """For `/sim/state`."""
        return {"behaviour": self.policy.behaviour, "mode": self.policy.mode, "timeout": self.policy.timeout,
                "started": self.started, "in_flight_at_start": self.in_flight_at_start, "open": self.open,
                "cut_after": self.policy.cut_after}

    # -- SIGTERM -------------------------------------------------------------------------
    def begin(self) -> str:
        """SIGTERM came: log which behaviour applies and act on it. Once only; returns the line logged."""
        if self.started:
            return ""
        self.started = True
        self._loop = asyncio.get_running_loop()
        self.in_flight_at_start = self.engine.num_running + self.engine.num_waiting
        line = self.policy.describe(self.in_flight_at_start)
        log.warning("%s", line)
        mode = self.policy.mode
        if mode == "no-drain":
            self.engine.halt()
            self.exited = True
            self.exit(True)
            return line
        if mode == "abort":
            self.engine.abort_all()
        else:
            assert self.policy.cut_after is not None
            self._cut_handle = self._loop.call_later(self.policy.cut_after, self._cut_now)
        self._check()
        return line

    # -- responses, counted by TrackResponses ----------------------------------------------
    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1
        if self.started:
            self._check()

    # -- internals -------------------------------------------------------------------------
    def _nothing_left(self) -> bool:
        return self.open <= 0 and not self.engine.scheduler.has_work

    def _check(self) -> None:
        """Exit once nothing is left, after the exit delay (started on the first empty moment)."""
        if self.exited or not self._nothing_left():
            return
        if self._due:
            self._exit_now()
        elif self._delay_handle is None:
            assert self._loop is not None
            self._delay_handle = self._loop.call_later(self.policy.exit_delay, self._delay_over)

    def _delay_over(self) -> None:
        self._due = True
        self._check()

    def _exit_now(self) -> None:
        self.exited = True
        if self._cut_handle is not None:
            self._cut_handle.cancel()
        log.info("shutdown: nothing left in flight; exiting")
        self.exit(False)

    def _cut_now(self) -> None:
        if self.exited:
            return
        self.exited = True
        remaining = max(self.open, self.engine.num_running + self.engine.num_waiting)
        self.cut_requests = remaining
        log.warning("shutdown: %s after SIGTERM, cutting the %d request(s) still in flight (connections close, "
                    "no finish_reason, no [DONE])", f"{self.policy.cut_after:g}s", remaining)
        self.cut(remaining)


class TrackResponses:
    """ASGI middleware: counts the `/v1/` requests whose response is not yet fully sent, so the
    shutdown knows when nothing is left (a stream counts until its last byte)."""

    def __init__(self, app: Any, shutdown: EngineShutdown) -> None:
        self.app = app
        self.shutdown = shutdown

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        self.shutdown.opened()
        try:
            await self.app(scope, receive, send)
        finally:
            self.shutdown.closed()
