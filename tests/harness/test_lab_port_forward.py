"""A client that goes away, as a pod behind `kubectl port-forward` sees it on a cluster.

On a cluster the kubelet's port-forward (containerd's CRI, v2.1.4) closes the pod's connection a
second after the client's stream ends; the production-stack router then stops relaying a streamed
reply, and vLLM aborts the request (its `with_cancellation`). A non-streamed request is different:
the router waits for the engine's headers, which vLLM sends only with the finished reply, so the
engine computes it to the end (production-stack issue #634). KWOK's own tunnel would keep the pod's
connection open, and the engine would finish every abandoned request: the lab relays each pod
port-forward through `socat -t 1` instead (lab/manifests.py port_forward; docs/lab.md).

The claims, with the tutorial's step-2 release on the lab, through the page's port-forward to the
router: abandoned streamed requests leave the engine within the close delay and a margin; abandoned
non-streamed ones are still on it for longer than the close delay and a second."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vllm_stack_e2e import kube as k
from vllm_stack_e2e import kubectl as kubectl_cli
from vllm_stack_e2e import tools, waits
from vllm_stack_e2e import values as V
from vllm_stack_e2e.backends.lab import LabBackend
from vllm_stack_e2e.floors import MARGIN
from vllm_stack_e2e.helm import STANDIN_CHART
from vllm_stack_e2e.lab.manifests import LAB_LABEL, PORT_FORWARD_CLOSE_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.lab]
VALUES = Path(__file__).resolve().parents[2] / "values"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
REQUESTS = 48  # six times what the lab's engine runs at once (24576 KV tokens, ~3080 per request): ~20 s of work
# Long enough for every request to reach the engine (it queues most of them), short of the first finishing.
SEND_SECONDS = 3.0


async def _abandon(router: str, stream: bool) -> None:
    """Send REQUESTS of the page's shape (3000-token prompt, max_tokens 80), then go away."""
    body = {"model": MODEL, "prompt": "Hi " * 3000, "max_tokens": 80, "stream": stream}

    async def one(client: httpx.AsyncClient) -> None:
        if stream:
            async with client.stream("POST", f"{router}/v1/completions", json=body) as reply:
                async for _ in reply.aiter_lines():
                    pass
        else:
            await client.post(f"{router}/v1/completions", json=body)

    clients = [httpx.AsyncClient(timeout=600) for _ in range(REQUESTS)]
    tasks = [asyncio.ensure_future(one(client)) for client in clients]
    await asyncio.wait(tasks, timeout=SEND_SECONDS)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.aclose()


def _on_engine(engine: str) -> int:
    state = httpx.get(f"{engine}/sim/state", timeout=5).json()
    return int(state["running"]) + int(state["waiting"])


@pytest.fixture(scope="module")
def abandoned(backend: Any, run_config: Any) -> Iterator[dict[str, Any]]:
    """For each mode, what stayed on the engine after the client left: the wait for it to empty,
    within the close delay and the margin."""
    if not isinstance(backend, LabBackend):
        pytest.skip("the lab's own port-forwards (CLUSTER=lab)")
    kube, ns = backend.kube, f"vse-pf-{run_config.run_id.lower()}"[:63]
    plan = V.plan_values([VALUES / "tutorial-step2.yaml"], ())
    kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "pf"}}})
    budget = PORT_FORWARD_CLOSE_SECONDS + MARGIN
    seen: dict[str, waits.Seen[int]] = {}
    try:
        backend.helm.install("vllm", STANDIN_CHART, files=plan.files, sets=list(plan.sets), namespace=ns, wait=False,
                             timeout=120)
        for selector in ("model=llama3", "environment=router"):
            kube.wait_for_list(*k.POD, ns, selector, lambda pods: any(k.pod_ready(p) for p in pods), 120,
                               f"pod {selector} Ready")
        with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/vllm-router-service", 80,
                                      budget=60) as router_port, \
                kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/vllm-llama3-engine-service", 80,
                                         budget=60) as engine_port:
            router, engine = f"http://127.0.0.1:{router_port}", f"http://127.0.0.1:{engine_port}"
            waits.until(waits.polling(lambda: httpx.get(f"{router}/v1/models", timeout=5).json(), 0.5),
                        lambda body: isinstance(body, dict) and bool(body.get("data")), 30,
                        "the router lists the model").expect()
            asyncio.run(_abandon(router, stream=True))
            seen["streamed"] = waits.until(waits.polling(lambda: _on_engine(engine), 0.25), lambda n: n == 0, budget,
                                           "the engine empty after the streamed requests' client left",
                                           show=lambda n: f"{n} running or waiting")
            if seen["streamed"].reached:  # else the next mode would start on a busy engine
                asyncio.run(_abandon(router, stream=False))
                # A streamed request is gone within the close delay; a non-streamed one is not.
                seen["non-streamed"] = waits.holds(
                    waits.polling(lambda: _on_engine(engine), 0.25), lambda n: n > 0, PORT_FORWARD_CLOSE_SECONDS + 1,
                    "the non-streamed requests still on the engine after their client left",
                    show=lambda n: f"{n} running or waiting")
        yield seen
    finally:
        backend.helm.uninstall("vllm", namespace=ns)
        if kube.delete(*k.NAMESPACE, ns):
            kube.wait_gone(*k.NAMESPACE, ns, None, budget=120)


def test_an_abandoned_streamed_request_is_aborted_on_the_engine(abandoned: dict[str, Any]) -> None:
    seen = abandoned["streamed"]
    assert seen.reached, seen.explain()


def test_an_abandoned_non_streamed_request_runs_on(abandoned: dict[str, Any]) -> None:
    """The router waits for a non-streamed reply's headers, so the client leaving reaches no one."""
    if "non-streamed" not in abandoned:
        pytest.skip("the streamed case left the engine busy (see its claim)")
    held = abandoned["non-streamed"]
    assert held.held, held.explain()
