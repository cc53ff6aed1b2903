"""The known upstream defects (docs/upstream-defects.md), in one place: what each is, how the
harness finds it before installing, how the suite shows it, and the fix.

Everything that talks about a defect reads this registry: helm lint parsing (defect 1), the
values checks and preflight (2–5), the pytest marker `@pytest.mark.upstream_defect(N)` (the
plugin decides xfail from what is deployed, see `Defect.present`), run.json, the report and
the release gate's verdict. A defect the harness can fix carries its fix here too
(`Defect.fix_trigger`, `Defect.fix_values`); vllm_stack_e2e.fixes applies those of the defects found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DOC = "docs/upstream-defects.md"

# The objects of one kind in the ScaledObject's namespace (live from the API, or rendered by helm).
Lookup = Callable[[str], "list[Mapping[str, Any]]"]
# A ScaledObject (deployed or rendered) and a lookup of its neighbours -> the evidence that the
# defect is present, or None.
Detector = Callable[[Mapping[str, Any], Lookup], "str | None"]


@dataclass(frozen=True)
class FixContext:
    """What a fix may need to know of the run it is written for."""

    namespace: str  # the release's namespace
    release: str = "vllm"
    prometheus: tuple[str, str] | None = None  # (namespace, Service) of the run's Prometheus, when known
    monitoring_release: str | None = None  # the release label the run's own kube-prometheus-stack selects


# A Prometheus trigger's metadata (a copy the fix may change) -> its fixed metadata.
TriggerFix = Callable[[dict[str, Any], FixContext], "dict[str, Any]"]
# The objects helm rendered -> the values overlay that fixes the defect (merged with the other fixes':
# maps key by key, servingEngineSpec.modelSpec entry by entry).
ValuesFix = Callable[["list[Mapping[str, Any]]", FixContext], "dict[str, Any]"]
#: The namespace KEDA's operator runs in (the tutorial's `helm install keda … --namespace keda`):
#: where a trigger's serverAddress is resolved.
KEDA_NAMESPACE = "keda"

# vLLM engine metrics (labelled model_name, engine — never model; docs/metrics.md).
_ENGINE_METRIC = re.compile(
    r"vllm:(num_requests_running|num_requests_waiting|kv_cache_usage_perc|prompt_tokens_total|"
    r"generation_tokens_total|request_success_total|num_preemptions_total|time_to_first_token_seconds|"
    r"inter_token_latency_seconds|e2e_request_latency_seconds|request_queue_time_seconds|"
    r"request_prefill_time_seconds|request_decode_time_seconds)\w*\s*\{(?P<matchers>[^}]*)\}"
)
_MODEL_MATCHER = re.compile(r"(?:^|,)\s*model\s*(=~|!~|!=|=)")
# An expression whose outermost operation reduces to one series: an aggregation without a
# per-pod grouping, or a scalar()/vector().
_AGGREGATION = re.compile(
    r"^\s*(sum|max|min|avg|count|group|stddev|stdvar|quantile|count_values|scalar|vector)\b\s*"
    r"(?:(by|without)\s*\((?P<pre>[^)]*)\)\s*)?\(",
    re.IGNORECASE,
)
_PER_POD_LABELS = {"pod", "instance", "engine", "endpoint", "pod_ip", "server"}


def is_aggregated(query: str) -> bool:
    """Whether a PromQL query returns at most one series however many engine pods exist: its
    outermost operation is an aggregation without `by (pod|instance|…)`, or scalar()/vector().
    A heuristic on the text (no PromQL parser); `sum(x) / sum(y)` counts as aggregated."""
    match = _AGGREGATION.match(query)
    if not match:
        return False
    grouping = match.group("pre")
    if grouping is None:
        # `sum(x) by (pod)`: the grouping follows the aggregation's parentheses.
        depth, end = 0, None
        for pos in range(match.end() - 1, len(query)):
            depth += {"(": 1, ")": -1}.get(query[pos], 0)
            if depth == 0:
                end = pos
                break
        tail = re.match(r"\s*(by|without)\s*\(([^)]*)\)", query[end + 1:]) if end is not None else None
        grouping = tail.group(2) if tail and tail.group(1).lower() == "by" else None
    elif match.group(2).lower() == "without":
        grouping = None
    labels = {label.strip() for label in (grouping or "").split(",") if label.strip()}
    return not labels & _PER_POD_LABELS


def selects_model_label(query: str) -> bool:
    """Whether the query selects vLLM engine series by `model=…` (they carry `model_name`)."""
    return any(_MODEL_MATCHER.search(m.group("matchers")) for m in _ENGINE_METRIC.finditer(query))


def _prometheus_queries(scaledobject: Mapping[str, Any]) -> list[str]:
    triggers = ((scaledobject.get("spec") or {}).get("triggers")) or []
    return [str((t.get("metadata") or {}).get("query") or "") for t in triggers if t.get("type") == "prometheus"]


def _per_pod_query(scaledobject: Mapping[str, Any], _lookup: Lookup | None = None) -> str | None:
    spec = scaledobject.get("spec") or {}
    if int(spec.get("maxReplicaCount", 100)) <= 1:  # KEDA's default maximum is 100
        return None
    bare = [q for q in _prometheus_queries(scaledobject) if q and not is_aggregated(q)]
    return f"the deployed ScaledObject queries {bare[0]!r} (not aggregated)" if bare else None


def _model_selector(scaledobject: Mapping[str, Any], _lookup: Lookup | None = None) -> str | None:
    chosen = [q for q in _prometheus_queries(scaledobject) if selects_model_label(q)]
    return f"the deployed ScaledObject queries {chosen[0]!r} (selects model=)" if chosen else None


# A vLLM metric in a query (either name form: `vllm:x`, or `vllm_x` as Prometheus 2.x stores it) and
# its selector's matchers, when it has a selector.
_VLLM_SELECTOR = re.compile(r"(?<![\w:])(?P<name>vllm[:_][A-Za-z0-9_:]+)(?P<braces>\{(?P<matchers>[^}]*)\})?")
_NAMESPACE_MATCHER = re.compile(r"(?:^|,)\s*namespace\s*=(?!~)")


def unscoped_selectors(query: str) -> list[str]:
    """The vLLM metric selectors of a query that do not pin `namespace="…"`: on a cluster with
    another stack they select its series too."""
    return [m.group(0) for m in _VLLM_SELECTOR.finditer(query)
            if not _NAMESPACE_MATCHER.search(m.group("matchers") or "")]


def scope_to_namespace(query: str, namespace: str) -> str:
    """`query` with `namespace="<namespace>"` added to each vLLM metric selector that lacks it."""
    def scoped(match: re.Match[str]) -> str:
        matchers = (match.group("matchers") or "").strip().rstrip(",")
        if _NAMESPACE_MATCHER.search(matchers):
            return match.group(0)
        inner = f'{matchers},namespace="{namespace}"' if matchers else f'namespace="{namespace}"'
        return f"{match.group('name')}{{{inner}}}"
    return _VLLM_SELECTOR.sub(scoped, query)


def _unscoped_query(scaledobject: Mapping[str, Any], _lookup: Lookup | None = None) -> str | None:
    for query in _prometheus_queries(scaledobject):
        loose = unscoped_selectors(query)
        if loose:
            return f"the deployed ScaledObject queries {query!r}: {loose[0]} selects every namespace's series"
    return None


def _subchart_in_release(scaledobject: Mapping[str, Any], lookup: Lookup | None = None) -> str | None:
    if lookup is None:
        return None
    ours = [p for p in lookup("Prometheus")
            if ((p.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/managed-by") == "Helm"]
    if not ours:
        return None
    name = (ours[0].get("metadata") or {}).get("name")
    return (f"Prometheus {name} comes from the release's kube-prometheus-stack subchart, whose ClusterRoles and "
            "ClusterRoleBindings are named after the release")


def server_host(address: str) -> str:
    """The host of a serverAddress URL (`http://name:9090` -> `name`)."""
    from urllib.parse import urlparse

    return urlparse(address if "//" in address else f"//{address}").hostname or ""


def is_short_name(host: str) -> bool:
    """A single-label name (no dot, not an IP, not localhost): the resolver completes it with the
    resolving pod's own namespace first."""
    return bool(host) and "." not in host and host != "localhost" and ":" not in host


def _short_server_name(scaledobject: Mapping[str, Any], _lookup: Lookup | None = None) -> str | None:
    namespace = (scaledobject.get("metadata") or {}).get("namespace") or ""
    if namespace == KEDA_NAMESPACE:
        return None
    for trigger in ((scaledobject.get("spec") or {}).get("triggers")) or []:
        address = str((trigger.get("metadata") or {}).get("serverAddress") or "")
        if trigger.get("type") == "prometheus" and is_short_name(server_host(address)):
            return (f"the ScaledObject in namespace {namespace or '?'} queries {address}, a short name that KEDA's "
                    f"operator resolves in namespace {KEDA_NAMESPACE}")
    return None


def _engine_servicemonitor_missing(scaledobject: Mapping[str, Any], lookup: Lookup | None = None) -> str | None:
    if lookup is None:
        return None
    prometheuses = [p for p in lookup("Prometheus") if (p.get("spec") or {}).get("serviceMonitorSelector") is not None]
    monitors = lookup("ServiceMonitor")
    if not prometheuses and not monitors:
        return None  # monitoring is neither the chart's subchart nor its ServiceMonitors here
    if any(_selects_component(m, "serving-engine") for m in monitors):
        return None
    if prometheuses:
        name = (prometheuses[0].get("metadata") or {}).get("name")
        return (f"Prometheus {name} scrapes what ServiceMonitors select, and no ServiceMonitor in the namespace selects "
                "the engine Services (servingEngineSpec.serviceMonitor is off)")
    names = ", ".join(sorted(str((m.get("metadata") or {}).get("name")) for m in monitors))
    return (f"the release's monitoring is its ServiceMonitors ({names}), and none selects the engine Services "
            "(servingEngineSpec.serviceMonitor is off)")


def _selects_component(monitor: Mapping[str, Any], component: str) -> bool:
    selector = ((monitor.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return selector.get("app.kubernetes.io/component") == component


#: The Service name suffix of a kube-prometheus-stack's Prometheus (`<fullname>-prometheus`).
KPS_PROMETHEUS_SUFFIX = "-kube-prometheus-stack-prometheus"


def _servicemonitors_unselected(scaledobject: Mapping[str, Any], lookup: Lookup | None = None) -> str | None:
    """The chart's ServiceMonitors with no Prometheus of the release to select them (the subchart off),
    labelled so that a stock kube-prometheus-stack's default selector (`release: <its release>`)
    passes them by: no `release` label, or the one the chart copies from the workloads' labels."""
    if lookup is None or lookup("Prometheus"):
        return None
    for monitor in lookup("ServiceMonitor"):
        meta = monitor.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get("app.kubernetes.io/part-of") != "vllm-stack":
            continue
        picks = (((monitor.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).get("release")
        if "release" not in labels or labels.get("release") == picks:
            shown = f"release={labels['release']}" if "release" in labels else "no release label"
            return (f"ServiceMonitor {meta.get('name')} carries {shown} (the chart's workload label) and the release has "
                    "no Prometheus of its own: a kube-prometheus-stack selects only ServiceMonitors labelled with its "
                    "own release (serviceMonitorSelectorNilUsesHelmValues: true, the chart's default)")
    return None


def _subchart_prometheus_absent(scaledobject: Mapping[str, Any], lookup: Lookup | None = None) -> str | None:
    """A trigger that queries a kube-prometheus-stack subchart's Prometheus Service while the release
    has no Prometheus (the subchart off): the name resolves nowhere."""
    if lookup is None or lookup("Prometheus"):
        return None
    for index, trigger in enumerate(((scaledobject.get("spec") or {}).get("triggers")) or []):
        address = str((trigger.get("metadata") or {}).get("serverAddress") or "")
        host = server_host(address).split(".", 1)[0]
        if trigger.get("type") == "prometheus" and host.endswith(KPS_PROMETHEUS_SUFFIX):
            return (f"trigger {index} queries {address}, the Service of the chart's kube-prometheus-stack subchart, "
                    "which this release turns off (no Prometheus in its namespace): no such Service")
    return None


SHUTDOWN_FLAG = "--shutdown-timeout"
# Defect 10's fix: how long a scaled-in engine may finish what it runs — under the pod's 30 s grace
# period (the chart has no key to raise it), above the scenarios' longest request (docs/termination.md).
SHUTDOWN_SECONDS = 25


def _no_shutdown_timeout(scaledobject: Mapping[str, Any], lookup: Lookup | None = None) -> str | None:
    """The Deployment the ScaledObject scales starts its engine without --shutdown-timeout (with no
    ScaledObject — KEDA off — every serving-engine Deployment: the fix must hold then too)."""
    if lookup is None:
        return None
    target = ((scaledobject.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
    for deployment in lookup("Deployment"):
        meta = deployment.get("metadata") or {}
        if meta.get("name") != target and (target or (meta.get("labels") or {}).get(
                "app.kubernetes.io/component") != "serving-engine"):
            continue
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod.get("containers") or []:
            words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
            if "serve" in words and not any(w.split("=")[0] == SHUTDOWN_FLAG for w in words):
                grace = pod.get("terminationGracePeriodSeconds", 30)
                return (f"Deployment {meta.get('name')} runs `vllm serve` without {SHUTDOWN_FLAG} (vLLM's default 0: a "
                        f"scaled-in engine aborts what it runs), grace period {grace}s")
    return None


def _null_read_as_zero(scaledobject: Mapping[str, Any], _lookup: Lookup | None = None) -> str | None:
    """A Prometheus trigger that leaves ignoreNullValues at KEDA's default (true)."""
    for index, trigger in enumerate(((scaledobject.get("spec") or {}).get("triggers")) or []):
        value = str((trigger.get("metadata") or {}).get("ignoreNullValues", "true")).lower()
        if trigger.get("type") == "prometheus" and value != "false":
            return (f"trigger {index} sets no ignoreNullValues \"false\": a query that matches no series reads 0, "
                    "no error, no fallback")
    return None


# ---- the fixes (vllm_stack_e2e.fixes applies them; each changes only what its defect needs) ------------
def _aggregate(meta: dict[str, Any], _run: FixContext) -> dict[str, Any]:
    query = str(meta.get("query") or "")
    if query and not is_aggregated(query):
        meta["query"] = f"sum({query})"
    return meta


def _namespaced_server(meta: dict[str, Any], run: FixContext) -> dict[str, Any]:
    address = str(meta.get("serverAddress") or "")
    host = server_host(address)
    if is_short_name(host):
        meta["serverAddress"] = address.replace(f"//{host}", f"//{host}.{run.namespace}.svc", 1)
    return meta


def _scoped_query(meta: dict[str, Any], run: FixContext) -> dict[str, Any]:
    if meta.get("query"):
        meta["query"] = scope_to_namespace(str(meta["query"]), run.namespace)
    return meta


def _null_is_an_error(meta: dict[str, Any], _run: FixContext) -> dict[str, Any]:
    meta["ignoreNullValues"] = "false"
    return meta


def _keep_engine_servicemonitor(_docs: list[Mapping[str, Any]], _run: FixContext) -> dict[str, Any]:
    return {"servingEngineSpec": {"serviceMonitor": {"enabled": True}}}


def _label_for_the_existing_stack(_docs: list[Mapping[str, Any]], run: FixContext) -> dict[str, Any]:
    if not run.monitoring_release:
        return {}
    return {spec: {"serviceMonitor": {"additionalLabels": {"release": run.monitoring_release}}}
            for spec in ("servingEngineSpec", "routerSpec")}


def _the_runs_prometheus(meta: dict[str, Any], run: FixContext) -> dict[str, Any]:
    address = str(meta.get("serverAddress") or "")
    if run.prometheus and server_host(address).split(".", 1)[0].endswith(KPS_PROMETHEUS_SUFFIX):
        namespace, service = run.prometheus
        meta["serverAddress"] = f"http://{service}.{namespace}.svc:9090"
    return meta


def _shutdown_timeout(_docs: list[Mapping[str, Any]], _run: FixContext) -> dict[str, Any]:
    # enablePrefixCaching kept at vLLM's default: the chart turns it off in a vllmConfig without it.
    return {"servingEngineSpec": {"modelSpec": [{"vllmConfig": {
        "enablePrefixCaching": True, "extraArgs": [SHUTDOWN_FLAG, str(SHUTDOWN_SECONDS)]}}]}}


@dataclass(frozen=True)
class Defect:
    """One known upstream defect."""

    number: int
    title: str  # one line, for tables
    explanation: str  # what goes wrong and why
    fix: str  # what a user does about it
    detected_by: str = ""  # how the harness finds it before installing
    shown_by: str = ""  # how the suite shows it
    present: Detector | None = None  # from a ScaledObject and its neighbours; None: not decidable from them
    # The harness's fix for a run (vllm_stack_e2e.fixes, FIX_DEFECTS), applied where the defect is found:
    fix_trigger: TriggerFix | None = None  # to every Prometheus trigger's metadata
    fix_values: ValuesFix | None = None  # a values overlay

    @property
    def fixable(self) -> bool:
        """Whether the harness can write this defect's fix for a run."""
        return self.fix_trigger is not None or self.fix_values is not None

    def evidence(self, scaledobject: Mapping[str, Any] | None, lookup: Lookup, namespace: str) -> str | None:
        """What the detector finds on a ScaledObject and its neighbours; with none there (before step 4,
        KEDA off) on the namespace alone, for the detectors that read its neighbours (ServiceMonitors,
        Prometheus objects, Deployments). None: not found, or not decidable from these objects."""
        if self.present is None:
            return None
        return self.present(scaledobject or {"kind": "ScaledObject", "metadata": {"namespace": namespace}}, lookup)

    @property
    def doc(self) -> str:
        return f"{DOC}#defect-{self.number}"

    def reason(self, evidence: str = "") -> str:
        """The xfail reason and report line: `upstream defect N: title (evidence) — fix …`."""
        seen = f" ({evidence})" if evidence else ""
        return f"upstream defect {self.number}: {self.title}{seen} — fix: {self.fix} [{self.doc}]"


DEFECTS: dict[int, Defect] = {d.number: d for d in (
    Defect(1, "chart values.schema.json types keda.triggers as an object; the tutorial uses a list",
           "`helm lint -f values.yaml` fails on the tutorial's values (object expected, array given); "
           "`helm template` and `helm install` do not enforce the schema, so installing still works",
           "write triggers as a list (as the templates need) and lint with --skip-schema-validation",
           detected_by="helm lint of the run's values (preflight)", shown_by="a preflight warning"),
    Defect(2, "default trigger query selects `model`, but vLLM's series carry `model_name`",
           "a query such as vllm:num_requests_waiting{model=\"M\"} matches nothing on a stock stack; KEDA "
           "reads an empty result as 0 (ignoreNullValues defaults to true), so it never scales",
           "select model_name=\"<modelURL>\" instead, or aggregate without a selector: sum(vllm:num_requests_waiting)",
           detected_by="the rendered ScaledObject's queries (preflight)", shown_by="a preflight warning",
           present=_model_selector),
    Defect(3, "non-aggregated query returns one series per pod: KEDA breaks at 2+ replicas",
           "the tutorial's query vllm:num_requests_waiting returns one series per engine pod; KEDA's Prometheus "
           "scaler fails on a result with more than one element, so past one replica the ScaledObject turns "
           "Ready=False (TriggerError) and the HPA can no longer scale in",
           "aggregate the query: sum(vllm:num_requests_waiting)",
           detected_by="the rendered ScaledObject's queries (preflight)",
           shown_by="strict xfail of step 6's test_scaledobject_stays_ready_past_one_replica",
           present=_per_pod_query, fix_trigger=_aggregate),
    Defect(4, "default serverAddress misses the bundled subchart's Prometheus",
           "the chart's default trigger points at prometheus-operated.monitoring.svc:9090 (the standalone "
           "observability install); with the kube-prometheus-stack subchart Prometheus is "
           "<release>-kube-prometheus-stack-prometheus in the release namespace",
           "point serverAddress at http://<release>-kube-prometheus-stack-prometheus.<namespace>.svc:9090 "
           "(a name that resolves from KEDA's namespace)",
           detected_by="values checks when the subchart is enabled (preflight)", shown_by="a preflight warning"),
    Defect(5, "Prometheus 2.x name escaping stores `vllm_…`, so a `vllm:` query reads 0",
           "a Prometheus 2.x scrape negotiates underscore escaping, so the engine's vllm:num_requests_waiting "
           "is stored as vllm_num_requests_waiting and the tutorial's query returns nothing (KEDA reads 0)",
           "run Prometheus 3.x, or query the underscore names",
           detected_by="the names Prometheus stores (preflight, once it has scraped)", shown_by="a preflight warning"),
    Defect(6, "current edition: the step-4 values drop servingEngineSpec.serviceMonitor",
           "the page's step-2 values enable the engine's ServiceMonitor, its step-4 values.yaml (the one `helm "
           "upgrade -f` applies) leaves servingEngineSpec.serviceMonitor out, and the chart's default is off: the "
           "upgrade that enables KEDA removes the engine's ServiceMonitor, Prometheus stops scraping the engines, "
           "the queue series go stale and KEDA reads 0, so the model never scales",
           "keep servingEngineSpec.serviceMonitor.enabled: true in the step-4 values (or upgrade with --reuse-values)",
           detected_by="values checks when the kube-prometheus-stack subchart is enabled (preflight; the drift check "
                       "of the published page)",
           shown_by="strict xfail of step 6's test_replicas_grow_under_load (current edition)",
           present=_engine_servicemonitor_missing, fix_values=_keep_engine_servicemonitor),
    Defect(7, "current edition: serverAddress is a short name, which KEDA resolves in its own namespace",
           "the page's triggers query http://vllm-kube-prometheus-stack-prometheus:9090; KEDA's operator runs in "
           "namespace keda, where a single-label name is completed with keda.svc.cluster.local first and the "
           "release's Service (in the release namespace) is not found: every poll fails (no such host), the HPA "
           "cannot read its metric and the model never scales",
           "name the Service with its namespace: http://<release>-kube-prometheus-stack-prometheus.<namespace>.svc:9090",
           detected_by="the rendered ScaledObject's serverAddress (preflight)",
           shown_by="strict xfail of step 5's test_scaledobject_ready and test_hpa_reads_its_external_metric and "
                    "step 6's test_replicas_grow_under_load (current edition)",
           present=_short_server_name, fix_trigger=_namespaced_server),
    Defect(8, "current edition: two stacks installed as the page says cannot share a cluster",
           "the page installs release `vllm` with the kube-prometheus-stack subchart, whose cluster-scoped objects "
           "are named after the release (ClusterRole/ClusterRoleBinding <release>-kube-prometheus-stack-operator and "
           "-prometheus, the -admission webhook configurations, kube-state-metrics' and Grafana's ClusterRoles, "
           "Services in kube-system): a second `helm install vllm` in another namespace (staging beside production, "
           "a second team) fails on the first object it does not own — `invalid ownership metadata`",
           "install each stack under its own release name (and name its Prometheus Service accordingly in the "
           "triggers), or run one monitoring stack for the cluster and turn the subchart off",
           detected_by="the isolation scenario's second install (tests/e2e/test_beyond_two_stacks.py)",
           shown_by="strict xfail of test_a_second_stack_of_the_page_installs_beside_the_first (current edition)",
           present=_subchart_in_release),
    Defect(9, "the page's trigger queries are not scoped to the release: they read every stack on the cluster",
           "`vllm:num_requests_waiting` and the keepalive's `vllm:num_incoming_requests_total` select no namespace. "
           "The first edition's Prometheus scrapes every namespace's engines, and the subchart's Prometheus "
           "discovers ServiceMonitors in every namespace (serviceMonitorNamespaceSelector {}), so with a second "
           "stack on the cluster KEDA reads its queue too: per-pod, more than one series (the scaler's error, as "
           "defect 3); summed, the other stack's load scales this one",
           "select the release's namespace in every query: vllm:num_requests_waiting{namespace=\"<namespace>\"}",
           detected_by="the rendered ScaledObject's queries",
           shown_by="strict xfail of test_the_pages_query_reads_only_its_own_stack (tests/e2e/test_beyond_two_stacks.py)",
           present=_unscoped_query, fix_trigger=_scoped_query),
    Defect(10, "scale-in cuts the answers in flight: the chart passes no --shutdown-timeout",
           "the page's ScaledObject scales the engines in as soon as the queue is gone; the ReplicaSet deletes pods "
           "whatever they are serving, the router stops sending them new requests at once, and the kubelet sends "
           "SIGTERM. vLLM 0.18+ (the chart's floating image) then ends every request in flight at once with "
           "finish_reason \"abort\" (--shutdown-timeout defaults to 0); 0.17 and older stop answering and the "
           "SIGKILL 30 s later cuts the connections. The chart sets no --shutdown-timeout and no "
           "terminationGracePeriodSeconds, so every scale-in loses the rest of the answers its engines were giving",
           f"pass {SHUTDOWN_FLAG} N in servingEngineSpec.modelSpec[].vllmConfig.extraArgs, N above the longest "
           "request and below the pod's grace period (30 s: the chart has no key to raise it)",
           detected_by="the engine Deployment's `vllm serve` arguments",
           shown_by="strict xfail of test_no_answer_in_flight_is_cut_on_scale_in (tests/e2e/test_beyond_scale_in.py)",
           present=_no_shutdown_timeout, fix_values=_shutdown_timeout),
    Defect(11, "a queue whose series vanish reads 0: the page leaves ignoreNullValues at true",
           "KEDA's Prometheus scaler returns 0 and no error for a result with no series while ignoreNullValues is "
           "true, its default, which the page's triggers keep. When the engines' series vanish under load (their "
           "ServiceMonitor or Service changed, the metrics port unreachable, a scrape refused) the HPA reads an "
           "empty queue and scales a loaded model in; the page's fallback block never acts, since nothing failed",
           "set ignoreNullValues: \"false\" in the queue trigger's metadata, with the page's fallback block: an empty "
           "result is then an error, counted toward failureThreshold, and the fallback holds its replicas",
           detected_by="the rendered ScaledObject's triggers",
           shown_by="strict xfail of test_a_vanished_queue_does_not_scale_the_model_in[page] "
                    "(tests/e2e/test_beyond_null_not_zero.py)",
           present=_null_read_as_zero, fix_trigger=_null_is_an_error),
    Defect(12, "existing Prometheus: the chart's ServiceMonitors are not selected by a stock kube-prometheus-stack",
           "the page's note under step 1 says a cluster's existing Prometheus Operator discovers the chart's "
           "ServiceMonitors by itself once the subchart is off. A kube-prometheus-stack installed with its defaults "
           "selects only ServiceMonitors labelled release=<its release> (serviceMonitorSelectorNilUsesHelmValues: "
           "true); the chart's carry release=test (engine) and release=router (router), copied from the workloads' "
           "labels, so the existing Prometheus never scrapes the engines or the router: the queue metric never "
           "appears and KEDA reads nothing",
           "label both ServiceMonitors for the existing stack: servingEngineSpec.serviceMonitor.additionalLabels and "
           "routerSpec.serviceMonitor.additionalLabels {release: <your kube-prometheus-stack release>} (the chart "
           "writes them last, so they win over the workload's release label), or set "
           "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues: false in your stack",
           detected_by="the release's ServiceMonitors' labels when it has no Prometheus of its own",
           shown_by="strict xfail of step 1's test_prometheus_targets_include_the_stack and "
                    "test_queue_metric_has_series_for_the_engine (edition existing-prometheus)",
           present=_servicemonitors_unselected, fix_values=_label_for_the_existing_stack),
    Defect(13, "existing Prometheus: the page's serverAddress names the subchart's Prometheus, which is off",
           "with the subchart off as the note under step 1 says, the page's triggers (and its port-forward) still name "
           "vllm-kube-prometheus-stack-prometheus, a Service that exists only with the subchart: KEDA's every poll "
           "fails (no such host), the HPA cannot read its metric and the model never scales",
           "point serverAddress at your stack's Prometheus Service with its namespace, e.g. "
           "http://kube-prometheus-stack-prometheus.<its namespace>.svc:9090 (and port-forward to it)",
           detected_by="the rendered ScaledObject's serverAddress when the release has no Prometheus of its own",
           shown_by="strict xfail of step 5's test_hpa_reads_its_external_metric and step 6's "
                    "test_replicas_grow_under_load (edition existing-prometheus)",
           present=_subchart_prometheus_absent, fix_trigger=_the_runs_prometheus),
)}


def get(number: int) -> Defect:
    """The registered defect `number`; KeyError names the known ones."""
    try:
        return DEFECTS[number]
    except KeyError:
        raise KeyError(f"no upstream defect {number} is registered (known: {sorted(DEFECTS)}) — add it to "
                       f"vllm_stack_e2e.defects and {DOC}") from None


def title(number: int | None) -> str:
    """The defect's title, or a note that it is not registered."""
    return DEFECTS[number].title if number in DEFECTS else f"(not a registered defect; see {DOC})"
