"""Wait accounting: the time a run spends in named waits, counted once per outermost wait on
the main thread."""

from __future__ import annotations

import threading
import time

import pytest

from vllm_stack_e2e import waits
from vllm_stack_e2e.errors import WaitTimeout


@pytest.fixture(autouse=True)
def clean() -> None:
    waits.reset()


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_nested_waits_count_once() -> None:
    @waits.timed
    def inner() -> str:
        _spin(0.05)
        return "done"

    with waits.waiting():
        assert inner() == "done"
        _spin(0.05)
    got = waits.totals()
    assert got["waits"] == 1
    assert 0.1 <= got["seconds"] < 0.5


def test_waits_in_other_threads_overlap_the_main_thread_and_do_not_count() -> None:
    def background() -> None:
        with waits.waiting():
            _spin(0.05)

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert waits.totals() == {"seconds": 0.0, "waits": 0, "activities": {}, "log": []}


def test_a_failing_wait_still_counts() -> None:
    @waits.timed
    def gives_up() -> None:
        _spin(0.02)
        raise TimeoutError("budget spent")

    with pytest.raises(TimeoutError):
        gives_up()
    assert waits.totals()["waits"] == 1 and waits.totals()["seconds"] >= 0.02


def test_timed_keeps_the_function_name_and_doc() -> None:
    @waits.timed
    def wait_for_thing() -> None:
        """Doc."""

    assert (wait_for_thing.__name__, wait_for_thing.__doc__) == ("wait_for_thing", "Doc.")


# ---- the engine: until / holds over sources ---------------------------------------------------------
def _states(*values: object) -> waits.Source[object]:
    """A source that yields the given states, then nothing (as a watch that saw no more changes)."""
    def follow(_deadline: float):  # type: ignore[no-untyped-def]
        yield from values
    return follow


def test_until_returns_the_first_state_that_satisfies_with_the_history() -> None:
    seen = waits.until(_states(1, 2, 3, 4), lambda v: v >= 3, 5, "three")  # type: ignore[operator]
    assert (seen.reached, seen.state, [s for _, s in seen.history]) == (True, 3, [1, 2, 3])
    assert seen.expect() == 3 and "reached after" in seen.explain()


def test_until_not_reached_says_what_it_saw_last_and_expect_raises() -> None:
    seen = waits.until(_states(1, 2), lambda v: v > 5, 0.2, "above five", show=lambda v: f"value {v}",
                       hint="raise the load")
    assert not seen.reached and seen.state == 2
    assert seen.explain() == "above five: not reached after 0.2s; last seen value 2 — raise the load"
    with pytest.raises(WaitTimeout, match="above five: not reached"):
        seen.expect()


def test_until_counts_as_one_wait() -> None:
    waits.until(_states(True), bool, 1, "at once")
    assert waits.totals()["waits"] == 1


def test_polling_turns_a_raising_probe_into_a_failed_state_that_never_satisfies() -> None:
    calls = iter([OSError("refused"), 0, 7])

    def probe() -> int:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    seen = waits.until(waits.polling(probe, 0.01), lambda v: v == 7, 5, "seven")
    assert seen.reached and isinstance(seen.history[0][1], waits.Failed)
    failed = waits.until(waits.polling(lambda: 1 / 0, 0.01), lambda _v: True, 0.05, "never")
    assert not failed.reached and "error: ZeroDivisionError" in failed.explain()


def test_holds_records_every_state_and_where_it_broke() -> None:
    held = waits.holds(_states(2, 2, 1, 2), lambda v: v >= 2, 5, "at least two")  # type: ignore[operator]
    assert not held.held and held.states() == [2, 2, 1] and "broke" in held.explain()
    kept = waits.holds(_states(2, 3), lambda v: v >= 2, 5, "at least two")  # type: ignore[operator]
    assert kept.held and kept.states() == [2, 3] and kept.expect() == [2, 3]
    at_start = waits.holds(_states(0), lambda v: v >= 2, 5, "at least two")  # type: ignore[operator]
    assert "broke at the start" in at_start.explain()


def test_every_wait_reports_progress_once_per_state_to_the_observers() -> None:
    lines: list[tuple[str, str]] = []

    def observe(description: str, seen: str, _elapsed: float, _budget: float) -> None:
        lines.append((description, seen))

    waits.add_observer(observe)
    try:
        waits.until(_states(1, 2, 3), lambda v: v == 3, 5, "three", show=lambda v: f"v={v}")
    finally:
        waits.remove_observer(observe)
    assert lines == [("three", "v=1"), ("three", "v=2")]  # the satisfying state ends the wait


def test_check_carries_its_words() -> None:
    at_least_two = waits.Check(lambda v: v >= 2, "≥ 2")
    below_five = waits.Check(lambda v: v < 5, "< 5")
    both = at_least_two & below_five
    assert (both(3), both(6), str(both)) == (True, False, "≥ 2 and < 5")


def test_activities_are_counted_apart_from_waits_and_not_inside_them() -> None:
    with waits.spent("helm"):
        _spin(0.02)
    with waits.waiting():
        with waits.spent("helm"):  # helm's own --wait inside a named wait: already the wait's time
            _spin(0.02)
    got = waits.totals()
    assert got["waits"] == 1 and 0.02 <= got["activities"]["helm"] < 0.04, got


def test_an_hpa_reads_its_metric_only_with_a_value() -> None:
    """A failed fetch leaves `currentMetrics: [{type: ""}]` on the HPA: not a reading."""
    from vllm_stack_e2e import kube as k

    assert not k.hpa_reads_external_metric(None)
    assert not k.hpa_reads_external_metric({"status": {"currentMetrics": [{"type": ""}]}})
    assert k.hpa_reads_external_metric({"status": {"currentMetrics": [
        {"type": "External", "external": {"metric": {"name": "s0-prometheus"}, "current": {"averageValue": "0"}}}]}})


def test_every_counted_wait_is_logged_with_what_it_waited_for() -> None:
    """run.json's "waiting.log": the named waits of a run, in order, each with its duration."""
    waits.until(waits.polling(lambda: 1, 0.01), lambda v: v == 1, 1, "the first thing")
    waits.holds(waits.polling(lambda: 1, 0.01), lambda v: v == 1, 0.03, "the second thing")
    log = waits.totals()["log"]
    assert [entry["what"] for entry in log] == ["the first thing", "the second thing"]
    assert all(entry["seconds"] >= 0 and entry["at"] > 0 for entry in log)
    assert log[1]["seconds"] >= 0.03
