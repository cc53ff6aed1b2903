"""The GPU-cluster path rehearsed on the lab: `make e2e CLUSTER=current` with the lab's kubeconfig.

The `current` backend's own code runs end to end — a private copy of the kubeconfig, KEDA and
Prometheus found present (never installed or removed by it), the chart from a local path, the
router and Prometheus reached by `kubectl port-forward` through the API server, KEDA's metrics
through the API server's pod proxy (refused on KWOK's nodes, saying why: the proxy would dial a
simulated pod IP). Its claims and defects must be the lab backend's — the page's current edition,
as the suite's `tutorial-current-edition` run saw it on the same lab — and while it runs no
connection of the harness or the lab may leave loopback (`ss -tanp`, sampled every half second).

A subprocess run on the lab, in its own namespace, like the break overlays."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _inner import InnerRun, junit_outcomes, reports_for
from _lab import with_observability_and_keda

from vllm_stack_e2e import loopback
from vllm_stack_e2e.backends import Backend

pytestmark = pytest.mark.e2e

RUN_BUDGET = 900
# The lab backend's run of the same edition in this suite (vllm_stack_e2e.suiteplan), to compare with.
LAB_RUN = "tutorial-current-edition"


class Rehearsal:
    def __init__(self, run: InnerRun, reports: Path, watch: loopback.Watch) -> None:
        self.run, self.reports, self.watch = run, reports, watch

    @property
    def record(self) -> dict:
        found = sorted(self.reports.glob("*/run.json"))
        return json.loads(found[-1].read_text()) if found else {}


@pytest.fixture(scope="module")
def rehearsal(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    if backend.name != "lab":
        pytest.skip("rehearses the current backend against the lab; this run's backend is a cluster already")
    reports: Path = reports_for("current-backend", tmp_path_factory)
    env = {"CLUSTER": "current", "KUBECONFIG": str(backend.kubeconfig), "VLLM_CHART": backend.chart().ref,
           "PROFILE": "fast", "HPA_SYNC_SECONDS": f"{backend.config.hpa_sync_seconds:g}",
           "EDITION": "integrated-monitoring"}
    # KEDA found present, as on a GPU cluster that has it (the current backend installs it from
    # KEDA's chart repository, which the lab cannot reach): the suite's shared one, else the lab's.
    with with_observability_and_keda(backend):
        watch = loopback.Watch().start()
        run = InnerRun("tests/e2e", reports, args=("-m", "not beyond"), env={**env, "ENGINE": ""})
        try:
            run.wait(RUN_BUDGET, "for the page's steps on CLUSTER=current against the lab")
        finally:
            run.kill()
            watch.stop()
    (reports / "loopback.json").write_text(json.dumps(
        {"samples": watch.samples, "interval": watch.interval, "error": watch.error,
         "ours": [str(c) for c in watch.ours], "others": [str(c) for c in watch.others]}, indent=1))
    print(f"[vse] loopback: {watch.explain()} (every connection seen: {reports / 'loopback.json'})")
    return Rehearsal(run, reports, watch)


def test_the_current_backend_ran_the_pages_steps_against_the_lab(rehearsal: Rehearsal) -> None:
    record = rehearsal.record
    assert record.get("backend") == "current", f"run.json backend {record.get('backend')!r}; " \
        f"last lines: {rehearsal.run.last_lines()}"
    outcomes = rehearsal.run.outcomes()
    bad = {name: o for name, o in outcomes.items() if o in ("failed", "error")}
    assert outcomes and not bad, f"failed on CLUSTER=current: {bad}; last lines: {rehearsal.run.last_lines()}"


def test_its_claims_and_defects_are_the_lab_backends(rehearsal: Rehearsal) -> None:
    """Same tests, same outcomes, same strict xfails as the lab backend's run of the edition; a test
    the backends may answer differently is named with why."""
    lab_junit = Path(os.environ.get("REPORTS_DIR", "/nonexistent")).parent / f"junit-{LAB_RUN}.xml"
    if not lab_junit.is_file():
        pytest.skip(f"no {LAB_RUN} run in this suite to compare with ({lab_junit} absent): run it with "
                    f"`make test ONLY=shared,{LAB_RUN},current-backend,shared-down`")
    lab = junit_outcomes(lab_junit)
    mine = rehearsal.run.outcomes()
    differ = {name: (lab.get(name), mine.get(name)) for name in set(lab) | set(mine) if lab.get(name) != mine.get(name)}
    assert not differ, f"(lab backend, current backend) outcomes differ: {differ}"


def test_no_connection_left_loopback(rehearsal: Rehearsal) -> None:
    watch = rehearsal.watch
    assert watch.samples > 0, watch.explain()
    assert not watch.ours, watch.explain()


def test_kedas_metrics_were_refused_on_kwoks_nodes_saying_why(rehearsal: Rehearsal) -> None:
    """The pod proxy path is skipped on the lab, not dialled: the timelines say why they hold no
    KEDA reading."""
    unread = set()
    for path in rehearsal.reports.glob("*/timelines/*.json"):
        unread.add(str(json.loads(path.read_text()).get("keda_unread") or ""))
    assert unread and all("KWOK node" in why and "pod proxy" in why for why in unread), unread

