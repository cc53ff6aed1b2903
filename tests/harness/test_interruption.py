"""An interrupted run cleans up what it created and nothing else: a run of the suite is
started as a subprocess (as a user would), sent SIGINT in a phase — install, scale-up,
fallback — and afterwards the cluster holds nothing of that run, while the lab it reused
and anything that existed before are still there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _inner import InnerRun, reports_for

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.config import RUN_LABEL

pytestmark = pytest.mark.e2e

PHASES = {
    # phase: (test module, the line that says the run is in that phase)
    "install": ("tests/e2e/test_step2_vllm.py", r"step 2: helm install"),
    "scale-up": ("tests/e2e/test_step6_scale_up.py", r"driving load through"),
    "fallback": ("tests/e2e/test_step7c_fallback.py", r"metric source broken"),
}


@pytest.fixture
def interrupted(request: pytest.FixtureRequest, backend: Any,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the phase's module, interrupt it in that phase, return what it printed."""
    module, marker = PHASES[request.param]
    before = {"keda": backend.kube.get(*k.APISERVICE, "v1beta1.external.metrics.k8s.io") is not None,
              "monitoring": backend.kube.get(*k.NAMESPACE, "monitoring") is not None}
    # tmp_path_factory, not tmp_path: pytest's tmp_path teardown fails when a run is itself
    # interrupted (SIGTERM) during this fixture's setup.
    run = InnerRun(module, reports_for(f"interrupt-{request.param}", tmp_path_factory))
    try:
        header = run.wait_for_line(r"vllm-stack-e2e run \S+", 120)
        run.wait_for_line(marker, 300)
        code = run.interrupt_and_wait(240)
    finally:
        run.kill()
    yield {"run_id": header.split("vllm-stack-e2e run ", 1)[1].split()[0], "code": code, "lines": run.lines,
           "before": before}


@pytest.mark.parametrize("interrupted", list(PHASES), indirect=True)
def test_interrupted_run_leaves_nothing_behind(interrupted: dict[str, Any], backend: Any) -> None:
    run_id, lines = interrupted["run_id"], interrupted["lines"]
    assert interrupted["code"] == 2, "\n".join(lines[-30:])  # pytest's "interrupted" exit status
    namespaces = backend.kube.list(*k.NAMESPACE, label_selector=f"{RUN_LABEL}={run_id}")
    assert not namespaces, f"run {run_id} left namespaces {[n['metadata']['name'] for n in namespaces]}"
    releases = [r for r in backend.helm.list_releases(all_namespaces=True) if run_id.lower() in r.get("namespace", "")]
    assert not releases, releases
    # KEDA and observability are as they were before the run: removed if it installed them, kept if not.
    keda_now = backend.kube.get(*k.APISERVICE, "v1beta1.external.metrics.k8s.io") is not None
    monitoring_now = backend.kube.get(*k.NAMESPACE, "monitoring") is not None
    assert (keda_now, monitoring_now) == (interrupted["before"]["keda"], interrupted["before"]["monitoring"]), \
        [ln for ln in lines if "installed by this run" in ln]
    assert backend.ready(), "the lab the interrupted run reused must still be up"
