"""A run of the suite inside a test: pytest in a subprocess, as a user starts it, its output
collected line by line and its JUnit XML read back. Used by the interruption test and by the
break-overlay tests (a claim broken on purpose must fail, and only that claim)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from vllm_stack_e2e import waits
from vllm_stack_e2e.config import REPO_ROOT
from vllm_stack_e2e.errors import WaitTimeout

if TYPE_CHECKING:
    import pytest


def reports_for(name: str, tmp_path_factory: "pytest.TempPathFactory") -> Path:
    """Where an inner run writes its reports: under the outer run's REPORTS_DIR when there is one
    (`make test` gives each run its own), so its run.json, timelines and failure evidence stay with
    the suite's; else a temporary folder."""
    outer = os.environ.get("REPORTS_DIR")
    if outer:
        folder = Path(outer) / f"inner-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp(name) / "reports"


class InnerRun:
    """`python -m pytest MODULE -k …` in a subprocess with its own reports folder."""

    def __init__(self, module: str, reports: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.junit = reports / "junit.xml"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("PYTEST_ADDOPTS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", module, "-q", "-s", "-p", "no:cacheprovider",
             "--reports-dir", str(reports), f"--junitxml={self.junit}", *args],
            cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # A run started in the background inherits SIGINT ignored; a user's run has Ctrl-C.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def last_lines(self, count: int = 12) -> str:
        return " | ".join(self.lines[-count:])

    def wait_for_line(self, pattern: str, budget: float) -> str:
        """The first line matching `pattern`; WaitTimeout (with the last lines) if none comes."""
        regex = re.compile(pattern)

        def first() -> str | None:
            return next((ln for ln in self.lines if regex.search(ln)), None)

        seen = waits.until(waits.polling(first, 0.25), lambda line: line is not None or self.proc.poll() is not None,
                           budget, f"the run prints /{pattern}/",
                           show=lambda _line: "running" if self.proc.poll() is None else "exited")
        if seen.state is None:
            raise WaitTimeout(f"the run never printed /{pattern}/ within {budget:.0f}s; last lines: {self.last_lines(8)}")
        return str(seen.state)

    def interrupt_and_wait(self, budget: float) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.wait(budget, "of SIGINT")

    def wait(self, budget: float, after: str = "") -> int:
        try:
            return self.proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"the run did not exit within {budget:.0f}s {after}; its last lines: "
                              + self.last_lines()) from None
        finally:
            self._reader.join(timeout=5)

    def kill(self, grace: float = 180) -> None:
        """Stop a run that is still going: Ctrl-C first, so it tears down what it installed (a
        killed run would leave its stack on the lab for the next one), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def outcomes(self) -> dict[str, str]:
        """test name → passed | failed | error | skipped | xfailed, from the run's JUnit XML."""
        return junit_outcomes(self.junit)


def junit_outcomes(junit: Path) -> dict[str, str]:
    """test name → passed | failed | error | skipped | xfailed, from a JUnit XML file."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "?")
        kinds = {child.tag: child for child in case}
        if "error" in kinds:
            found[name] = "error"
        elif "failure" in kinds:
            found[name] = "failed"
        elif "skipped" in kinds:
            found[name] = "xfailed" if kinds["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            found[name] = "passed"
    return found
