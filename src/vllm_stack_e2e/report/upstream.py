"""Upstream issue drafts: one Markdown file per upstream defect a run met, ready to paste into an
issue of vLLM Production Stack, that a maintainer can act on without opening this harness.

    python -m vllm_stack_e2e.report.upstream [REPORT] [--reports-dir DIR]
    make upstream-report [REPORT=reports/<run-id>]

A defect is met when a preflight finding or an xfailed test names a registered defect
(`vllm_stack_e2e.defects`; run.json). Each `<run>/upstream/defect-<N>.md` holds a title, the
versions (chart — the lab's stand-in said plainly —, KEDA, Kubernetes, Prometheus, helm, the page's
edition and where it was pinned from), the smallest reproduction (the page's values, quoted from
the pinned files under values/, and the page's commands), expected against actual, what the run
observed (preflight, the xfailed claims, the step's timeline and failure evidence when the run has
them) and the harness's fix overlay (`vllm_stack_e2e.fixes`) with the docs anchor. Every text goes
through `vllm_stack_e2e.redaction`.

REPORT is a run folder (with run.json) or a suite folder (reports/suite-*: each tutorial run in
it); without it, the newest run under reports/. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import defects, editions, fixes
from ..editions import Edition
from ..errors import ConfigError
from ..helm import is_stand_in
from ..redaction import redact_text, redact_tree
from .model import STEP_TITLES, TestResult, chart_of, harness_fixes, load_run, summarize_steps, test_results
from .plots import load_timelines, summarize_timeline

FOLDER = "upstream"  # inside the run folder
UPSTREAM_REPO = "vllm-project/production-stack"
RELEASE = "vllm"  # the page's release name
SCALEDOBJECT = "vllm-llama3-scaledobject"  # what the chart names the page's ScaledObject
HPA = f"keda-hpa-{SCALEDOBJECT}"
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4,}")
_DEFECT_IN_MESSAGE = re.compile(r"upstream defect (\d+):")


# ---- what a run met ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Xfail:
    """An xfailed test tied to a defect: its message's part about that defect, and which other
    defects the same xfail names."""

    test: TestResult
    message: str
    also: tuple[int, ...] = ()


@dataclass
class Met:
    """One registered defect and everything the run holds about it."""

    number: int
    preflight: list[Mapping[str, Any]] = field(default_factory=list)
    xfails: list[Xfail] = field(default_factory=list)

    @property
    def defect(self) -> defects.Defect:
        return defects.get(self.number)

    @property
    def evidence(self) -> str:
        """What the harness saw, in the words of the fix overlay's header: the detector's evidence
        from an xfail reason, else the first preflight finding."""
        for xfail in self.xfails:
            seen = met_evidence(self.number, xfail.message)
            if seen:
                return seen
        return str(self.preflight[0].get("message", "")) if self.preflight else "this run's xfails"


def met_evidence(number: int, reason: str) -> str:
    """The detector's evidence in an xfail reason (`Defect.reason`: `upstream defect N: title
    (evidence) — fix: …`), or "" when the reason is not in that form."""
    d = defects.get(number)
    head, tail = f"upstream defect {d.number}: {d.title} (", f") — fix: {d.fix} [{d.doc}]"
    if reason.startswith(head) and tail in reason:
        return reason[len(head):reason.index(tail)]
    return ""


def _split_reason(message: str) -> dict[int, str]:
    """An xfail reason (`upstream defect N: …` parts joined by ` | `) by defect number."""
    parts: dict[int, str] = {}
    for part in message.split(" | "):
        found = _DEFECT_IN_MESSAGE.match(part.strip())
        if found:
            parts.setdefault(int(found.group(1)), part.strip())
    return parts


def met_defects(run: Mapping[str, Any]) -> tuple[list[Met], list[int]]:
    """The registered defects the run met (by number), and the unregistered numbers it named."""
    found: dict[int, Met] = {}
    unregistered: set[int] = set()

    def entry(number: int) -> Met | None:
        if number not in defects.DEFECTS:
            unregistered.add(number)
            return None
        return found.setdefault(number, Met(number))

    for finding in run.get("preflight") or []:
        number = finding.get("defect") if isinstance(finding, Mapping) else None
        if isinstance(number, int) and (met := entry(number)) is not None:
            met.preflight.append({k: redact_text(str(v)) for k, v in finding.items()})
    for test in test_results(run):
        if test.outcome != "xfailed":
            continue
        parts = _split_reason(test.message)
        numbers = list(parts) or ([test.defect] if test.defect is not None else [])
        if test.defect is not None and test.defect not in numbers:
            numbers.insert(0, test.defect)
        for number in numbers:
            if (met := entry(number)) is not None:
                others = tuple(n for n in numbers if n != number)
                met.xfails.append(Xfail(test, parts.get(number, test.message), others))
    return [found[n] for n in sorted(found)], sorted(unregistered)


# ---- the page's reproduction, per defect --------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One step of a reproduction: what to do, the page's commands (by role, from the edition),
    the page's values file it applies and the keys of it to quote (None: the whole file), and
    commands to look with (not the page's)."""

    says: str
    page: tuple[str, ...] = ()
    values: str | None = None
    keys: tuple[str, ...] | None = ()
    look: tuple[str, ...] = ()


@dataclass(frozen=True)
class Draft:
    """What an issue for one defect says beyond the registry."""

    title: str
    where: str
    steps: Callable[[Edition], list[Step]]
    expected: str
    actual: str
    note: Callable[[Edition], str] = lambda _edition: ""
    replicas: int = 0  # how many replicas the failure needs: a run whose step never got there did not reach it


def _repos() -> Step:
    from ..backends.current import KEDA_REPO, VLLM_REPO

    return Step("Add the chart repositories.",
                look=(f"helm repo add {VLLM_REPO[0]} {VLLM_REPO[1]}", f"helm repo add {KEDA_REPO[0]} {KEDA_REPO[1]}",
                      "helm repo update"))


def _up_to_keda(e: Edition, *, step2_keys: tuple[str, ...] | None = (), namespace_note: str = "") -> list[Step]:
    """Steps 1–3 of the page: monitoring, the release, KEDA."""
    steps = [_repos()]
    if e.monitoring.by_script:
        steps.append(Step("Install the observability stack (kube-prometheus-stack and prometheus-adapter in "
                          "namespace `monitoring`), from the production-stack repository's `observability/` folder "
                          "(page step 1).", page=("observability-install",)))
    step2 = "Install the release with the page's step-2 values.yaml (page step 2" + (
        "; it carries step 1's monitoring keys: the chart's ServiceMonitors and its kube-prometheus-stack subchart"
        if not e.monitoring.by_script else "") + ")" + namespace_note + "."
    steps.append(Step(step2, page=("vllm-install",), values="tutorial-step2.yaml" if step2_keys != () else None,
                      keys=step2_keys))
    steps.append(Step("Install KEDA in namespace `keda` (page step 3).", page=("keda-namespace", "keda-install")))
    return steps


def _upgrade(keys: tuple[str, ...] | None, says: str = "") -> Step:
    return Step(says or "Upgrade the release with the page's updated values.yaml, the keda block (page step 4).",
                page=("vllm-upgrade",), values="tutorial-step4.yaml", keys=keys)


KEDA_BLOCK = ("servingEngineSpec.modelSpec[0].keda",)
TRIGGERS = ("servingEngineSpec.modelSpec[0].keda.triggers",)
LOOK_SCALING = (f"kubectl get scaledobject {SCALEDOBJECT}", f"kubectl get hpa {HPA}")


def _prom_query(e: Edition, query: str, forward: str | None = None) -> tuple[str, ...]:
    """Query Prometheus through the page's port-forward (or `forward`, where the page's names none there)."""
    return ((forward or e.commands["prometheus-port-forward"]) + " &",
            f"curl -s 'http://localhost:9090/api/v1/query' --data-urlencode 'query={query}'")


DRAFTS: dict[int, Draft] = {
    1: Draft(
        "Chart values.schema.json types keda.triggers as an object, so `helm lint` rejects the tutorial's "
        "(list) triggers",
        "the chart's `values.schema.json` (helm/values.schema.json of vllm/vllm-stack ≥ 0.1.11)",
        lambda e: [_repos(),
                   Step("Unpack the chart and lint it with the page's step-4 values (their triggers are a list, "
                        "as the ScaledObject template needs).", values="tutorial-step4.yaml", keys=TRIGGERS,
                        look=("helm pull vllm/vllm-stack --untar", "helm lint vllm-stack -f values.yaml"))],
        "`helm lint` accepts the values the tutorial and the chart's README give (`keda.triggers` a list).",
        "`helm lint` fails: `Invalid type. Expected: object, given: array` (or, with helm ≥ 3.18, `got array, want "
        "object` at `/servingEngineSpec/modelSpec/0/keda/triggers`). `helm install` still works: the packaged chart "
        "leaves the schema out."),
    2: Draft(
        "Default KEDA trigger selects `model=`, but vLLM's series carry `model_name`: it never scales",
        "the chart's default `keda.triggers` (used when values enable keda without triggers)",
        lambda e: [*_up_to_keda(e),
                   Step("Enable KEDA as the page's step 4 does, but without its `triggers` (the chart's default "
                        "trigger then applies).", page=("vllm-upgrade",), values="tutorial-step4.yaml",
                        keys=("servingEngineSpec.modelSpec[0].keda.enabled",
                              "servingEngineSpec.modelSpec[0].keda.minReplicaCount",
                              "servingEngineSpec.modelSpec[0].keda.maxReplicaCount"),
                        look=(f"kubectl get scaledobject {SCALEDOBJECT} "
                              "-o jsonpath='{.spec.triggers[0].metadata.query}'",
                              *_prom_query(e, 'vllm:num_requests_waiting{model="meta-llama/Llama-3.1-8B-Instruct"}')))],
        "The default trigger's query returns the engines' queue, so the model scales under load.",
        "The query selects `model=\"…\"`; vLLM labels its engine series `model_name` (and `engine`), so it matches "
        "nothing, KEDA reads 0 (`ignoreNullValues` defaults to true) and the ScaledObject stays Ready while "
        "nothing ever scales."),
    3: Draft(
        "Autoscaling with KEDA: the page's query `vllm:num_requests_waiting` is not aggregated, so KEDA fails "
        "at 2+ engine replicas",
        "the tutorial page \"Autoscaling with KEDA\", step 4's trigger query (both editions)",
        lambda e: [*_up_to_keda(e), _upgrade(KEDA_BLOCK),
                   Step("Put load on the router as the page does, until a second engine is up, and watch the "
                        "ScaledObject (page step 6).", page=("router-port-forward", "load-generator"),
                        look=(f"kubectl get scaledobject {SCALEDOBJECT} -w", f"kubectl get hpa {HPA}",
                              "kubectl logs -n keda deploy/keda-operator | grep 'multiple elements'"))],
        "Past one replica the ScaledObject stays `Ready=True` and the HPA keeps reading the queue, so replicas "
        "follow it between `minReplicaCount` and `maxReplicaCount`, out and back in.",
        "The query returns one series per engine pod. Once a second engine is scraped, KEDA's Prometheus scaler "
        "fails on every poll (the query \"returned multiple elements\"): the ScaledObject turns `Ready=False` "
        "(`TriggerError`), the HPA can no longer read its metric and the Deployment stays where it is (with "
        "`fallback` set, it goes to `fallback.replicas`). The same happens for a while after each scale-in, while "
        "a deleted pod's series are still visible to PromQL.",
        lambda e: ("On this edition defects 6 and 7 (engines not scraped after step 4; the short `serverAddress`) "
                   "stop scaling before a second engine exists. To reach this one, keep "
                   "`servingEngineSpec.serviceMonitor.enabled: true` in the step-4 values and name the Prometheus "
                   "Service with its namespace." if not e.monitoring.by_script else ""),
        replicas=2),
    4: Draft(
        "Default KEDA trigger's serverAddress misses the chart's own kube-prometheus-stack Prometheus",
        "the chart's default `keda.triggers[0].metadata.serverAddress`",
        lambda e: [*_up_to_keda(e, step2_keys=("kube-prometheus-stack",)),
                   Step("Enable KEDA without `triggers` (the chart's default trigger applies).",
                        page=("vllm-upgrade",), values="tutorial-step4.yaml",
                        keys=("servingEngineSpec.modelSpec[0].keda.enabled", "kube-prometheus-stack"),
                        look=(f"kubectl get scaledobject {SCALEDOBJECT} "
                              "-o jsonpath='{.spec.triggers[0].metadata.serverAddress}'", *LOOK_SCALING))],
        "With the subchart enabled, the default trigger queries the subchart's Prometheus, "
        "`http://<release>-kube-prometheus-stack-prometheus.<namespace>.svc:9090`.",
        "It queries `http://prometheus-operated.monitoring.svc:9090` (the standalone observability install): KEDA "
        "cannot resolve or reach it, the ScaledObject turns `Ready=False` (`TriggerError`); or, when a standalone "
        "install exists too, KEDA silently reads that other Prometheus."),
    5: Draft(
        "Autoscaling with KEDA on Prometheus 2.x: the page's `vllm:` query reads nothing (stored as `vllm_…`)",
        "the tutorial page (it assumes Prometheus 3.x name handling); vLLM's metric names under Prometheus 2.x",
        lambda e: [*_up_to_keda(e),
                   _upgrade(TRIGGERS, "Upgrade with the page's step-4 values, on a cluster whose Prometheus is 2.x "
                                      "(page step 4)."),
                   Step("Query both name forms.", look=_prom_query(e, "vllm:num_requests_waiting")
                        + ("curl -s 'http://localhost:9090/api/v1/query' --data-urlencode "
                           "'query=vllm_num_requests_waiting'",))],
        "The page's query returns the engines' queue.",
        "Prometheus 2.x negotiates underscore escaping, stores `vllm_num_requests_waiting`, and the page's "
        "`vllm:num_requests_waiting` returns nothing: KEDA reads 0 and never scales."),
    6: Draft(
        "Autoscaling with KEDA (current edition): step 4's values drop servingEngineSpec.serviceMonitor, so the "
        "upgrade that enables KEDA stops Prometheus scraping the engines",
        "the tutorial page \"Autoscaling with KEDA\", current edition (chart ≥ 0.1.11), step 4's updated values.yaml",
        lambda e: [*_up_to_keda(e, step2_keys=("servingEngineSpec.serviceMonitor", "routerSpec.serviceMonitor",
                                               "kube-prometheus-stack")),
                   Step("Look: both ServiceMonitors exist; Prometheus holds the engine's queue.",
                        look=("kubectl get servicemonitors", *_prom_query(e, "vllm:num_requests_waiting"))),
                   _upgrade(None, "Upgrade with the page's updated values.yaml (page step 4) — quoted whole: it has "
                                  "no `servingEngineSpec.serviceMonitor`, which step 2's had."),
                   Step("Look again, then put load on the router as the page does (page step 6).",
                        page=("router-port-forward", "load-generator"),
                        look=("kubectl get servicemonitors", *_prom_query(e, "vllm:num_requests_waiting"),
                              *LOOK_SCALING))],
        "The upgrade that enables KEDA keeps the engines scraped, as step 2 set them up: `vllm:num_requests_waiting` "
        "stays in Prometheus and the model scales out under step 6's load.",
        "`helm upgrade -f` starts from the chart's defaults (`servingEngineSpec.serviceMonitor.enabled: false`), so "
        "the upgrade deletes the engine's ServiceMonitor. Prometheus stops scraping the engines, "
        "`vllm:num_requests_waiting` goes stale and then empty, KEDA reads 0 (`ignoreNullValues`) and the model "
        "never scales — with nothing in any log. (The router's ServiceMonitor, repeated in step 4's values, stays.)"),
    7: Draft(
        "Autoscaling with KEDA (current edition): the trigger's serverAddress is a short Service name, which KEDA "
        "resolves in namespace keda — every poll fails with \"no such host\"",
        "the tutorial page \"Autoscaling with KEDA\", current edition (chart ≥ 0.1.11), step 4's (and step 7a's) "
        "`serverAddress`",
        lambda e: [*_up_to_keda(e, namespace_note=", in any namespace but `keda` — the page installs into the current "
                                                  "namespace, e.g. `default`"),
                   _upgrade(TRIGGERS),
                   Step("Look at the ScaledObject and the HPA as the page does (page step 5), and at KEDA's log.",
                        look=(*LOOK_SCALING, "kubectl logs -n keda deploy/keda-operator | grep 'no such host'"))],
        "The ScaledObject is `READY True`, the HPA shows `0/5 (avg)` and reads its external metric, as step 5 shows.",
        "KEDA's operator runs in namespace `keda`, where the single-label name "
        "`vllm-kube-prometheus-stack-prometheus` is completed with `keda.svc.cluster.local` first; the Service is in "
        "the release's namespace, so every poll fails (`dial tcp: lookup vllm-kube-prometheus-stack-prometheus …: no "
        "such host`). The ScaledObject turns `Ready=False` (`TriggerError`) after its first failed polls, the HPA's "
        "`ScalingActive` is False (`FailedGetExternalMetric`) with TARGETS `<unknown>/5`, and the model never scales. "
        "The page's note on the Service name does not mention the namespace."),
    8: Draft(
        "Autoscaling with KEDA (current edition): a second stack installed as the page says cannot share the cluster",
        "the tutorial page's release name with the kube-prometheus-stack subchart (current edition)",
        lambda e: [_repos(),
                   Step("Install the page's step-2 values twice, in two namespaces (staging beside production, or a "
                        "second team).", values="tutorial-step2.yaml", keys=("kube-prometheus-stack",),
                        look=(e.commands["vllm-install"] + " -n team-a --create-namespace",
                              e.commands["vllm-install"] + " -n team-b --create-namespace"))],
        "The second install succeeds: each stack is namespaced.",
        "The subchart's cluster-scoped objects (ClusterRoles and ClusterRoleBindings `vllm-kube-prometheus-stack-…`, "
        "the admission webhook configurations, Services in `kube-system`) are named after the release, so the "
        "second install fails: `… exists and cannot be imported into the current release: invalid ownership "
        "metadata`."),
    9: Draft(
        "Autoscaling with KEDA: the trigger queries select no namespace, so one stack's KEDA reads another's queue",
        "the tutorial page's trigger queries (step 4 and step 7a's keepalive)",
        lambda e: [_repos(),
                   Step("Install two stacks as the page says (steps 1–4), in namespaces `team-a` and `team-b`; put "
                        "step 6's load on `team-b` only.", values="tutorial-step4.yaml", keys=TRIGGERS,
                        look=(e.commands["vllm-install"] + " -n team-a --create-namespace",
                              e.commands["vllm-install"] + " -n team-b --create-namespace",
                              "kubectl get hpa -n team-a -w"))],
        "Each stack's ScaledObject reads its own engines' queue.",
        "`vllm:num_requests_waiting` selects no namespace and Prometheus scrapes both stacks: per pod the query "
        "returns more than one element (KEDA's scaler error, as with the unaggregated query); summed, `team-b`'s "
        "load scales `team-a`.",
        lambda e: ("On this edition a second release named `vllm` does not install (defect 8): install the second "
                   "stack under another release name, its triggers naming that release's Prometheus Service."
                   if not e.monitoring.by_script else "")),
    10: Draft(
        "Autoscaling with KEDA: every scale-in cuts the answers its engines were streaming (the chart passes no "
        "--shutdown-timeout)",
        "the chart's engine Deployment (`vllm serve` arguments, no `terminationGracePeriodSeconds` key) with the "
        "tutorial's ScaledObject, which scales the engines in as soon as the queue is gone",
        lambda e: [*_up_to_keda(e), _upgrade(KEDA_BLOCK),
                   Step("Put load on the router as the page does until the HPA has scaled out (page step 6); then, "
                        "the load stopped, send a long streamed request every second while the HPA scales in.",
                        page=("router-port-forward", "load-generator"),
                        look=("kubectl get pods -l model=llama3 -w",
                              "curl -sN http://localhost:30080/v1/completions -H 'Content-Type: application/json' "
                              "-d '{\"model\": \"meta-llama/Llama-3.1-8B-Instruct\", \"prompt\": \"Hi\", "
                              "\"max_tokens\": 300, \"stream\": true}'"))],
        "Requests in flight on a scaled-in engine finish: the router sends the engine nothing new once its pod "
        "is deleted, and the engine answers what it already runs before it exits.",
        "The ReplicaSet deletes engine pods whatever they serve and the kubelet sends SIGTERM. vLLM 0.18 and later "
        "(`--shutdown-timeout` 0 by default) end every request in flight at once with `finish_reason: \"abort\"`; "
        "0.17 and older stop answering, and the SIGKILL 30 s later cuts the connections (a stream ends without "
        "`[DONE]`). Either way each client loses the rest of its answer.",
        lambda _e: ("Fix for users: `servingEngineSpec.modelSpec[].vllmConfig.extraArgs: [\"--shutdown-timeout\", "
                    "\"25\"]` (above the longest request, under the pod's 30 s grace period; keep "
                    "`enablePrefixCaching: true` beside it, since the chart turns prefix caching off in a "
                    "`vllmConfig` without it). Fix for the chart: a `terminationGracePeriodSeconds` key and a "
                    "default `--shutdown-timeout` below it."),
        replicas=2),
    11: Draft(
        "Autoscaling with KEDA: a queue whose series vanish reads 0, and a loaded model is scaled in "
        "(the page leaves ignoreNullValues at true)",
        "the tutorial page's queue trigger (step 4), whose metadata has no `ignoreNullValues`",
        lambda e: [*_up_to_keda(e), _upgrade(TRIGGERS),
                   Step("Put load on the router as the page does until the HPA holds maxReplicaCount (page step "
                        "6); keep it on, and make the engines' series vanish — e.g. point the engine Service at "
                        "no pod — then watch the HPA.", page=("router-port-forward", "load-generator"),
                        look=("kubectl patch svc vllm-llama3-engine-service --type merge "
                              "-p '{\"spec\":{\"selector\":{\"no-such\":\"pod\"}}}'",
                              f"kubectl get hpa {HPA} -w"))],
        "With no series to read KEDA reports an error (and the page's fallback block, where given, holds "
        "`fallback.replicas`): an empty queue is not a reading.",
        "KEDA's Prometheus scaler reads the empty result as 0 with no error (`ignoreNullValues` defaults to true): "
        "the HPA scales the loaded model in to `minReplicaCount`; the ScaledObject stays `Ready=True` and the "
        "fallback never acts.",
        lambda _e: ("Fix for the page: `ignoreNullValues: \"false\"` in the queue trigger's metadata, with the "
                    "fallback block of step 7c."),
        replicas=2),
    12: Draft(
        "Autoscaling with KEDA: with an existing kube-prometheus-stack, as the note under step 1 says, Prometheus "
        "never discovers the chart's ServiceMonitors",
        "the note under step 1 of the tutorial page \"Autoscaling with KEDA\" (current edition): \"Set "
        "`kube-prometheus-stack.enabled: false` and your existing Prometheus Operator will automatically discover "
        "the ServiceMonitors\"",
        lambda e: [_existing_stack(e), *_up_to_keda(e, step2_keys=("servingEngineSpec.serviceMonitor",
                                                                    "routerSpec.serviceMonitor", "kube-prometheus-stack")),
                   Step("Look at the ServiceMonitors' labels, at what the existing Prometheus selects, and at what it "
                        "scrapes.", look=("kubectl get servicemonitors --show-labels",
                                          *_existing_look(e, "-o jsonpath='{.items[0].spec.serviceMonitorSelector}'"),
                                          *_prom_query(e, "vllm:num_requests_waiting", _existing_forward(e))))],
        "The existing Prometheus scrapes the engines and the router, as the note says: `vllm:num_requests_waiting` "
        "is there for step 2's check.",
        "A kube-prometheus-stack installed with its defaults selects ServiceMonitors labelled `release: <its "
        "release>` (`serviceMonitorSelectorNilUsesHelmValues: true`). The chart's carry `release: test` (engine, "
        "from `servingEngineSpec.labels`) and `release: router` (router): the existing Prometheus never scrapes "
        "them, the queue metric never appears, and KEDA reads nothing.",
        lambda _e: ("Fix for the page: tell users to label both ServiceMonitors for their stack — "
                    "`servingEngineSpec.serviceMonitor.additionalLabels` and `routerSpec.serviceMonitor.additionalLabels` "
                    "`{release: <their kube-prometheus-stack release>}` (the chart writes them after the workload's "
                    "labels, so they win) — or to set `serviceMonitorSelectorNilUsesHelmValues: false` in their stack.")),
    13: Draft(
        "Autoscaling with KEDA: with the subchart off for an existing Prometheus, the triggers still query the "
        "subchart's Prometheus Service, which does not exist",
        "the tutorial page's step 4 (and 7a) `serverAddress` and step 2's port-forward, read with the note under "
        "step 1 (`kube-prometheus-stack.enabled: false`)",
        lambda e: [_existing_stack(e), *_up_to_keda(e), _upgrade(TRIGGERS),
                   Step("Look at the ScaledObject and the HPA as the page does (page step 5), and for the Service.",
                        look=(*LOOK_SCALING, "kubectl get svc vllm-kube-prometheus-stack-prometheus"))],
        "The ScaledObject is `READY True` and the HPA reads its metric from the existing Prometheus.",
        "The Service `vllm-kube-prometheus-stack-prometheus` exists only with the subchart: every poll fails (no "
        "such host), the ScaledObject turns `Ready=False` (`TriggerError`), the HPA cannot read its metric and the "
        "model never scales. The page's port-forward to that Service fails the same way.",
        lambda _e: ("Fix for the page: with an existing stack, point `serverAddress` at its Prometheus Service with "
                    "its namespace, e.g. `http://kube-prometheus-stack-prometheus.monitoring.svc:9090`, and "
                    "port-forward to that Service.")),
}


def _existing_stack(e: Edition) -> Step:
    """The stack the note under step 1 assumes: a kube-prometheus-stack installed with its defaults."""
    stack = e.monitoring.existing
    release, namespace = (stack.release, stack.namespace) if stack else ("kube-prometheus-stack", "monitoring")
    return Step("Have a kube-prometheus-stack installed with its defaults, as the note under step 1 assumes "
                "(not a page step).",
                look=(f"helm install {release} prometheus-community/kube-prometheus-stack -n {namespace} "
                      "--create-namespace",))


def _existing_look(e: Edition, what: str) -> tuple[str, ...]:
    namespace, _service = e.prometheus("vllm", "default")
    return (f"kubectl get prometheus -n {namespace} {what}",)


def _existing_forward(e: Edition) -> str:
    """The port-forward to the existing stack's Prometheus (the page's names the subchart's)."""
    namespace, service = e.prometheus("vllm", "default")
    return f"kubectl port-forward -n {namespace} svc/{service} 9090:9090"


# ---- quoting the page's values ---------------------------------------------------------------------
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path(text: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _PATH_PART.findall(text)]


def pick(tree: Any, paths: Iterable[str]) -> dict[str, Any]:
    """The keys at `paths` (`a.b[0].c`) of a values tree, in their place; a list item keeps its
    `name` so a reader knows which one it is. Paths the tree does not have are left out."""
    out: dict[str, Any] = {}
    for text in paths:
        parts = _path(text)
        src: Any = tree
        dst: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(part, int):
                if not isinstance(src, list) or part >= len(src) or not isinstance(dst, list):
                    break
                while len(dst) <= part:
                    dst.append({})
                src = src[part]
                if isinstance(src, Mapping) and "name" in src and isinstance(dst[part], dict):
                    dst[part].setdefault("name", src["name"])
                if last:
                    dst[part] = src
                dst = dst[part]
                continue
            if not isinstance(src, Mapping) or part not in src or not isinstance(dst, dict):
                break
            src = src[part]
            if last:
                dst[part] = src
            else:
                dst = dst.setdefault(part, [] if isinstance(src, list) else {})
    return out


def page_text(path: Path) -> str:
    """A pinned values file without the harness's header comment: the page's block verbatim."""
    lines = path.read_text().splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def _values_block(edition: Edition, step: Step) -> list[str]:
    path = edition.values_file(step.values or "")
    where = f"`values.yaml` — the page's {_which(step.values or '')}"
    if step.keys is None:
        return [f"{where}, verbatim:", "", "```yaml", page_text(path).rstrip(), "```", ""]
    quoted = pick(yaml.safe_load(path.read_text()) or {}, step.keys)
    body = yaml.safe_dump(redact_tree(quoted), sort_keys=False, allow_unicode=True).rstrip()
    return [f"{where}, the keys that matter here (the rest as on the page):", "", "```yaml", body, "```", ""]


def _which(name: str) -> str:
    return {"tutorial-step2.yaml": "step-2 file", "tutorial-step4.yaml": "step-4 file"}.get(name, name)


def _reproduction(edition: Edition, draft: Draft) -> list[str]:
    out: list[str] = []
    for number, step in enumerate(draft.steps(edition), start=1):
        out += [f"{number}. {step.says}", ""]
        if step.values:
            out += _values_block(edition, step)
        commands = [edition.commands[role] for role in step.page if role in edition.commands]
        if commands:
            out += ["The page's commands:", "", "```console", *commands, "```", ""]
        if step.look:
            out += ["To look (not the page's):" if commands or step.values else "", "",
                    "```console", *step.look, "```", ""]
    return [line for i, line in enumerate(out) if line or (i and out[i - 1])]


# ---- versions --------------------------------------------------------------------------------------
def _shorten_source(source: str) -> str:
    """A chart source without this machine's paths: a path into the harness's tree from `src/` on."""
    found = re.search(r"(?:^|\s)(/\S*?/)(src/vllm_stack_e2e/\S*)", source)
    if found:
        return source.replace(found.group(1) + found.group(2), f"vllm-stack-e2e's {found.group(2)}")
    return source


def _chart_line(chart: Mapping[str, Any]) -> str:
    if not chart:
        return "not recorded (the run stopped before resolving the chart)"
    name, version = chart.get("name", "?"), chart.get("version", "?")
    source = _shorten_source(redact_text(str(chart.get("source") or "?")))
    if is_stand_in(chart):
        real = str(version).split("-standin", 1)[0]
        return (f"`{name}` {version} — **the lab's stand-in, NOT the real vllm/vllm-stack**: written in "
                f"vllm-stack-e2e from the contract of vllm/vllm-stack {real} (source: {source})")
    return f"`{name}` {version} from {source} (the real chart)"


def _edition_of(run: Mapping[str, Any]) -> tuple[Edition, str]:
    record = run.get("edition")
    if isinstance(record, Mapping) and record.get("name") in editions.EDITIONS:
        return editions.get(str(record["name"])), str(record.get("why") or "")
    return editions.get(editions.DEFAULT), "not recorded in run.json (a run before editions: the first edition)"


def _versions(run: Mapping[str, Any], edition: Edition, why: str) -> list[str]:
    facts = {str(k): redact_text(str(v)) for k, v in (run.get("facts") or {}).items()}
    chart = chart_of(run)
    rows = [("Chart", _chart_line(chart)),
            ("KEDA", facts.get("keda", "not recorded")),
            ("Kubernetes", facts.get("kubernetes", "not recorded")),
            ("Prometheus", facts.get("prometheus", "not recorded")),
            ("helm", facts.get("helm", "not recorded")),
            ("Cluster", facts.get("backend", str(run.get("backend") or "not recorded"))),
            ("Tutorial", f"\"{editions.PAGE_TITLE}\" (vLLM Production Stack docs, `{editions.PAGE_PATH}`), edition "
                         f"`{edition.name}` — {edition.title}; followed because: {why or 'not recorded'}"),
            ("Page pinned from", f"{edition.published or 'not recorded'}; upstream commit: "
                                 + (f"`{edition.commit}`" if edition.commit else
                                    "not recorded (vllm-stack-e2e pins the page by its values and commands, "
                                    "verbatim, not by commit)")),
            ("Run", f"{run.get('run_id', '?')}, profile `{run.get('profile', '?')}` (the harness's profile "
                    "shortens the page's intervals; the values and commands below are the page's)")]
    return ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows] + [""]


def _and(items: Sequence[Any]) -> str:
    """`3`, `3 and 6`, `3, 6 and 7`."""
    words = [str(i) for i in items]
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---- what the run observed -------------------------------------------------------------------------
def _step_token(step: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", step.lower())


def _runs(samples: Sequence[Mapping[str, Any]], key: str, t0: float) -> str | None:
    """How one sampled field went: `False in all 16 samples`, or `True until +5.0 s, then False`."""
    values = [(float(s["t"]) - t0, s.get(key)) for s in samples if s.get(key) not in (None, "None")]
    if not values:
        return None
    changes: list[tuple[float, Any]] = []
    for at, value in values:
        if not changes or changes[-1][1] != value:
            changes.append((at, value))
    if len(changes) == 1:
        return f"{changes[0][1]} in all {len(values)} samples"
    parts = [f"{changes[0][1]}"] + [f"{value} from {at:+.1f} s" for at, value in changes[1:]]
    return ", then ".join(parts)


def _timeline_lines(timeline: Mapping[str, Any], run_dir: Path) -> list[str]:
    summary = summarize_timeline(timeline)
    samples = [s for s in timeline.get("samples") or [] if isinstance(s, Mapping) and "t" in s]
    name = summary.name
    png = run_dir / "plots" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    link = (f"plot: [plots/{png.name}](../plots/{png.name}) (attach it to the issue)" if png.is_file()
            else f"data: [timelines/{name}.json](../timelines/{name}.json)")
    out = [f"Timeline `{name}` — {link}:", ""]
    t0 = float(samples[0]["t"]) if samples else 0.0
    bullets = [f"{summary.samples} samples over {summary.seconds:.1f} s"
               + (f", load up to {summary.peak_concurrency} concurrent requests" if summary.peak_concurrency else ""),
               f"replicas: at most {summary.peak_spec} desired, {summary.peak_ready} ready"]
    for key, label in (("so_ready", "ScaledObject Ready"), ("so_active", "ScaledObject Active"),
                       ("so_fallback", "ScaledObject Fallback"), ("hpa_scaling_active", "HPA ScalingActive"),
                       ("hpa_metric", "HPA metric reading")):
        seen = _runs(samples, key, t0)
        if seen:
            bullets.append(f"{label}: {seen}")
    if not any(s.get("hpa_metric") not in (None, "None") for s in samples) and samples:
        bullets.append("HPA metric reading: none in any sample")
    errors = [float(s["keda_errors"]) for s in samples if isinstance(s.get("keda_errors"), (int, float))]
    if errors:
        bullets.append(f"KEDA's error counter for the ScaledObject (keda_scaled_object_errors_total): "
                       f"{errors[0]:g} → {errors[-1]:g}")
    if summary.peak_queue is not None:
        query = redact_text(str(timeline.get("queue_query") or ""))
        bullets.append(f"queue read by the harness (`{query}`, on the same Prometheus): at most "
                       f"{summary.peak_queue:g}" + (f", threshold {summary.threshold:g}" if summary.threshold else ""))
    if summary.peak_running is not None:
        bullets.append(f"requests running on the engines, as Prometheus saw them: at most {summary.peak_running:g}")
    if timeline.get("keda_unread"):
        bullets.append(f"KEDA's own reading failed: {redact_text(str(timeline['keda_unread']))}")
    out += [f"- {b}" for b in bullets]
    out += [f"- at {at:+.1f} s: {text}" for at, text in summary.events]
    return out + [""]


def _keda_errors(log: str, limit: int = 5) -> list[str]:
    """The KEDA operator's distinct error lines, each once with how often it came."""
    seen: dict[str, list[Any]] = {}
    for line in log.splitlines():
        if "ERROR" not in line and "error" not in line.lower():
            continue
        key = re.sub(r"^\S+\s+", "", line)  # without its timestamp
        key = re.sub(r"time=[0-9T:Z-]+", "time=…", key)
        if key in seen:
            seen[key][1] += 1
        else:
            seen[key] = [line, 1]
    picked = list(seen.values())[:limit]
    return [f"{line}" + (f"   (×{count})" if count > 1 else "") for line, count in picked]


def _conditions(describe: str) -> list[str]:
    """`Type=Status (Reason: Message)` of a `kubectl describe` Conditions block."""
    block = describe.split("Conditions:", 1)
    if len(block) < 2:
        return []
    out, current = [], {}
    for line in block[1].splitlines()[1:]:
        found = re.match(r"\s+(Message|Reason|Status|Type):\s*(.*)$", line)
        if not found:
            break
        current[found.group(1)] = found.group(2).strip()
        if found.group(1) == "Type":
            why = ": ".join(v for v in (current.get("Reason"), current.get("Message")) if v)
            out.append(f"{current.get('Type')}={current.get('Status', '?')}" + (f" ({why})" if why else ""))
            current = {}
    return out


def _artifacts(run_dir: Path, test: TestResult, namespace: str) -> list[str]:
    folder = run_dir / "artifacts" / re.sub(r"[^A-Za-z0-9_.-]+", "_", test.nodeid)[:120]
    if not folder.is_dir():
        return []
    rel = f"../artifacts/{folder.name}/"
    out = [f"Evidence the run collected for `{test.name}`: [{rel[3:]}]({rel})", ""]
    describe = folder / "describe-scaledobject.txt"
    if describe.is_file():
        conditions = _conditions(describe.read_text(errors="replace"))
        if conditions:
            out += ["ScaledObject conditions (`kubectl describe`):", ""] + [f"- {redact_text(c)}" for c in conditions]
            out.append("")
    log = folder / "keda-operator.log"
    if log.is_file():
        lines = _keda_errors(log.read_text(errors="replace"))
        if lines:
            out += ["KEDA operator log, its error lines about the run's namespace:", "", "```text",
                    *[redact_text(line) for line in lines], "```", ""]
    prom = folder / "prometheus.json"
    if prom.is_file():
        try:
            dump = json.loads(prom.read_text())
        except ValueError:
            dump = None
        if isinstance(dump, Mapping):
            out += ["Prometheus queries at the time:", ""]
            for query, series in dump.items():
                if not isinstance(series, list):
                    out.append(f"- `{redact_text(str(query))}`: {redact_text(str(series))[:200]}")
                    continue
                ours = [s for s in series if isinstance(s, Mapping)
                        and (s.get("labels") or {}).get("namespace") in (None, namespace)]
                values = ", ".join(f"{s.get('value'):g}" if isinstance(s.get("value"), (int, float)) else "?"
                                   for s in ours[:8])
                out.append(f"- `{redact_text(str(query))}`: {len(series)} series, {len(ours)} of the run's "
                           f"namespace or without one" + (f" (values {values})" if values else ""))
            out.append("")
    return out


def _observed(met: Met, everything: Sequence[Met], run: Mapping[str, Any], run_dir: Path) -> list[str]:
    out: list[str] = []
    if met.preflight:
        out += ["Before installing anything, the harness's preflight checks of the page's values said:", ""]
        for finding in met.preflight:
            out.append(f"- {finding.get('severity', 'finding')}: {finding.get('message', '')}"
                       + (f" — fix: {finding['fix']}" if finding.get("fix") else ""))
        out.append("")
    if met.xfails:
        out += ["The page's claims it broke. Before each, the harness read the deployed objects, found this defect "
                "and ran the claim as a strict expected failure (xfail); each failed:", ""]
        seen = {x.test.nodeid: met_evidence(met.number, x.message) for x in met.xfails}
        common = set(seen.values())
        for xfail in met.xfails:
            test = xfail.test
            claim = STEP_TITLES.get(test.step, "")
            also = (f"; broken by defect{'s' if len(xfail.also) > 1 else ''} {', '.join(map(str, xfail.also))} "
                    "too" if xfail.also else "")
            own = f" — seen: {seen[test.nodeid]}" if len(common) > 1 and seen[test.nodeid] else ""
            out.append(f"- {test.step}{f' ({claim})' if claim else ''}: `{test.name}`{own}{also}")
        if len(common) == 1 and next(iter(common)):
            out += ["", f"What the harness saw in the cluster: {next(iter(common))}."]
        out += ["", "The xfail reasons as run.json records them:", "", "```text",
                *dict.fromkeys(x.message for x in met.xfails), "```", ""]
    steps = list(dict.fromkeys(x.test.step for x in met.xfails))
    timelines = load_timelines(run, run_dir)
    others = [m.number for m in everything if m.number != met.number]
    needs = DRAFTS[met.number].replicas if met.number in DRAFTS else 0
    for step in steps:
        token = _step_token(step)
        for timeline in timelines:
            if _step_token(str(timeline.get("name", ""))).startswith(token):
                out += [f"During {step}:", ""] + _timeline_lines(timeline, run_dir)
                peak = summarize_timeline(timeline).peak_spec
                if needs and peak is not None and peak < needs:
                    out += [f"In this run {step} never got past {peak} replica{'s' if peak != 1 else ''}, so the "
                            f"error this defect causes at {needs}+ replicas was not reached here (the claim failed "
                            "without it)" + (f" — defect{'s' if len(others) > 1 else ''} "
                                           f"{_and(others)} stopped scaling first." if others else "."), ""]
    namespace = str(run.get("namespace") or "")
    for xfail in met.xfails:
        out += _artifacts(run_dir, xfail.test, namespace)
    if others:
        links = _and([f"[defect {n}](defect-{n}.md)" for n in others])
        out += [f"This run also met {links}"
                + ("; where they act on the same step, its observations above show them together." if steps
                   else "."), ""]
    if not out:
        out = ["Nothing beyond the registry's record (no preflight finding or xfail text in run.json).", ""]
    return out


# ---- the fix ---------------------------------------------------------------------------------------
def _page_scaledobject(edition: Edition) -> dict[str, Any]:
    """The ScaledObject the page's step-4 values ask for, as far as a fix overlay needs it."""
    values = yaml.safe_load(edition.values_file("tutorial-step4.yaml").read_text()) or {}
    keda = ((values.get("servingEngineSpec") or {}).get("modelSpec") or [{}])[0].get("keda") or {}
    return {"kind": "ScaledObject", "spec": {"triggers": keda.get("triggers") or [],
                                             "maxReplicaCount": keda.get("maxReplicaCount", 100)}}


def fix_overlay(met: Met, edition: Edition, namespace: str, release: str = "vllm") -> str | None:
    """The harness's fix overlay for this defect alone, applied to the page's step-4 values, as
    `vllm_stack_e2e.fixes` writes it for the run's namespace (None: the defect has none)."""
    if not met.defect.fixable:
        return None
    run = fixes.FixContext(namespace, release, edition.prometheus(release, namespace))
    data = fixes.overlay_values([_page_scaledobject(edition)], {met.number}, run)
    if not data:
        return None
    return redact_text(fixes.text(redact_tree(data), {met.number: met.evidence}))


# The scenario a run's fix overlay (fixes/fix-<scenario>.yaml, vllm_stack_e2e.context) was written for,
# and the page's step it is; fix-step4.yaml serves several (7c's contrast, the scenarios beyond the page).
FIX_STEPS = {"scale-to-zero": "step 7a", "hpa-behavior": "step 7b", "fallback": "step 7c"}


def _run_fix_files(run_dir: Path, number: int) -> list[tuple[str, list[int]]]:
    """The fix overlays the run wrote (model.harness_fixes) that carry this defect's fix, by file
    name, with every defect each fixes."""
    return [(f"fix-{name}.yaml", list(numbers)) for name, numbers in harness_fixes(run_dir).items()
            if number in numbers]


def _fix(met: Met, edition: Edition, run: Mapping[str, Any], run_dir: Path) -> list[str]:
    d = met.defect
    out = [f"{d.fix[:1].upper()}{d.fix[1:]}.", ""]
    namespace = str(run.get("namespace") or "<namespace>")
    overlay = fix_overlay(met, edition, namespace)
    if overlay:
        out += [f"The harness's fix overlay for this defect alone, on the page's step-4 values (applied after them "
                f"with `-f`; `FIX_DEFECTS={d.number}` applies it to a run)"
                + (f"; `{namespace}` is the run's namespace — use the release's" if namespace in overlay else "")
                + ":", "", "```yaml", overlay.rstrip(), "```", ""]
    else:
        out += ["The harness has no values overlay for this one.", ""]
    files = _run_fix_files(run_dir, d.number)
    if files:
        out += ["The run applied this fix in overlays of its own (each fixes the defects named with it too); "
                "where a step of the page applied one, that step's result:", ""]
        steps = {s.step: s for s in summarize_steps(test_results(run))}
        for name, numbers in files:
            others = [str(n) for n in numbers if n != d.number]
            line = f"- [fixes/{name}](../fixes/{name})" + (
                f", with defect{'s' if len(others) > 1 else ''} {_and(others)}" if others else "")
            scenario = re.sub(r"^fix-|(-asked)?\.yaml$", "", name)
            step = "the whole run (FIX_DEFECTS)" if name.endswith("-asked.yaml") else FIX_STEPS.get(scenario)
            result = steps.get(FIX_STEPS.get(scenario, ""))
            if step and result is not None and result.tests:
                counts = result.counts
                line += (f": {step} ({result.title}) — {counts['passed'] + counts['xpassed']} passed, "
                         f"{counts['failed'] + counts['error']} failed")
            elif step:
                line += f": {step}"
            out.append(line)
        out.append("")
    out += [f"vllm-stack-e2e docs: `{d.doc}`", ""]
    return out


# ---- one file ----------------------------------------------------------------------------------
def render(met: Met, everything: Sequence[Met], run: Mapping[str, Any], run_dir: Path) -> str:
    """defect-<N>.md for one run."""
    d = met.defect
    draft = DRAFTS.get(d.number)
    edition, why = _edition_of(run)
    chart = chart_of(run)
    title = draft.title if draft else d.title
    out = [f"# {title}", ""]
    if is_stand_in(chart):
        out += [f"> **Seen with the lab's stand-in chart** ({chart.get('name', '?')} {chart.get('version', '?')}), "
                "not the real vllm/vllm-stack, on simulated GPU nodes and vLLM engines (real Kubernetes, KEDA and "
                "Prometheus). The chart-side behaviour is the stand-in's; the values and commands quoted below are "
                "the page's, verbatim.", ""]
    where = draft.where if draft else "see the registry's explanation"
    out += [f"**Where:** {where} — {UPSTREAM_REPO}.", "",
            f"{d.explanation[:1].upper()}{d.explanation[1:]}.", "",
            "## Versions", "", *_versions(run, edition, why),
            "## Reproduction", ""]
    if draft:
        note = draft.note(edition)
        out += _reproduction(edition, draft) + ([f"Note: {note}", ""] if note else [])
        out += ["## Expected", "", draft.expected, "", "## Actual", "", draft.actual, ""]
    else:
        out += ["No reproduction recorded for this defect; see the explanation above.", ""]
    out += ["## What the run observed", "", *_observed(met, everything, run, run_dir),
            "## Fix", "", *_fix(met, edition, run, run_dir)]
    text = "\n".join(out).rstrip() + "\n"
    return redact_text(text)


# ---- runs, suites and the command line -------------------------------------------------------------
@dataclass
class Written:
    run_dir: Path
    files: list[tuple[Met, Path]]
    unregistered: list[int]
    edition: str


def write(run_dir: Path) -> Written:
    """Write <run>/upstream/defect-<N>.md for each defect the run met (stale ones removed)."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    met, unregistered = met_defects(run)
    folder = run_dir / FOLDER
    for stale in folder.glob("defect-*.md") if folder.is_dir() else []:
        stale.unlink()
    files = []
    for entry in met:
        folder.mkdir(exist_ok=True)
        path = folder / f"defect-{entry.number}.md"
        path.write_text(render(entry, met, run, run_dir))
        files.append((entry, path))
    return Written(run_dir, files, unregistered, _edition_of(run)[0].name)


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(f"REPORT={path} {what}: give a run folder (reports/<run-id>, with run.json) or a suite "
                       "folder (reports/suite-*), e.g. make upstream-report REPORT=reports/<run-id>")


def suite_runs(suite: Path) -> list[Path]:
    """The tutorial runs of a suite folder: the runs suite.json groups as `tutorial` (else the
    folders named tutorial-*), each its newest run folder."""
    names: list[str] = []
    record = suite / "suite.json"
    if record.is_file():
        try:
            names = [str(r.get("name")) for r in json.loads(record.read_text()).get("runs") or []
                     if isinstance(r, Mapping) and r.get("group") == "tutorial"]
        except (ValueError, AttributeError):
            names = []
    if not names:
        names = sorted(p.name for p in suite.glob("tutorial-*") if p.is_dir())
    runs = []
    for name in names:
        found = sorted((p.parent for p in (suite / name).glob("*/run.json")), key=lambda p: p.name)
        if found:
            runs.append(found[-1])
    return runs


def newest_run(reports: Path) -> Path:
    """The newest run folder under `reports` (run ids sort by time), in a suite folder or not."""
    runs = [p.parent for p in Path(reports).rglob("run.json") if RUN_ID.fullmatch(p.parent.name)]
    if not runs:
        raise ConfigError(f"no run folder with a run.json under {reports}: run `make e2e` first, or give "
                          "REPORT=reports/<run-id>")
    return max(runs, key=lambda p: (p.name, str(p)))


def targets(report: Path | None, reports_dir: Path) -> tuple[list[Path], str]:
    """The run folders to write for, and a line saying how they were chosen."""
    if report is None:
        chosen = newest_run(reports_dir)
        return [chosen], f"REPORT not given: the newest run under {reports_dir} is {chosen}"
    if not report.exists():
        raise _bad(report, "does not exist")
    if not report.is_dir():
        raise _bad(report, "is a file, not a run directory")
    if (report / "run.json").is_file():
        return [report], f"REPORT={report}: one run"
    if (report / "suite.json").is_file() or report.name.startswith("suite-"):
        runs = suite_runs(report)
        if not runs:
            raise _bad(report, "is a suite folder with no tutorial run in it")
        return runs, (f"REPORT={report}: a suite, its {len(runs)} tutorial run{'s' if len(runs) != 1 else ''} (its "
                      "other runs are not reported here; give one's run folder to report it)")
    raise _bad(report, "is not a run directory (no run.json in it)")


def index_lines(done: Written) -> list[str]:
    head = f"{done.run_dir} (edition {done.edition}):"
    if not done.files:
        lines = [f"{head} no upstream defect met (no preflight finding or xfail names a registered defect); "
                 "no file written"]
    else:
        lines = [f"{head} {len(done.files)} upstream defect{'s' if len(done.files) != 1 else ''}, in "
                 f"{done.run_dir / FOLDER}/"]
        for met, path in done.files:
            seen = [f"{len(met.preflight)} preflight" if met.preflight else "",
                    f"{len(met.xfails)} xfailed" if met.xfails else ""]
            lines.append(f"  {path.name:<13} {met.defect.title}  ({', '.join(s for s in seen if s)})")
    if done.unregistered:
        lines.append(f"  not written: defect number(s) {', '.join(map(str, done.unregistered))} named by the run are "
                     f"not registered ({defects.DOC})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m vllm_stack_e2e.report.upstream [REPORT]`."""
    from . import reports_root

    parser = argparse.ArgumentParser(prog="python -m vllm_stack_e2e.report.upstream",
                                     description="Write <run>/upstream/defect-<N>.md, an upstream issue draft per "
                                                 "defect the run met, and print an index.")
    parser.add_argument("report", nargs="?", type=Path, default=None,
                        help="a run folder (reports/<run-id>) or a suite folder (reports/suite-*); default: the "
                             "newest run under --reports-dir")
    parser.add_argument("--reports-dir", type=Path, default=None, help="default: $REPORTS_DIR or <repo>/reports")
    args = parser.parse_args(argv)
    try:
        runs, how = targets(args.report, args.reports_dir or reports_root())
        done = [write(run_dir) for run_dir in runs]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(how)
    for written in done:
        print("\n".join(index_lines(written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
