"""Fixtures for the integration tests: two simulated engines (subprocesses, as the lab runs
them), the router-like gateway (in-process, so tests can also drive it from Python), and a
real Prometheus scraping them every second — Prometheus 3.x when it is built, and Debian's
2.42 — each test running once per version available."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from vllm_stack_e2e import tools
from vllm_stack_e2e.errors import ProvisionError
from vllm_stack_e2e.lab import build
from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec
from vllm_stack_e2e.lab.prometheus import LocalPrometheus, ScrapeTarget
from vllm_stack_e2e.prom import Prometheus
from vllm_stack_e2e.sim.gateway import Gateway
from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim.host import ServerHandle, engine_argv, serve, wait_http_ok

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ZERO_MODEL = "scaled-to-zero"  # known to the gateway, never given an engine by the fixtures
HOST = "127.0.0.1"
# Small and slow on purpose: queues form with a handful of requests and little CPU.
ENGINE_SIM = {"inter-token-latency": 0.05, "kv-cache-tokens": 16384, "prefill-tokens-per-s": 200000}
ENGINE_MAX_NUM_SEQS = 2


@dataclass
class EngineProcess:
    """One `vllm serve` simulator subprocess."""

    url: str
    address: str
    process: ManagedProcess


@dataclass
class PromUnderTest:
    """A running Prometheus, its client and its major version."""

    local: LocalPrometheus
    client: Prometheus
    major: int

    @property
    def version(self) -> str:
        return self.client.version()


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[EngineProcess]]:
    """Two engines for MODEL, each `python -m vllm_stack_e2e.sim serve …` under ManagedProcess."""
    work = tmp_path_factory.mktemp("engines")
    started: list[EngineProcess] = []
    try:
        for index in range(2):
            port = free_port(HOST)
            argv = engine_argv(MODEL, HOST, port, max_num_seqs=ENGINE_MAX_NUM_SEQS,
                               sim={**ENGINE_SIM, "engine-id": "0"})
            proc = ManagedProcess(ProcessSpec(name=f"engine-{index}", argv=argv, log=work / f"engine-{index}.log"),
                                  work / f"engine-{index}.pid")
            proc.start()
            started.append(EngineProcess(url=f"http://{HOST}:{port}", address=f"{HOST}:{port}", process=proc))
        for engine in started:
            wait_http_ok(engine.url + "/health", 15, f"engine {engine.process.spec.name} (log {engine.process.spec.log})")
        yield started
    finally:
        for engine in started:
            engine.process.stop()


@pytest.fixture(scope="session")
def gateway(engines: list[EngineProcess]) -> Iterator[tuple[Gateway, ServerHandle]]:
    """The gateway in front of both engines; also knows ZERO_MODEL, which has no engine."""
    gw = Gateway([MODEL, ZERO_MODEL])
    for engine in engines:
        gw.add_engine(engine.url, MODEL)
    with serve(gw.app, HOST) as handle:
        # One request so the router's counter has a series from the first scrape on.
        httpx.post(handle.url + "/v1/completions", json={"model": MODEL, "prompt": "Hi", "max_tokens": 1}, timeout=10)
        yield gw, handle


def _prometheus_versions() -> list:
    params = []
    if build.is_built("prometheus"):  # never start a build from the tests
        params.append(pytest.param("3", id="prometheus3"))
    params.append(pytest.param("2", id="prometheus2"))
    return params


def _binary(major: str) -> Path:
    if major == "3":
        return tools.prometheus3()
    try:
        return tools.prometheus2()
    except ProvisionError as exc:
        pytest.skip(f"Prometheus 2.x unavailable: {exc}")


@pytest.fixture(scope="session", params=_prometheus_versions())
def prometheus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               engines: list[EngineProcess], gateway: tuple[Gateway, ServerHandle]) -> Iterator[PromUnderTest]:
    """A real Prometheus on a free loopback port scraping the engines and the gateway each second."""
    binary = _binary(request.param)
    local = LocalPrometheus(binary, tmp_path_factory.mktemp(f"prometheus{request.param}"),
                            listen=f"{HOST}:{free_port(HOST)}", scrape_interval="1s")
    targets = [ScrapeTarget.of(e.address, job="vllm-engine", namespace="default",
                               pod=f"vllm-llama3-deployment-vllm-{i}", service="vllm-llama3-engine-service")
               for i, e in enumerate(engines)]
    targets.append(ScrapeTarget.of(f"{HOST}:{gateway[1].port}", job="vllm-router", namespace="default",
                                   service="vllm-router-service"))
    local.set_targets(targets)
    local.start(budget=30)
    try:
        local.client.wait_targets_up(len(targets), budget=15)
        yield PromUnderTest(local=local, client=local.client, major=local.client.major_version())
    finally:
        local.stop()
