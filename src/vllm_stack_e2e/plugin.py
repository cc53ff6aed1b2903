"""pytest plugin: options, markers, and the session fixtures that stand the stack up in the
tutorial's order — observability → vLLM release → KEDA → upgrade with KEDA enabled — and tear
it down in reverse, on failure and on Ctrl-C (SIGTERM too) as well.

Loaded by the root conftest.py and by the `pytest11` entry point (same name, loaded once).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import config as cfg
from . import defects, editions
from . import kube as k
from . import preflight as pre
from . import waits
from .backends import Backend, make_backend
from .sim import presets
from .errors import ConfigError, HarnessError
from .steps import step3_keda as keda_step
from .steps import step1_observability as obs_step
from .steps import step4_upgrade as upgrade_step
from .steps import step2_vllm as vllm_step
from .steps import scenario as kit
from .context import Stack

_CONFIG = pytest.StashKey[cfg.RunConfig]()
_STACK = pytest.StashKey[Stack]()
_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()
_STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vllm-stack-e2e", "vLLM stack e2e (the 'Autoscaling with KEDA' tutorial)")
    group.addoption("--cluster", default=None,
                    help="backend: lab (default, the local lab) or current (your kube context); env CLUSTER")
    group.addoption("--profile", default=None,
                    help="timings: fast (lab default) or tutorial (the tutorial's numbers; current default); env PROFILE")
    group.addoption("--keep", action="store_true", default=False,
                    help="leave the stack (and the lab) running after the run, for debugging; env KEEP=1")
    group.addoption("--chart", default=None, help="vLLM stack chart: a path or repo/name; env VLLM_CHART")
    group.addoption("--chart-version", default=None, help="exact chart version, e.g. 0.1.12; env CHART_VERSION")
    group.addoption("--reports-dir", default=None, help="where runs write reports/<run-id>/; env REPORTS_DIR")
    group.addoption("--fix-defects", default=None,
                    help="upstream defects whose harness fix step 2's install and every step-4 upgrade apply, e.g. 6,7 "
                         "(docs/upstream-defects.md); env FIX_DEFECTS")
    group.addoption("--edition", default=None,
                    help=f"the tutorial's edition: {' or '.join(editions.EDITIONS)} (default: the page "
                         "published for the chart under test); env EDITION")
    group.addoption("--engine", default=None,
                    help="the lab's simulated engine: lab (default), h100-llama-3.1-8b, l4-qwen2.5-1.5b "
                         "(docs/engines.md); env ENGINE")


def pytest_configure(config: pytest.Config) -> None:
    for marker in (
        "e2e: runs the tutorial against a cluster backend (the lab by default)",
        "lab: needs the local lab",
        "integration: starts real local processes (Prometheus, simulators)",
        "bench: a benchmark, run by `make bench` only",
        "slow: takes minutes",
        "beyond: a scenario beyond the tutorial's page (tests/e2e/test_beyond_*.py); runs after step 7c, "
        "before step 8, and is reported in its own section",
        "upstream_defect(number): the claim fails while upstream defect `number` is deployed "
        "(docs/upstream-defects.md); the plugin decides a strict xfail from the live ScaledObject",
    ):
        config.addinivalue_line("markers", marker)
    import os

    try:
        config.stash[_CONFIG] = cfg.resolve(
            cluster=config.getoption("cluster"), profile=config.getoption("profile"),
            keep=config.getoption("keep") or os.environ.get("KEEP") == "1", chart=config.getoption("chart"),
            chart_version=config.getoption("chart_version"), reports_dir=config.getoption("reports_dir"),
            edition=config.getoption("edition"), fix_defects=config.getoption("fix_defects"),
            engine=config.getoption("engine"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_RESULTS] = {}
    config.stash[_STARTED] = time.time()
    waits.reset()
    # CI cancels with SIGTERM: make it unwind like Ctrl-C so finalizers tear the stack down.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _past_capture(config: pytest.Config) -> Any:
    """A context in which terminal writes bypass pytest's output capture."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    return capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()


def _echo(config: pytest.Config) -> Any:
    """Live `[vse]` lines on the terminal, past pytest's output capture (so CI logs show them)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def echo(line: str) -> None:
        if reporter is None:
            print(f"[vse] {line}")
            return
        with _past_capture(config):
            reporter.write_line(f"[vse] {line}")

    return echo


# ---- session fixtures, in the tutorial's order ------------------------------------------------
@pytest.fixture(scope="session")
def run_config(pytestconfig: pytest.Config) -> cfg.RunConfig:
    return pytestconfig.stash[_CONFIG]


@pytest.fixture(scope="session")
def backend(run_config: cfg.RunConfig, pytestconfig: pytest.Config) -> Iterator[Backend]:
    """The cluster (the lab is created if it is not up, and removed afterwards if we created it)."""
    echo = _echo(pytestconfig)
    # Inputs first (tools, values files): a bad one stops the run before any cluster work.
    early = pre.run(run_config, None)
    if early.errors:
        pytest.exit("preflight failed: " + " | ".join(f"{f.message} — {f.fix}" for f in early.errors), returncode=2)
    try:
        chosen = make_backend(run_config, echo)
    except HarnessError as exc:
        pytest.exit(f"{exc}", returncode=2)
    try:
        with waits.spent("lab start" if run_config.cluster == "lab" else "cluster start"):
            chosen.start()
    except HarnessError as exc:
        chosen.stop()
        pytest.exit(f"cannot start the {run_config.cluster} backend: {exc}", returncode=2)
    yield chosen
    chosen.stop()


@pytest.fixture(scope="session")
def stack(backend: Backend, run_config: cfg.RunConfig, pytestconfig: pytest.Config) -> Iterator[Stack]:
    """The run's stack: prints the run header, runs preflight (errors stop the run here,
    before anything is installed), closes its port-forwards at the end."""
    echo = _echo(pytestconfig)
    the_stack = Stack(run_config, backend, echo)
    for line in the_stack.header():
        echo(line)
    report = pre.run(run_config, backend)
    for line in report.lines():
        echo(line)
    the_stack.preflight = report
    pytestconfig.stash[_STACK] = the_stack
    if report.errors:
        pytest.exit("preflight failed: " + " | ".join(f"{f.message} — {f.fix}" for f in report.errors), returncode=2)
    yield the_stack
    the_stack.close()


@pytest.fixture(scope="session")
def observability(stack: Stack) -> Iterator[Stack]:
    """Step 1 done: the observability stack installed (first edition), or the chart's monitoring
    subchart chosen for step 2's install (current edition)."""
    try:
        obs_step.install(stack)
        yield stack
    finally:
        if stack.created("observability") and not stack.config.keep:
            obs_step.uninstall(stack)
        if not stack.config.keep:
            obs_step.remove_existing(stack)  # the cluster's own stack, when this run installed it


@pytest.fixture(scope="session")
def monitoring(observability: Stack, request: pytest.FixtureRequest) -> Stack:
    """Step 1's Prometheus answering through the page's port-forward: after step 1 (first
    edition), or after step 2's install, which brings the chart's subchart (current edition)."""
    if obs_step.comes_with_release(observability):
        request.getfixturevalue("vllm_release")
    obs_step.wait_ready(observability)
    return observability


@pytest.fixture(scope="session")
def vllm_release(observability: Stack) -> Iterator[Stack]:
    """Step 2 installed: the vLLM release with the tutorial's step-2 values, engine Ready."""
    stack = observability
    try:
        vllm_step.install(stack)
        yield stack
    finally:
        if not stack.config.keep and stack.created("release", "namespace"):
            vllm_step.uninstall(stack)


@pytest.fixture(scope="session")
def keda(vllm_release: Stack) -> Iterator[Stack]:
    """Step 3 installed: KEDA ready."""
    stack = vllm_release
    keda_step.install(stack)
    yield stack
    if stack.created("keda") and not stack.config.keep:
        keda_step.uninstall(stack)


@pytest.fixture(scope="session")
def keda_enabled(keda: Stack) -> Iterator[Stack]:
    """Step 4 applied: `helm upgrade` with the tutorial's keda block; ScaledObject Ready.
    Undone as the tutorial's step 8 does (keda.enabled false + upgrade) while KEDA still runs,
    so KEDA can finalize its ScaledObject before it is uninstalled."""
    stack = keda
    try:
        upgrade_step.upgrade(stack)
        upgrade_step.wait_scaledobject_ready(stack)
        upgrade_step.wait_hpa(stack)
        yield stack
    finally:
        if not stack.config.keep:
            kit.keda_off(stack)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """`@pytest.mark.upstream_defect(N)`: when the deployed ScaledObject has defect N (its
    detector finds evidence), the claim is a strict xfail — a fixed chart or an overlay with the
    fix makes the claim pass, and a release that fixes it upstream turns the run red until the
    marker goes. The decision (defect, evidence) is recorded for run.json and the report.

    Runs inside pytest's xfail wrapper, which reads marks added during the call."""
    markers = list(item.iter_markers("upstream_defect"))
    stack = item.config.stash.get(_STACK, None)
    if not markers or stack is None:
        return
    live = stack.scaledobject.get().obj  # None before step 4 or with KEDA off: Defect.evidence reads the namespace
    reasons = []
    for marker in markers:
        defect = defects.get(int(marker.args[0]))
        evidence = defect.evidence(live, _live_lookup(stack), stack.namespace)
        item.user_properties.append(("upstream_defect", {"number": defect.number, "present": bool(evidence),
                                                         "evidence": evidence or ""}))
        if evidence:
            reasons.append(defect.reason(evidence) + (f" (a run with FIX_DEFECTS={defect.number} applies the fix)"
                                                      if defect.fixable else ""))
    if reasons:
        item.add_marker(pytest.mark.xfail(strict=True, reason=" | ".join(reasons)))


# Kinds a defect detector may ask about, in the ScaledObject's namespace.
_LOOKUP_KINDS = {"Prometheus": k.PROMETHEUS, "ServiceMonitor": k.SERVICEMONITOR, "Deployment": k.DEPLOYMENT}


def _live_lookup(stack: Stack) -> defects.Lookup:
    def find(kind: str) -> list[Any]:
        return stack.kube.list(*_LOOKUP_KINDS[kind], namespace=stack.namespace)
    return find


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
        stack = stack or next((v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Stack)), None)
        if stack is not None and report.failed:
            recent = time.time() - 900  # a scenario's timeline, sampled within the last 15 minutes
            timelines = {name: tl for name, tl in stack.timelines.items() if tl.samples and tl.samples[-1].t > recent}
            from .evidence import collect

            folder = collect(stack, item.nodeid, timelines)
            report.sections.append(("vllm-stack-e2e evidence", f"failure evidence in {folder}"))
    return report


@pytest.fixture(scope="session", autouse=True)
def _wait_progress(pytestconfig: pytest.Config) -> Iterator[None]:
    """Live progress of the named waits: on a terminal one line per wait, updated in place;
    in a log (CI) one line per change of what the wait sees, not one per tick."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    tty = bool(reporter is not None and reporter.isatty)
    echo = _echo(pytestconfig)
    last: dict[str, str] = {}

    def observe(description: str, seen: str, elapsed: float, budget: float) -> None:
        line = f"waiting for {description}: {seen}, {elapsed:.0f} s of {budget:.0f} s"
        if tty and reporter is not None:
            with _past_capture(pytestconfig):
                if last.get("") != description:  # a new wait starts on its own line
                    reporter.ensure_newline()
                    last[""] = description
                reporter.rewrite(f"[vse] {line}"[: reporter._tw.fullwidth - 1], erase=True)
            return
        if last.get(description) != seen:
            last[description] = seen
            echo(line)

    waits.add_observer(observe)
    yield
    waits.remove_observer(observe)


# ---- the run record (reports/<run-id>/run.json), read by the report and the release gate ----------
def _step_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    if module.startswith("test_step"):
        return "step " + module.removeprefix("test_step").split("_", 1)[0]
    if module.startswith("test_beyond_"):
        return "beyond: " + module.removeprefix("test_beyond_").removesuffix(".py").replace("_", " ")
    return module.removeprefix("test_").removesuffix(".py")


def run_sets(results: Any) -> list[str]:
    """Which sets a run's tests came from: "page" (the tutorial's steps), "beyond" (the scenarios
    beyond it), "harness" (anything else) — so a report, the gate and the nightly job say what ran."""
    found = set()
    for entry in results:
        step = str(entry.get("step", ""))
        found.add("page" if step.startswith("step ") else "beyond" if step.startswith("beyond:") else "harness")
    return sorted(found)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The scenarios beyond the page run on the stack the tutorial stood up: after step 7c, before
    step 8 takes it down (each resets the stack to step 4's state first)."""
    beyond = [item for item in items if item.get_closest_marker("beyond")]
    if not beyond:
        return
    rest = [item for item in items if not item.get_closest_marker("beyond")]
    at = next((i for i, item in enumerate(rest) if _step_of(item.nodeid) == "step 8"), len(rest))
    items[:] = rest[:at] + beyond + rest[at:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    store = _results_store.get("results")
    if store is None:
        return
    entry = store.setdefault(report.nodeid, {"nodeid": report.nodeid, "step": _step_of(report.nodeid),
                                             "outcome": "passed", "duration": 0.0, "message": ""})
    entry["duration"] += report.duration
    for name, value in report.user_properties:
        if name == "upstream_defect" and value.get("present"):
            entry["defect"] = value["number"]
            if value["number"] not in entry.setdefault("defects", []):  # all of them: a test may carry several
                entry["defects"].append(value["number"])
    if report.when == "call" and hasattr(report, "wasxfail"):
        entry["outcome"] = "xpassed" if report.passed else "xfailed"
        entry["message"] = str(report.wasxfail)
    elif report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        crash = getattr(report.longrepr, "reprcrash", None)
        last = str(report.longreprtext).strip().splitlines()[-1] if report.longreprtext else ""
        entry["message"] = (crash.message if crash is not None else last)[:500]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
        entry["message"] = str(getattr(report, "wasxfail", "") or reason)[:500]


# TestReport carries no config: the session's results dict is reached through this module.
_results_store: dict[str, dict[str, dict[str, Any]]] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _results_store["results"] = session.config.stash[_RESULTS]


@pytest.hookimpl(trylast=True)  # after junitxml wrote its file, so the report can copy it
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    stack = config.stash.get(_STACK, None)
    if stack is None:
        return
    import json

    run_cfg = stack.config
    chart = stack._chart
    record = {
        "run_id": run_cfg.run_id, "started": config.stash[_STARTED], "ended": time.time(),
        "exit_status": int(exitstatus), "backend": run_cfg.cluster, "profile": run_cfg.profile,
        "hpa_sync_seconds": run_cfg.hpa_sync_seconds,
        "engine": presets.get(run_cfg.engine).record() if run_cfg.engine else None,
        "namespace": run_cfg.namespace, "facts": getattr(stack, "facts_cache", {}) or {},
        "edition": stack.edition_record(),
        "left_behind": stack.left_behind,  # cluster-wide objects helm leaves by design: named, not failures
        "chart": chart.__dict__ if chart is not None else None,
        "overlays": stack.applied,
        "fix_defects": list(run_cfg.fix_defects),  # FIX_DEFECTS: harness fixes step 2 and every step-4 upgrade applied
        "extra_values": [list(item) for item in run_cfg.extra_values],  # EXTRA_VALUES: [scope or null, path]
        "reused": sorted(stack.reused),  # what the run found installed and left in place (keda, observability)
        "preflight": [f.__dict__ for f in (stack.preflight.findings if stack.preflight else [])],
        "tests": list(config.stash[_RESULTS].values()),
        "sets": run_sets(config.stash[_RESULTS].values()),
        "timelines": sorted(str(p.relative_to(run_cfg.run_dir))
                            for p in (run_cfg.run_dir / "timelines").glob("*.json")),
        "junit": str(getattr(config.option, "xmlpath", "") or ""),
        # Time in named waits (controllers, KEDA, the HPA, Prometheus) vs the rest of the run.
        "waiting": waits.totals(),
    }
    run_cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (run_cfg.run_dir / "run.json").write_text(json.dumps(record, indent=1, default=str))
    from .report import write_report

    echo = _echo(config)
    try:
        written = write_report(run_cfg.run_dir)
        if written.headline is not None:
            echo(str(written.headline))
        echo(f"report: {written.html}")
    except Exception as exc:  # noqa: BLE001 — a report problem must not change the run's outcome
        echo(f"report not written ({type(exc).__name__}: {exc}): python -m vllm_stack_e2e.report {run_cfg.run_dir}")
