"""Hosting the simulator: in-process (uvicorn in a thread) for tests and the lab, or as a
subprocess (the argv for `ManagedProcess`). Everything listens on 127.0.0.0/8 only."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from ..errors import LabError, WaitTimeout


def require_loopback(host: str) -> None:
    """Raise ValueError unless `host` is an IPv4 loopback address (127.0.0.0/8) or localhost."""
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"the simulator listens on loopback only (127.0.0.0/8); got host {host!r} — "
                         "pass a 127.x.y.z address")


@dataclass
class ServerHandle:
    """A running in-process server: where it listens, and its loop (for call_soon_threadsafe)."""

    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(self, fn, *args, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        """Run `fn(*args)` on the server's loop and return its result (for loop-bound objects)."""

        async def run():  # type: ignore[no-untyped-def]
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)


def wait_until(check: Callable[[], object], budget: float, description: str, interval: float = 0.05) -> object:
    """Poll `check()` until it returns something truthy; return it, or raise WaitTimeout
    naming `description` and the last thing `check` returned (or raised)."""
    seen: dict[str, object] = {"value": None}

    def poll() -> object:
        try:
            seen["value"] = check()
        except Exception as exc:  # noqa: BLE001 — reported in the timeout message
            seen["value"] = f"{type(exc).__name__}: {exc}"
            return None
        return seen["value"]

    retry = Retrying(stop=stop_after_delay(budget), wait=wait_fixed(interval), retry=retry_if_result(lambda v: not v))
    try:
        return retry(poll)
    except RetryError:
        raise WaitTimeout(f"{description}: not true after {budget:g}s; last saw {seen['value']!r}") from None


def wait_http_ok(url: str, budget: float = 10.0, what: str = "server") -> None:
    """Wait until GET `url` answers 200 (e.g. an engine's /health)."""

    def ok() -> bool:
        return httpx.get(url, timeout=1.0).status_code == 200

    wait_until(ok, budget, f"{what} at {url} answering 200", interval=0.05)


def uvicorn_config(app, host: str, port: int, *, log_level: str = "warning") -> uvicorn.Config:  # type: ignore[no-untyped-def]
    """uvicorn settings shared by the in-process and CLI servers (no access log: it costs CPU)."""
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="on", timeout_keep_alive=30, timeout_graceful_shutdown=2)


class EngineServer(uvicorn.Server):
    """uvicorn's server with the engine's SIGTERM handling (`sim.shutdown`): SIGTERM goes to the
    engine's EngineShutdown instead of starting uvicorn's shutdown (vLLM ≥ 0.18 keeps its listener open);
    SIGINT stays uvicorn's. The shutdown stops the server through `exit`, or ends the process through
    `cut` (what the CLI passes: the process exits at once)."""

    def __init__(self, config: uvicorn.Config, shutdown, *, cut: Callable[[int], None]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config)
        self.engine_shutdown = shutdown  # not `shutdown`: uvicorn.Server has a method of that name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sigterm = False
        shutdown.exit = self._stop
        shutdown.cut = cut

    async def serve(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame) -> None:  # type: ignore[no-untyped-def]
        if sig == signal.SIGTERM and self._loop is not None:
            if not self._sigterm:  # the kubelet sends one; another changes nothing
                self._sigterm = True
                self._loop.call_soon_threadsafe(self.engine_shutdown.begin)
            return
        super().handle_exit(sig, frame)

    def _stop(self, wait_forever: bool) -> None:
        if wait_forever:  # vLLM ≤ 0.17: uvicorn's shutdown waits for open connections without limit
            self.config.timeout_graceful_shutdown = None
        self.should_exit = True


@contextmanager
def serve(app, host: str = "127.0.0.1", port: int = 0, *, startup_budget: float = 10.0,  # type: ignore[no-untyped-def]
          log_level: str = "warning") -> Iterator[ServerHandle]:
    """Serve an ASGI app on `host:port` from a daemon thread until the block exits.

    `port=0` lets the kernel pick a free port; the handle says which."""
    require_loopback(host)
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level))
    loop_box: list[asyncio.AbstractEventLoop] = []
    failure: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        loop_box.append(loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # noqa: BLE001 — reported to the starting thread
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"sim-serve-{host}:{port}", daemon=True)
    thread.start()
    waiter = Retrying(stop=stop_after_delay(startup_budget), wait=wait_fixed(0.01),
                      retry=retry_if_result(lambda started: not started))
    try:
        waiter(lambda: server.started or not thread.is_alive())
    except RetryError:
        pass
    if not server.started:
        server.should_exit = True
        thread.join(5)
        reason = f"{type(failure[0]).__name__}: {failure[0]}" if failure else "not started"
        raise LabError(f"in-process server on {host}:{port} did not start within {startup_budget}s ({reason}) "
                       "— is the port taken?")
    bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    handle = ServerHandle(host=host, port=int(bound), server=server, thread=thread, loop=loop_box[0])
    try:
        yield handle
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)


def engine_argv(model: str, host: str, port: int, *, served_model_name: str | None = None,
                max_num_seqs: int | None = None, max_model_len: int | None = None,
                sim: dict[str, object] | None = None, python: str = sys.executable,
                extra: Sequence[str] = ()) -> list[str]:
    """argv that runs one engine as a subprocess: `python -m vllm_stack_e2e.sim serve …`.

    `sim` maps simulator knobs to values, e.g. {"kv-cache-tokens": 4096, "inter-token-latency": 0.05}
    becomes `--sim-kv-cache-tokens 4096 --sim-inter-token-latency 0.05`."""
    require_loopback(host)
    argv = [python, "-m", "vllm_stack_e2e.sim", "serve", model, "--host", host, "--port", str(port)]
    if served_model_name:
        argv += ["--served-model-name", served_model_name]
    if max_num_seqs is not None:
        argv += ["--max-num-seqs", str(max_num_seqs)]
    if max_model_len is not None:
        argv += ["--max-model-len", str(max_model_len)]
    for knob, value in (sim or {}).items():
        argv += [f"--sim-{knob}", str(value)]
    return argv + list(extra)


def gateway_argv(host: str, port: int, models: Sequence[str], *, engines: Sequence[str] = (),
                 routing: str = "roundrobin", python: str = sys.executable, extra: Sequence[str] = ()) -> list[str]:
    """argv that runs the router-like gateway as a subprocess, with the router's flags: static
    discovery of `engines` (URLs, optionally `URL=MODEL`; default the first model), else k8s
    discovery (engines arrive over /admin/engines); `extra` router flags are appended."""
    require_loopback(host)
    argv = [python, "-m", "vllm_stack_e2e.sim", "gateway", "--host", host, "--port", str(port),
            "--service-discovery", "static" if engines else "k8s", "--routing-logic", routing]
    for model in models:
        argv += ["--model", model]
    if engines:
        pairs = [engine.partition("=") for engine in engines]
        argv += ["--static-backends", ",".join(url for url, _, _ in pairs),
                 "--static-models", ",".join(model or models[0] for _, _, model in pairs)]
    return argv + list(extra)
