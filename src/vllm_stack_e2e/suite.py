"""`make test`: everything CI proves, as pytest runs scheduled side by side on one lab.

Most of a lab run is waiting on controllers (KEDA polls, HPA syncs, windows); the two cores are
idle while one stack waits. So `make test` runs independent stacks at the same time, each a
pytest session of its own in its own namespace — the lab is one cluster with many namespaces, as
any real cluster is. What they cannot share is declared per run and the scheduler keeps apart the
runs that would collide (docs/suite.md):

- `uses` / `disrupts`: shared components a run needs steady (KEDA, the lab's Prometheus, the
  control plane) and those it stops, kills, installs or removes. A run never starts beside one
  that disrupts what it uses.
- `engines` / `reads_all_engines`: the first edition's Prometheus scrapes every namespace's engine
  Services, so a run whose claims read the page's unscoped query (upstream defect 9) runs with no
  other engine pod on the cluster.
- `lane`: runs of one lane never overlap — the current edition's release `vllm` names
  cluster-scoped objects (upstream defect 8), so two of its stacks cannot coexist.
- `after`: ordering (the lab's own restart test first; the shared components the suite installs
  after the run that proves their install and removal).

Each run writes its own log, JUnit file and report; the suite ends with where the time went.
`python -m vllm_stack_e2e.suite [--jobs N] [--only NAME,…] [--list]`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import REPO_ROOT
from .report.junit import junit_counts

KEDA, LAB_PROMETHEUS, CONTROL_PLANE = "keda", "lab-prometheus", "control-plane"


@dataclass(frozen=True)
class Job:
    """One run of the suite: a pytest session (or a step of the suite's own, `action`)."""

    name: str
    group: str  # for the time summary: unit, integration, tutorial, beyond, harness, suite
    args: tuple[str, ...] = ()  # pytest's arguments
    env: Mapping[str, str] = field(default_factory=dict)
    uses: frozenset[str] = frozenset()
    disrupts: frozenset[str] = frozenset()
    engines: bool = False
    reads_all_engines: bool = False
    lane: str | None = None
    after: tuple[str, ...] = ()
    action: Callable[[Callable[[str], None]], None] | None = None  # the suite's own step (no pytest)
    why: str = ""  # one line: what the run proves
    undoes: str | None = None  # runs whenever that run ran, also after Ctrl-C: the suite removes what it installed

    def clashes(self, other: "Job") -> str | None:
        """Why this run cannot run beside `other` (None: it can)."""
        for a, b in ((self, other), (other, self)):
            hit = a.disrupts & (b.uses | b.disrupts)
            if hit:
                return f"{a.name} disrupts {', '.join(sorted(hit))}, which {b.name} needs"
            if a.reads_all_engines and b.engines:
                return f"{a.name} reads every engine on the cluster (unscoped query) and {b.name} runs engines"
        if self.lane is not None and self.lane == other.lane:
            return f"{self.name} and {other.name} share lane {self.lane}"
        return None


def startable(pending: Sequence[Job], running: Iterable[Job], done: set[str], jobs: int) -> Job | None:
    """The first pending run (in plan order) whose predecessors are done and that clashes with
    no running one, while fewer than `jobs` run; None when none may start now."""
    running = list(running)
    if len(running) >= jobs:
        return None
    for job in pending:
        if all(name in done for name in job.after) and not any(job.clashes(r) for r in running):
            return job
    return None


@dataclass
class Outcome:
    job: Job
    started: float
    ended: float
    code: int
    counts: dict[str, int]
    log: Path
    run_json: list[Path] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @functools.cached_property
    def waiting(self) -> float | None:
        """Seconds the run's sessions spent in named waits (their run.json), or None."""
        total = None
        for path in self.run_json:
            try:
                seconds = float(json.loads(path.read_text()).get("waiting", {}).get("seconds", 0.0))
            except (OSError, ValueError):
                continue
            total = (total or 0.0) + seconds
        return total

    @property
    def counts_text(self) -> str:
        """"3 passed, 1 xfailed", or "" for a run without tests."""
        return ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))


class Suite:
    """Runs a plan: at most `jobs` runs at a time, never two that clash."""

    def __init__(self, plan: Sequence[Job], folder: Path, jobs: int, echo: Callable[[str], None] = print) -> None:
        self.plan, self.folder, self.jobs, self.echo = list(plan), folder, jobs, echo
        self.outcomes: list[Outcome] = []
        self._changed = threading.Condition()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def _command(self, job: Job) -> list[str]:
        return [sys.executable, "-m", "pytest", *job.args, "-p", "no:cacheprovider",
                f"--junitxml={self.folder / f'junit-{job.name}.xml'}"]

    def _run(self, job: Job, finished: list[Outcome]) -> None:
        log = self.folder / f"{job.name}.log"
        reports = self.folder / job.name
        started = time.time()
        code = 0
        if job.action is not None:
            with log.open("w") as out:
                def echo(line: str) -> None:
                    out.write(line + "\n")
                    out.flush()
                try:
                    job.action(echo)
                except Exception as exc:  # noqa: BLE001 — the suite's step failed: recorded, said
                    echo(f"error: {type(exc).__name__}: {exc}")
                    code = 1
        else:
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "REPORTS_DIR": str(reports), **job.env}
            with log.open("wb") as out:
                proc = subprocess.Popen(self._command(job), cwd=REPO_ROOT, env=env, stdout=out,
                                        stderr=subprocess.STDOUT)
                self._procs[job.name] = proc
                code = proc.wait()
        outcome = Outcome(job, started, time.time(), code, junit_counts(self.folder / f"junit-{job.name}.xml"), log,
                          sorted(reports.rglob("run.json")) if reports.is_dir() else [])
        with self._changed:
            finished.append(outcome)
            self._changed.notify_all()

    def run(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        pending, running, done = list(self.plan), {}, set()  # type: ignore[var-annotated]
        finished: list[Outcome] = []
        started = time.time()
        try:
            while pending or running:
                with self._changed:
                    for outcome in finished:
                        running.pop(outcome.job.name, None)
                        done.add(outcome.job.name)
                        self.outcomes.append(outcome)
                        self._said(outcome, started)
                    finished.clear()
                    if not pending and not running:
                        break
                    job = startable(pending, running.values(), done, self.jobs)
                    if job is None:
                        if not running:  # nothing runs and nothing may start: a plan error
                            names = ", ".join(j.name for j in pending)
                            raise RuntimeError(f"the suite cannot start {names}: their predecessors never finished")
                        self._changed.wait(timeout=5)
                        continue
                pending.remove(job)
                running[job.name] = job
                beside = ", ".join(sorted(n for n in running if n != job.name)) or "nothing else"
                self.echo(f"[suite] {time.time() - started:6.0f}s start {job.name} (beside {beside})")
                threading.Thread(target=self._run, args=(job, finished), name=f"suite-{job.name}", daemon=True).start()
        except KeyboardInterrupt:
            # SIGTERM, which every run turns into its own Ctrl-C (plugin.py): a run started from a
            # background shell ignores SIGINT.
            self.echo("[suite] interrupted: SIGTERM to every run (each tears down what it created)")
            for proc in self._procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in self._procs.values():
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
            ran = {o.job.name for o in self.outcomes} | set(running)
            for job in pending:
                if job.undoes in ran and job.action is not None:
                    self.echo(f"[suite] {job.name}: {job.why}")
                    job.action(self.echo)
            raise
        self._summary(started)
        return 0 if all(o.code == 0 for o in self.outcomes) else 1

    def _said(self, outcome: Outcome, started: float) -> None:
        counts = outcome.counts_text or "no tests"
        mark = "ok" if outcome.code == 0 else f"FAILED (exit {outcome.code})"
        self.echo(f"[suite] {outcome.ended - started:6.0f}s {mark} {outcome.job.name} in {outcome.seconds:.0f}s: "
                  f"{counts}; log {outcome.log}")

    def _summary(self, started: float) -> None:
        wall = time.time() - started
        self.echo("")
        self.echo(f"make test: where the time went ({wall:.0f}s wall, {len(self.outcomes)} runs, at most {self.jobs} at once)")
        self.echo(f"| {'run':<28} | {'group':<11} | {'start':>6} | {'wall':>6} | {'waits':>6} | {'work':>6} | result")
        self.echo(f"|{'-' * 30}|{'-' * 13}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|-------")
        for o in sorted(self.outcomes, key=lambda o: o.started):
            waited = o.waiting
            waits_col = f"{waited:5.0f}s" if waited is not None else "     —"
            work_col = f"{o.seconds - waited:5.0f}s" if waited is not None else "     —"
            counts = o.counts_text or ("ok" if o.code == 0 else "failed")
            self.echo(f"| {o.job.name:<28} | {o.job.group:<11} | {o.started - started:5.0f}s | {o.seconds:5.0f}s | "
                      f"{waits_col} | {work_col} | {counts}{'' if o.code == 0 else f' — exit {o.code}'}")
        groups: dict[str, float] = {}
        for o in self.outcomes:
            groups[o.job.group] = groups.get(o.job.group, 0.0) + o.seconds
        self.echo("per group (run time, summed; runs overlap): "
                  + ", ".join(f"{g} {s:.0f}s" for g, s in sorted(groups.items())))
        (self.folder / "suite.json").write_text(json.dumps(
            {"wall": wall, "jobs": self.jobs, "runs": [
                {"name": o.job.name, "group": o.job.group, "start": o.started - started, "seconds": o.seconds,
                 "waiting": o.waiting, "code": o.code, "counts": o.counts, "log": str(o.log)}
                for o in self.outcomes]}, indent=1))
        for o in self.outcomes:
            if o.code != 0:
                self.echo(f"\n---- {o.job.name} (exit {o.code}): the end of {o.log} ----")
                lines = o.log.read_text(errors="replace").splitlines() if o.log.exists() else []
                for line in lines[-60:]:
                    self.echo(line)


def main(argv: list[str] | None = None) -> int:
    from .suiteplan import DEFAULT_JOBS, PLAN, plan_jobs

    parser = argparse.ArgumentParser(prog="python -m vllm_stack_e2e.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("SUITE_JOBS", "0") or 0) or None,
                        help="runs at a time (default: the plan's; env SUITE_JOBS)")
    parser.add_argument("--only", default="", help="comma-separated run names (and what they need to run after)")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--folder", type=Path, default=None, help="where logs and JUnit files go")
    args = parser.parse_args(argv)
    jobs = plan_jobs(PLAN, [n.strip() for n in args.only.split(",") if n.strip()])
    if args.list:
        for job in jobs:
            print(f"{job.name:<28} {job.group:<11} after={','.join(job.after) or '-'} lane={job.lane or '-'} "
                  f"uses={','.join(sorted(job.uses)) or '-'} disrupts={','.join(sorted(job.disrupts)) or '-'} "
                  f"engines={'yes' if job.engines else 'no'}{' reads-all-engines' if job.reads_all_engines else ''}"
                  f"\n    {job.why}")
        return 0
    folder = args.folder or (REPO_ROOT / "reports" / ("suite-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())))
    def terminated(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, terminated)
    try:
        return Suite(jobs, folder, args.jobs or DEFAULT_JOBS).run()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
