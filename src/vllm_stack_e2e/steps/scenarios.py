"""Step 7 (the tutorial's advanced configurations) and the traffic they need: steady low
traffic (the keepalive), a cold start from zero, a broken metric source."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from .. import load
from ..errors import WaitTimeout
from . import upgrade
from .stack import Stack


@dataclass
class SteadyTraffic:
    """Open-loop traffic at `rate` requests/s (small prompts) for `duration` s, in the background."""

    stack: Stack
    rate: float
    duration: float
    _job: load.Background | None = None

    def start(self) -> "SteadyTraffic":
        config = load.LoadConfig(base_url=self.stack.router_base(), num_requests=int(self.rate * self.duration) + 1,
                                 prompt_len=200, max_tokens=8, stream=False, rate=self.rate,
                                 duration=self.duration, timeout=60)
        self._job = load.Background("steady-traffic", lambda: load.run(config))
        return self

    def join(self) -> load.LoadResult | None:
        return self._job.join(timeout=self.duration + 120) if self._job is not None else None


@dataclass
class ColdStart:
    first_status: int
    first_body: str
    seconds_to_200: float
    attempts: int


def cold_start(stack: Stack, model: str, budget: float) -> ColdStart:
    """From zero engines: the first request gets the router's 503; the same request is then
    repeated once a second until it succeeds (KEDA activates on the router's request count)."""
    url = f"{stack.router_base()}/completions"
    body = {"model": model, "prompt": "Hello from a cold start", "max_tokens": 4}
    started = time.monotonic()
    first = httpx.post(url, json=body, timeout=30)
    attempts = 1

    def send() -> int:
        nonlocal attempts
        attempts += 1
        try:
            return httpx.post(stack.router_base() + "/completions", json=body, timeout=30).status_code
        except httpx.HTTPError:
            return 0

    if first.status_code != 200:
        retryer = Retrying(stop=stop_after_delay(budget), wait=wait_fixed(1.0),
                           retry=retry_if_result(lambda code: code != 200), retry_error_callback=lambda s: -1)
        if retryer(send) != 200:
            raise WaitTimeout(f"cold start: {url} did not answer 200 within {budget:.0f}s after {attempts} attempts "
                              f"(first answer {first.status_code})")
    return ColdStart(first_status=first.status_code, first_body=first.text[:300],
                     seconds_to_200=time.monotonic() - started, attempts=attempts)


@contextlib.contextmanager
def broken_metric_source(stack: Stack, scenario: str | None, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """Make the triggers' Prometheus unreachable for real, and restore it afterwards (also on
    failure or Ctrl-C): stop the lab's Prometheus where the backend can, else point the trigger
    at an address that refuses connections. Yields how it was broken."""
    stopped = stack.backend.stop_metric_source()
    how = "Prometheus stopped" if stopped else "trigger pointed at a refusing address (127.0.0.1:9)"
    if not stopped:
        upgrade.upgrade(stack, scenario=scenario, extra=(*extra, "fix-unreachable-metrics.yaml"))
    stack.echo(f"metric source broken: {how}")
    try:
        yield how
    finally:
        if stopped:
            stack.backend.start_metric_source()
        else:
            upgrade.upgrade(stack, scenario=scenario, extra=extra)
        stack.echo("metric source restored")
