"""`make test`'s scheduler (vllm_stack_e2e.suite): which runs may share the lab at a time, and the
plan's own declarations — the collisions found, each a reason two runs must not overlap."""

from __future__ import annotations

import sys
from pathlib import Path

from vllm_stack_e2e import suite, suiteplan
from vllm_stack_e2e.suite import CONTROL_PLANE, KEDA, Job

STACK = frozenset({KEDA, CONTROL_PLANE})


def test_a_run_that_disrupts_a_component_never_runs_beside_one_that_needs_it() -> None:
    crash = Job("keda-disruption", "beyond", uses=STACK, disrupts=frozenset({KEDA}))
    page = Job("page", "tutorial", uses=STACK)
    unit = Job("unit", "unit")
    assert crash.clashes(page) and page.clashes(crash), "either order"
    assert "disrupts keda" in (crash.clashes(page) or "")
    assert crash.clashes(unit) is None, "the unit tests need nothing of the lab"


def test_a_run_that_reads_every_engine_runs_with_no_other_engines() -> None:
    """The first edition's Prometheus scrapes every namespace's engines and the page's query selects
    none (upstream defect 9): its run must be the only one with engines on the lab."""
    first = Job("first", "tutorial", uses=STACK, engines=True, reads_all_engines=True)
    other = Job("other", "beyond", uses=STACK, engines=True)
    assert "reads every engine" in (first.clashes(other) or "")
    assert first.clashes(Job("integration", "integration")) is None


def test_runs_of_one_lane_never_overlap() -> None:
    """The current edition's release `vllm` names cluster-scoped objects (upstream defect 8)."""
    a, b = Job("a", "t", lane="subchart"), Job("b", "t", lane="subchart")
    assert "share lane subchart" in (a.clashes(b) or "")
    assert Job("c", "t", lane="other").clashes(a) is None


def test_the_scheduler_starts_in_plan_order_what_fits_beside_what_runs() -> None:
    plan = [Job("a", "g", lane="x"), Job("b", "g", lane="x"), Job("c", "g"), Job("d", "g", after=("a",))]
    assert suite.startable(plan, [], set(), jobs=2).name == "a"
    assert suite.startable(plan[1:], [plan[0]], set(), jobs=2).name == "c", "b shares a's lane; d waits for a"
    assert suite.startable(plan[1:], [plan[0], plan[2]], set(), jobs=2) is None, "two run already"
    assert suite.startable([plan[3]], [], {"a"}, jobs=2).name == "d"


def test_the_plan_keeps_every_proof_and_declares_its_collisions() -> None:
    jobs = {job.name: job for job in suiteplan.PLAN}
    both = " ".join(" ".join(j.args) + " " + " ".join(j.env.values()) for j in jobs.values())
    for proof in ("tests/unit", "tests/integration", "observability-script", "test_lab_restart.py",
                  "test_preflight_gpus.py", "test_lab.py", "test_claims_break.py", "test_defect_fixes.py",
                  "test_interruption.py", "test_lab_api_key.py", "test_lab_cluster_dns.py",
                  "test_lab_servicemonitors.py", "test_lab_port_forward.py", "test_beyond_keda_disruption.py"):
        assert proof in both, f"{proof} is not run by make test"
    assert jobs["tutorial-current-edition"].args[:3] == ("tests/e2e", "-m", "not beyond"), "the default edition's page"
    assert jobs["tutorial-first-edition"].reads_all_engines
    assert {j.lane for j in jobs.values() if "integrated-monitoring" in " ".join(j.env.values())
            or j.name == "tutorial-current-edition"} == {"subchart"}
    # Every pytest run that the plan names can clash only through its declarations: none collides
    # with itself, and the last step waits for every run.
    pytest_runs = {j.name for j in jobs.values() if j.action is None and j.group not in ("unit", "integration")}
    assert pytest_runs - {"lab-restart", "tutorial-first-edition", "lab-smoke"} <= set(jobs["shared-down"].after)


def test_the_suite_runs_a_small_plan_and_reports_where_the_time_went(tmp_path: Path) -> None:
    """Two quick pytest runs side by side; exit 1 when one fails, with its log's end printed."""
    ok, bad = tmp_path / "test_ok.py", tmp_path / "test_bad.py"
    ok.write_text("def test_ok():\n    assert True\n")
    bad.write_text("def test_bad():\n    assert 1 == 2, 'one is not two'\n")
    lines: list[str] = []
    plan = [Job("ok", "unit", (str(ok), "-q", "-p", "no:vllm_stack_e2e.plugin")),
            Job("bad", "unit", (str(bad), "-q", "-p", "no:vllm_stack_e2e.plugin"))]
    code = suite.Suite(plan, tmp_path / "out", jobs=2, echo=lines.append).run()
    text = "\n".join(lines)
    assert code == 1, text
    assert "where the time went" in text and "| ok " in text and "| bad " in text
    assert "one is not two" in text, "a failed run's log ends in the suite's output"
    assert (tmp_path / "out" / "suite.json").is_file() and sys.executable


def test_runs_chosen_with_only_keep_their_order_through_the_runs_left_out() -> None:
    """`make test ONLY=shared,tutorial-current-edition,current-backend,shared-down`: `shared` must still
    wait for the lab's cluster (it came after it through runs not chosen) — started beside the
    cluster's creation it raced kwokctl and failed."""
    jobs = {j.name: j for j in suiteplan.plan_jobs(
        suiteplan.PLAN, ["shared", "tutorial-current-edition", "current-backend", "shared-down"])}
    assert jobs["shared"].after == ("lab",)
    assert jobs["tutorial-current-edition"].after == ("shared",)
    assert jobs["current-backend"].after == ("shared", "tutorial-current-edition")
    assert set(jobs["shared-down"].after) == {"shared", "tutorial-current-edition", "current-backend"}
    assert jobs["lab"].after == ()
    alone = {j.name: j for j in suiteplan.plan_jobs(suiteplan.PLAN, ["unit"])}
    assert alone["unit"].after == (), "the unit tests need no lab"
