"""What `make test` runs, and what each run cannot share (vllm_stack_e2e.suite; docs/suite.md).

Every proof `make test` ran as one long sequence still runs — every edition of the page, every
scenario beyond it, every break overlay, the defect-fix check, interruption, the lab's own
self-tests — now as runs the suite schedules side by side wherever they do not collide. The
declarations below are the collisions found, each with its reason.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from .suite import CONTROL_PLANE, KEDA, LAB_PROMETHEUS, Job

# Runs at a time. Measured on 2 cores (docs/suite.md#concurrency): the lab's control plane, KEDA and
# every stack's engines and Prometheus share them, and more runs than this made the suite slower.
DEFAULT_JOBS = 5
# GPUs the lab offers: runs side by side each scale to 5 engines (the scale-to-zero block's maximum).
LAB_GPU_NODES = "12"

FIRST = "--edition=observability-script"
PAGE = ("tests/e2e", "-m", "not beyond")
BREAKS = ",".join((
    "step4:values/break-scale-up.yaml",
    "scale-to-zero:values/break-scale-to-zero.yaml",
    "hpa-behavior:values/break-hpa-behavior.yaml",
    "step4:values/break-fallback-contrast.yaml",
))
STACK = frozenset({KEDA, CONTROL_PLANE})  # what a run of the page needs steady


def _lab_up(echo) -> None:  # type: ignore[no-untyped-def]
    """The lab's cluster and data plane, before any run: runs would otherwise race to create it."""
    from .lab.lab import Lab

    Lab(echo=echo).up(["cluster"])


def _shared_up(echo) -> None:  # type: ignore[no-untyped-def]
    """KEDA and the first edition's Prometheus, installed once for the runs that follow (each says
    "already installed; reusing it"), after the run that proves their own install and removal."""
    from .lab.lab import Lab

    Lab(echo=echo).up(["cluster", "observability", "keda"])


def _shared_down(echo) -> None:  # type: ignore[no-untyped-def]
    """What `_shared_up` installed goes; then the lab must hold no run's namespace."""
    from . import kube as k
    from .config import OWNER_LABEL
    from .lab.lab import Lab

    lab = Lab(echo=echo)
    lab.keda.down(True)
    lab.observability.down(True)
    left = lab.cluster.kube.list(*k.NAMESPACE, label_selector=f"{OWNER_LABEL}=vllm-stack-e2e")
    if left:
        raise RuntimeError("runs left namespaces behind: " + ", ".join(n["metadata"]["name"] for n in left))


PLAN: tuple[Job, ...] = (
    Job("unit", "unit", ("tests/unit",), why="the harness's logic, no cluster"),
    Job("lab", "suite", action=_lab_up, why="the lab's cluster, created or reused, before any run"),
    Job("lab-restart", "harness", ("tests/harness/test_lab_restart.py", "tests/harness/test_preflight_gpus.py"),
        after=("lab",), uses=frozenset({CONTROL_PLANE}), disrupts=frozenset({CONTROL_PLANE, KEDA, LAB_PROMETHEUS}),
        why="a lab stopped by a restart is recreated; preflight refuses too few GPUs and creates nothing"),
    Job("integration", "integration", ("tests/integration",), after=("lab-restart",),
        why="real Prometheus 2.x/3.x, helm and the simulator as local processes"),
    Job("tutorial-first-edition", "tutorial", (*PAGE, FIRST), after=("lab-restart",), uses=STACK,
        disrupts=frozenset({KEDA, LAB_PROMETHEUS}), engines=True, reads_all_engines=True,
        why="the page, first edition, alone: it installs and removes KEDA and the observability stack, and "
            "its page query reads every engine on the cluster (defect 9)"),
    Job("lab-smoke", "harness", ("tests/harness/test_lab.py",), after=("lab-restart",),
        uses=STACK, disrupts=frozenset({KEDA, LAB_PROMETHEUS}), engines=True,
        why="KEDA and the HPA scale a GPU Deployment on the lab; killed components come back"),
    Job("shared", "suite", action=_shared_up, after=("tutorial-first-edition", "lab-smoke"),
        disrupts=frozenset({KEDA, LAB_PROMETHEUS}),
        why="KEDA and the first edition's Prometheus, installed once for the runs that follow"),
    Job("keda-disruption", "beyond", ("tests/e2e/test_beyond_keda_disruption.py", FIRST),
        env={"FIX_DEFECTS": "9"}, after=("shared",), uses=STACK, disrupts=frozenset({KEDA}), engines=True,
        why="KEDA's operator and metrics server killed mid-scale: nothing else may need KEDA meanwhile"),
    Job("tutorial-current-edition", "tutorial", PAGE, after=("shared",), uses=STACK, engines=True, lane="subchart",
        why="the page, current edition (the default): the subchart's release `vllm` is one per cluster (defect 8)"),
    Job("tutorial-existing-prometheus", "tutorial", (*PAGE, "--edition=existing-prometheus"), after=("shared",),
        uses=STACK, engines=True,
        why="the page's note for a cluster's own kube-prometheus-stack (defects 12 and 13): its stack is a release of "
            "its own in namespace prometheus, paired with its operator by a controller id, so it runs beside the "
            "subchart's runs"),
    Job("breaks", "harness", ("tests/harness/test_claims_break.py",), after=("shared",), uses=STACK, engines=True,
        why="each break overlay fails exactly its claim, on one stack"),
    Job("beyond-fallback", "beyond", ("tests/e2e", "-m", "beyond", "-k", "fallback_with_zero or null_not_zero",
                                      FIRST),
        env={"FIX_DEFECTS": "9"}, after=("shared",), uses=STACK, engines=True,
        why="fallback with scale to zero, and an empty query under load (the page's trigger, then ignoreNullValues "
            "false with the fallback): first edition, queries scoped to the run (defect 9's fix)"),
    Job("beyond", "beyond", ("tests/e2e", "-m", "beyond", "-k",
                             "not keda_disruption and not two_stacks and not fallback_with_zero and not null_not_zero",
                             FIRST),
        env={"FIX_DEFECTS": "9"}, after=("shared",), uses=STACK, engines=True,
        why="activation, pause, a broken neighbour, an upgrade while scaled out, scale-in under traffic: first "
            "edition, queries scoped to the run (defect 9's fix)"),
    Job("fixes-and-two-stacks", "harness", ("tests/harness/test_defect_fixes.py",), after=("shared",),
        uses=STACK, engines=True, lane="subchart",
        why="FIX_DEFECTS=6,7 turns their xfails into passes; a second stack of the page beside the first"),
    Job("interruption", "harness", ("tests/harness/test_interruption.py",), after=("shared",), uses=STACK,
        engines=True, env={"EDITION": "observability-script"},
        why="an interrupted run cleans up what it created and nothing else"),
    Job("lab-self-tests", "harness", ("tests/harness/test_lab_api_key.py", "tests/harness/test_lab_cluster_dns.py",
                                      "tests/harness/test_lab_port_forward.py"),
        after=("shared",), uses=STACK, engines=True,
        why="API keys, cluster DNS from KEDA's namespace, port-forwards that close as a kubelet's"),
    Job("current-backend", "harness", ("tests/harness/test_current_backend_on_the_lab.py",),
        after=("shared", "tutorial-current-edition"), uses=STACK, engines=True, lane="subchart",
        why="the page on CLUSTER=current with the lab's kubeconfig: the GPU-cluster path's own code, the lab "
            "backend's claims and defects (compared with tutorial-current-edition's), no connection off loopback"),
    Job("servicemonitors", "harness", ("tests/harness/test_lab_servicemonitors.py",), after=("shared",),
        uses=STACK, lane="subchart",
        why="prometheus-operator's selection on the lab, with its own operator and Prometheus: the subchart's "
            "operator watches every namespace and would reconcile its Prometheus too"),
)
# Removes what `shared` installed once every run that needs it is over (derived, so a run added
# after `shared` is never left without it).
PLAN += (Job("shared-down", "suite", action=_shared_down,
             after=tuple(j.name for j in PLAN if "shared" in j.after),
             disrupts=frozenset({KEDA, LAB_PROMETHEUS}), undoes="shared",
             why="the shared components removed; no run's namespace left on the lab"),)


def plan_jobs(plan: Sequence[Job], only: Sequence[str] = ()) -> list[Job]:
    """The plan, or the runs named in `only` with the suite's own steps they come after."""
    os.environ.setdefault("LAB_GPU_NODES", LAB_GPU_NODES)
    if not only:
        return list(plan)
    unknown = [name for name in only if name not in {j.name for j in plan}]
    if unknown:
        raise SystemExit(f"error: no run named {', '.join(unknown)} in the plan — `python -m vllm_stack_e2e.suite "
                         f"--list` names them")
    chosen = {j.name for j in plan if j.name in only or j.name == "lab"}
    deps = {j.name: j.after for j in plan}

    def kept(names: Sequence[str]) -> tuple[str, ...]:
        """`names` with each run left out replaced by what it comes after, so the order between
        the chosen runs holds (e.g. `shared` stays after `lab` without the runs in between)."""
        out: list[str] = []
        for name in names:
            for found in ((name,) if name in chosen else kept(deps.get(name, ()))):
                if found not in out:
                    out.append(found)
        return tuple(out)

    return [dataclasses.replace(j, after=kept(j.after)) for j in plan if j.name in chosen]
