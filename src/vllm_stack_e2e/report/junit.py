"""The run's JUnit XML: copied next to the report, and its failure messages read back."""

from __future__ import annotations

import datetime as dt
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import REPO_ROOT
from ..redaction import redact_text
from .model import FAILING, JUNIT_COPY, TestResult, shorten

# ---- JUnit -------------------------------------------------------------------------------------
def _resolve(path_text: str, run_dir: Path) -> Path | None:
    if not path_text:
        return None
    path = Path(path_text)
    candidates = [path] if path.is_absolute() else [run_dir / path, REPO_ROOT / path, Path.cwd() / path]
    return next((c for c in candidates if c.is_file()), None)


def _junit_started(path: Path) -> float | None:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    stamp = suite.get("timestamp") if suite is not None else None
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def copy_junit(run: Mapping[str, Any], run_dir: Path) -> tuple[Path | None, str]:
    """Copy the run's JUnit XML beside it as junit.xml (the Makefile's path is reused by every
    run, so a file whose timestamp is not this run's is left alone). Returns (copy, note)."""
    source_text = str(run.get("junit") or "")
    target = run_dir / JUNIT_COPY
    source = _resolve(source_text, run_dir)
    if source is not None and source.resolve() == target.resolve():
        return target, "beside the run"
    if source is None:
        if target.is_file():
            return target, f"copied earlier from {source_text}" if source_text else "beside the run"
        return None, f"{source_text} (not found)" if source_text else "none (run without --junitxml)"
    started = _junit_started(source)
    run_started = float(run.get("started") or 0.0)
    if started is not None and run_started and abs(started - run_started) > 120:
        if target.is_file():
            return target, f"copied earlier from {source_text}"
        return None, f"{source_text} now holds another run's results (not copied)"
    shutil.copyfile(source, target)
    return target, f"copied from {source_text}"


def _junit_key(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return path.removesuffix(".py").replace("/", ".") + "." + rest.replace("::", ".")


def junit_failures(path: Path) -> dict[str, str]:
    """First line of each failure/error message in a JUnit XML, keyed like `_junit_key(nodeid)`."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return {}
    found: dict[str, str] = {}
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            element = case.find(tag)
            if element is None:
                continue
            text = element.get("message") or (element.text or "").strip()
            line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            if line:
                found[f"{case.get('classname')}.{case.get('name')}"] = redact_text(shorten(line, 400))
            break
    return found


def with_junit_messages(tests: Sequence[TestResult], junit: Path | None) -> list[TestResult]:
    """Failing tests' messages completed from the JUnit XML (run.json may hold only the file:line)."""
    messages = junit_failures(junit) if junit is not None else {}
    out = []
    for test in tests:
        detail = messages.get(_junit_key(test.nodeid)) if test.outcome in FAILING else None
        if detail and detail not in test.message:
            test = replace(test, message=f"{detail} ({test.message})" if test.message else detail)
        out.append(test)
    return out


def junit_counts(path: Path) -> dict[str, int]:
    """passed / failed / error / skipped / xfailed from a JUnit file ({} when absent)."""
    counts: dict[str, int] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts
    for case in root.iter("testcase"):
        kinds = {child.tag: child for child in case}
        if "error" in kinds:
            kind = "error"
        elif "failure" in kinds:
            kind = "failed"
        elif "skipped" in kinds:
            kind = "xfailed" if kinds["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            kind = "passed"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
