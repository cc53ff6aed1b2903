"""Wait accounting: the time a run spends in named waits, counted once per outermost wait on
the main thread."""

from __future__ import annotations

import threading
import time

import pytest

from vllm_stack_e2e import waits


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
    assert waits.totals() == {"seconds": 0.0, "waits": 0}


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
