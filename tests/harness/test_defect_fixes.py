"""The current edition's upstream defects are fixed by the harness's printed fix: a run of steps
5 and 6 with FIX_DEFECTS=6,7 must turn every claim the defects made strict xfails into a pass —
the proof that the xfail is the defect's doing and that the fix a user is shown works. (Defect 3
stays: its claim needs sum(), which this run does not ask for, so it must still be an xfail.)

The same stack then serves the two-stacks scenario (tests/e2e/test_beyond_two_stacks.py), which
needs a current-edition stack whose KEDA reads its Prometheus: its two page claims are strict
xfails of defects 8 and 9, and the query with the run's namespace selected reads only its own stack.

Like the break overlays, a subprocess run on the same lab, in its own namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inner import InnerRun, reports_for

pytestmark = pytest.mark.e2e

FIXED = ("test_scaledobject_ready", "test_hpa_reads_its_external_metric", "test_trigger_query_matches_a_scraped_series",
         "test_queue_rises_above_threshold_under_load", "test_replicas_grow_under_load")
TWO_STACKS = {"test_a_second_stack_of_the_page_installs_beside_the_first": "xfailed",
              "test_the_second_stack_queues": "passed",
              "test_the_pages_query_reads_only_its_own_stack": "xfailed",
              "test_with_its_namespace_selected_the_query_reads_only_its_own_stack": "passed"}
RUN_BUDGET = 900


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    reports: Path = reports_for("fix-defects", tmp_path_factory)
    run = InnerRun("tests/e2e/test_step5_autoscaler.py", reports,
                   args=("tests/e2e/test_step6_scale_up.py", "tests/e2e/test_beyond_two_stacks.py"),
                   env={"EDITION": "integrated-monitoring", "FIX_DEFECTS": "6,7"})
    try:
        run.wait(RUN_BUDGET, "for steps 5 and 6 and two stacks with FIX_DEFECTS=6,7")
    finally:
        run.kill()
    return run


def test_fix_defects_6_and_7_turn_their_xfails_into_passes(fixed: InnerRun) -> None:
    outcomes = fixed.outcomes()
    assert {name: outcomes.get(name) for name in FIXED} == dict.fromkeys(FIXED, "passed"), \
        f"outcomes: {outcomes}; last lines: {fixed.last_lines()}"
    assert outcomes.get("test_scaledobject_stays_ready_past_one_replica") == "xfailed", outcomes
    assert any("harness fix for upstream defect(s) 6, 7" in line for line in fixed.lines), "the fix is printed"


def test_two_stacks_of_the_current_edition_show_defects_8_and_9(fixed: InnerRun) -> None:
    outcomes = fixed.outcomes()
    assert {name: outcomes.get(name) for name in TWO_STACKS} == TWO_STACKS, \
        f"outcomes: {outcomes}; last lines: {fixed.last_lines()}"
    assert fixed.proc.returncode == 0, f"pytest exit {fixed.proc.returncode}; last lines: {fixed.last_lines()}"
