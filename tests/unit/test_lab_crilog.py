"""crilog: a command's output as a CRI container log (what `kubectl logs` reads via KWOK).
Real child processes; no cluster."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _waits import wait_for

from vllm_stack_e2e.lab.crilog import cri_line

CRI = re.compile(r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<stream>stdout|stderr) F (?P<text>.*)")




def crilog(out: Path, *command: str) -> list[str]:
    return [sys.executable, "-m", "vllm_stack_e2e.lab.crilog", "--out", str(out), "--", *command]


def parse(path: Path) -> list[tuple[dt.datetime, str, str]]:
    """Every line must be a CRI line; returns (time, stream, text) each."""
    rows = []
    for line in path.read_text().splitlines():
        match = CRI.fullmatch(line)
        assert match, f"not a CRI log line: {line!r}"
        stamp = dt.datetime.strptime(match["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        rows.append((stamp, match["stream"], match["text"]))
    return rows


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[bytes]]]:
    """crilog processes a test starts; any still running are stopped by PID afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_cri_line_format() -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    assert cri_line("stdout", "hello\n", now) == "2025-01-02T03:04:05.678901Z stdout F hello\n"
    assert cri_line("stderr", "no newline", now) == "2025-01-02T03:04:05.678901Z stderr F no newline\n"
    assert cri_line("stdout", "\n", now) == "2025-01-02T03:04:05.678901Z stdout F \n", "an empty line stays a line"


def test_cri_line_defaults_to_now_in_utc(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    (tmp_path / "line.log").write_text(cri_line("stdout", "x"))
    after = dt.datetime.now(dt.timezone.utc)
    ((stamp, stream, text),) = parse(tmp_path / "line.log")
    assert before <= stamp <= after, f"{stamp} is not the current UTC time"
    assert (stream, text) == ("stdout", "x")


def test_streams_are_tagged_and_the_exit_code_is_the_commands(tmp_path: Path) -> None:
    out = tmp_path / "pod.log"
    started = dt.datetime.now(dt.timezone.utc)
    proc = subprocess.run(crilog(out, sys.executable, "-c",
                                 "print('a'); import sys; print('b', file=sys.stderr); sys.exit(3)"),
                          capture_output=True, timeout=20, check=False)
    assert proc.returncode == 3
    assert proc.stdout == b"" and proc.stderr == b"", "crilog writes only to its file"
    rows = parse(out)
    assert sorted((stream, text) for _, stream, text in rows) == [("stderr", "b"), ("stdout", "a")]
    assert all(started - dt.timedelta(seconds=1) <= stamp <= dt.datetime.now(dt.timezone.utc) for stamp, _, _ in rows)


def test_the_log_is_appended_to_across_restarts(tmp_path: Path) -> None:
    out = tmp_path / "pod.log"
    for word in ("first", "second"):
        subprocess.run(crilog(out, "echo", word), timeout=20, check=True)
    assert [text for _, _, text in parse(out)] == ["first", "second"]


def test_multi_line_and_unterminated_output(tmp_path: Path) -> None:
    out = tmp_path / "pod.log"
    subprocess.run(crilog(out, "printf", "one\\n\\ntwo\\nlast-without-newline"), timeout=20, check=True)
    assert [(stream, text) for _, stream, text in parse(out)] == [
        ("stdout", "one"), ("stdout", ""), ("stdout", "two"), ("stdout", "last-without-newline")]


def test_sigterm_is_passed_on_to_the_command(tmp_path: Path, running: list[subprocess.Popen[bytes]]) -> None:
    out = tmp_path / "pod.log"
    child = ("import signal, sys\n"
             "signal.signal(signal.SIGTERM, lambda *_: (print('got SIGTERM', flush=True), sys.exit(0)))\n"
             "print('ready', flush=True)\n"
             "signal.pause()\n")
    proc = subprocess.Popen(crilog(out, sys.executable, "-c", child), start_new_session=True)
    running.append(proc)
    wait_for("the command is ready", lambda: out.exists() and "F ready" in out.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, "the command's own exit code (0 from its SIGTERM handler)"
    assert [text for _, _, text in parse(out)] == ["ready", "got SIGTERM"]


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "vllm_stack_e2e.lab.crilog", "--out", str(tmp_path / "x.log"), "--"],
                          capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 2 and "no command given" in proc.stderr
