"""A chart-set API key on the lab (`servingEngineSpec.vllmApiKey`): the chart stores it in
`<release>-secrets`, the engine and router pods reference it (`secretKeyRef`), the data plane
resolves the reference as a kubelet does, and the engine then refuses requests without the key,
as vLLM does — through the router too, which needs the same key to discover the engine at all.
The key never shows in the pods' logs."""

from __future__ import annotations

import secrets
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
from vllm_stack_e2e.helm import STANDIN_CHART
from vllm_stack_e2e.lab.manifests import LAB_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.lab]
VALUES = Path(__file__).resolve().parents[2] / "values"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BODY = {"model": MODEL, "prompt": "Hi", "max_tokens": 2}


@pytest.fixture(scope="module")
def keyed(backend: Any, run_config: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The tutorial's step-2 release with an API key, the router's answers with and without it,
    and the engine's directly through its Service."""
    if not isinstance(backend, LabBackend):
        pytest.skip("the data plane's reading of pod specs is the lab's (CLUSTER=lab)")
    kube, ns = backend.kube, f"vse-key-{run_config.run_id.lower()}"[:63]
    key = "vse-" + secrets.token_hex(12)
    overlay = tmp_path_factory.mktemp("api-key") / "api-key.yaml"
    overlay.write_text(f"servingEngineSpec:\n  vllmApiKey: {key}\n")
    plan = V.plan_values([VALUES / "tutorial-step2.yaml", overlay], ())
    kube.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {LAB_LABEL: "key"}}})
    try:
        backend.helm.install("vllm", STANDIN_CHART, files=plan.files, sets=list(plan.sets), namespace=ns, wait=False,
                             timeout=120)
        kube.wait_for_list(*k.POD, ns, "model=llama3", lambda pods: any(k.pod_ready(p) for p in pods), 120,
                           "the engine pod Ready")
        with kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/vllm-router-service", 80,
                                      budget=60) as router_port, \
                kubectl_cli.port_forward(tools.kubectl(), backend.kubeconfig, ns, "svc/vllm-llama3-engine-service", 80,
                                         budget=60) as engine_port:
            router, engine = f"http://127.0.0.1:{router_port}", f"http://127.0.0.1:{engine_port}"
            listed = waits.until(waits.polling(lambda: httpx.get(f"{router}/v1/models", timeout=5).json(), 0.5),
                                 lambda body: isinstance(body, dict) and MODEL in [m["id"] for m in body.get("data", [])],
                                 30, "the router lists the model (it asked the engine with the key)")
            auth = {"Authorization": f"Bearer {key}"}
            answers = {
                "router, no key": httpx.post(f"{router}/v1/completions", json=BODY, timeout=30),
                "router, wrong key": httpx.post(f"{router}/v1/completions", json=BODY, timeout=30,
                                                headers={"Authorization": "Bearer not-the-key"}),
                "router, key": httpx.post(f"{router}/v1/completions", json=BODY, timeout=30, headers=auth),
                "engine, no key": httpx.post(f"{engine}/v1/completions", json=BODY, timeout=30),
                "engine, key": httpx.post(f"{engine}/v1/completions", json=BODY, timeout=30, headers=auth),
                "engine /health, no key": httpx.get(f"{engine}/health", timeout=10),
                "engine /metrics, no key": httpx.get(f"{engine}/metrics", timeout=10),
            }
        logs = {pod["metadata"]["name"]: kube.pod_logs(ns, pod["metadata"]["name"])
                for pod in kube.list(*k.POD, namespace=ns)}
        yield {"key": key, "listed": listed, "answers": answers, "logs": logs}
    finally:
        backend.helm.uninstall("vllm", namespace=ns)
        if kube.delete(*k.NAMESPACE, ns):
            kube.wait_gone(*k.NAMESPACE, ns, None, budget=120)


def _codes(answers: dict[str, httpx.Response]) -> dict[str, int]:
    return {what: reply.status_code for what, reply in answers.items()}


def test_the_router_discovers_the_keyed_engine(keyed: dict[str, Any]) -> None:
    """The router sends the key it gets from the chart's Secret when it asks the engine's /v1/models."""
    assert keyed["listed"].reached, keyed["listed"].explain()


def test_requests_without_the_key_are_refused(keyed: dict[str, Any]) -> None:
    answers = keyed["answers"]
    refused = {what: (reply.status_code, reply.text[:80]) for what, reply in answers.items()
               if what in ("router, no key", "router, wrong key", "engine, no key")}
    assert all(code == 401 and "Unauthorized" in text for code, text in refused.values()), refused


def test_requests_with_the_key_are_served(keyed: dict[str, Any]) -> None:
    codes = _codes(keyed["answers"])
    assert (codes["router, key"], codes["engine, key"]) == (200, 200), codes


def test_health_and_metrics_stay_open(keyed: dict[str, Any]) -> None:
    """vLLM leaves its probes' and Prometheus's endpoints public."""
    codes = _codes(keyed["answers"])
    assert (codes["engine /health, no key"], codes["engine /metrics, no key"]) == (200, 200), codes


def test_the_key_never_shows_in_the_pods_logs(keyed: dict[str, Any]) -> None:
    leaked = [pod for pod, text in keyed["logs"].items() if keyed["key"] in text]
    assert keyed["logs"] and not leaked, f"the API key is in the logs of {leaked}"
