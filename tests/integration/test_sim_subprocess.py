"""The simulator as the lab runs it: `python -m vllm_stack_e2e.sim serve …` and `… gateway …`
as managed subprocesses — fast to start, small, honouring the simulated model load — and
what a client sees when an engine dies under it. What SIGTERM does to requests in flight is in
test_sim_termination.py."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from vllm_stack_e2e import load
from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec
from vllm_stack_e2e.sim.gateway import Gateway
from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim.host import engine_argv, gateway_argv, serve, wait_http_ok, wait_until

pytestmark = pytest.mark.integration

START_BUDGET = 2.5  # seconds from exec to /health 200 on a busy 2-core machine
RSS_BUDGET = 80 * 2**20


def start(tmp_path, name: str, argv: list[str]) -> ManagedProcess:
    proc = ManagedProcess(ProcessSpec(name=name, argv=argv, log=tmp_path / f"{name}.log"), tmp_path / f"{name}.pid")
    proc.start()
    return proc


def test_engine_starts_fast_small_and_stops_on_sigterm(tmp_path):
    port = free_port()
    started = time.monotonic()
    proc = start(tmp_path, "engine", engine_argv("llama3", "127.0.0.1", port, extra=["--tensor-parallel-size", "1"]))
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", 10, "engine subprocess")
        elapsed = time.monotonic() - started
        assert elapsed < START_BUDGET, f"engine took {elapsed:.2f}s to answer /health"
        assert 0 < proc.rss_bytes() < RSS_BUDGET, f"engine RSS {proc.rss_bytes() / 2**20:.0f} MiB"
        assert "ignoring vLLM flags" in proc.log_tail()
    finally:
        proc.stop(timeout=5)
    # Nothing in flight: the engine's shutdown (vLLM ≥ 0.18) ends at once and the process exits 0; the
    # status of "killed by SIGTERM" stays accepted for a SIGTERM that came before the server started.
    assert not proc.alive() and proc.exit_code() in (0, -signal.SIGTERM)


def test_simulated_model_load_delays_health(tmp_path):
    port = free_port()
    started = time.monotonic()
    proc = start(tmp_path, "slow-engine", engine_argv("llama3", "127.0.0.1", port, sim={"startup-delay": 1.0}))
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", 10, "engine subprocess with startup delay")
        assert time.monotonic() - started >= 1.0
    finally:
        proc.stop(timeout=5)


def test_gateway_subprocess_routes_to_an_engine_subprocess(tmp_path):
    engine_port, gateway_port = free_port(), free_port()
    engine = start(tmp_path, "engine", engine_argv("llama3", "127.0.0.1", engine_port,
                                                   sim={"inter-token-latency": 0.001}))
    gateway = start(tmp_path, "gateway", gateway_argv("127.0.0.1", gateway_port, ["llama3"],
                                                      engines=[f"http://127.0.0.1:{engine_port}"]))
    try:
        wait_http_ok(f"http://127.0.0.1:{engine_port}/health", 10, "engine subprocess")
        wait_http_ok(f"http://127.0.0.1:{gateway_port}/health", 10, "gateway subprocess")
        reply = httpx.post(f"http://127.0.0.1:{gateway_port}/v1/completions",
                           json={"model": "llama3", "prompt": "Hi", "max_tokens": 3}, timeout=10)
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3
    finally:
        gateway.stop(timeout=5)
        engine.stop(timeout=5)


def test_an_engine_killed_mid_stream_shows_as_incomplete_streams(tmp_path):
    port = free_port()
    proc = start(tmp_path, "doomed-engine", engine_argv("llama3", "127.0.0.1", port,
                                                        sim={"inter-token-latency": 0.02}))
    gateway = Gateway(["llama3"])
    gateway.add_engine(f"http://127.0.0.1:{port}")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", 10, "engine subprocess")
        with serve(gateway.app) as handle, ThreadPoolExecutor(1) as pool:
            running = pool.submit(load.run, load.LoadConfig(base_url=handle.url + "/v1", model="llama3",
                                                            num_requests=3, prompt_len=5, max_tokens=2000))
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/sim/state", timeout=2).json()["running"] == 3,
                       10, "three streams running on the engine")
            os.kill(proc.pid, signal.SIGKILL)
            result = running.result(timeout=20)
    finally:
        proc.stop(timeout=5)
    assert result.failures() == {"IncompleteStream": 3}, result.summary()
