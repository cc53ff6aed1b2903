"""What each test of the suite proves when it passes — and what it does not, on the lab and on a
real cluster (`current`). The report's claims table reads this module; a test that ran without an
entry shows "no statement registered" there, and tests/unit/test_report_claims.py fails when a test
function under tests/e2e/ has none.

Keyed by the test function's name without its parameters (`test_keda_deployment_available`, not
`test_keda_deployment_available[keda-operator]`); a name used in several modules (the beyond
scenarios' KEDA-error claims) has one entry that fits each of them.

Each entry says
- `proves`: what a pass shows, on any backend;
- `never`: what no pass shows, whatever the backend (the claim's own limits);
- `lab`: what a pass on the lab does not show — there GPUs, container images, model load time and
  the engines' timing are simulated and the chart is by default the lab's stand-in, while the
  control plane, KEDA and Prometheus are real (docs/lab.md, "What the lab does not simulate");
- `current`: what a pass on a real cluster does not show;
- `installs`: the component whose install the claim follows ("keda", "observability"): a run that
  found it already on the cluster did not run the page's install, and the row says so.

What a whole run did not show (the chart, the profile's intervals, harness fixes applied) is read
from run.json by `run_scope` and by the rows (`claim_rows`), not written here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NO_STATEMENT = "no statement registered"


@dataclass(frozen=True)
class Claim:
    proves: str
    lab: str
    current: str
    never: str = ""
    installs: str = ""  # "keda" | "observability" | ""

    def does_not(self, backend: str) -> str:
        """The claim's limits on `backend`: its own, then the backend's."""
        specific = self.lab if backend == "lab" else self.current
        return " ".join(part for part in (self.never, specific) if part)


# ---- what the lab simulates, said once ---------------------------------------------------------------
_LAB_ENGINE = ("The engine is the simulator (vllm-sim): no image is pulled, no GPU attached, no model "
               "weights loaded; nvidia.com/gpu is a number the scheduler counts.")
_LAB_LOAD_TIME = ("Readiness comes after the simulated model load (seconds, LAB_ENGINE_STARTUP_S), not a real "
                  "model's image pull and weight load.")
_LAB_TIMING = ("The queue forms in the simulator's scheduling model, sized by the run's ENGINE preset "
               "(overview), not on a GPU: how much traffic a real engine takes before requests wait is not shown.")
_LAB_ROUTER = ("The router is the lab's stand-in (vllm-sim gateway, written to the production-stack router's "
               "discovery contract), not the router image.")
_LAB_KEDA = ("KEDA 2.20.2 runs as local processes built from its Go module; the kedacore/keda chart, its images, "
             "RBAC and certificates are not installed.")
_LAB_CHART = "The chart is the overview's: on the lab by default the stand-in, not vllm/vllm-stack's templates."
_LAB_PROMETHEUS = ("Prometheus runs as a local process: in the first edition the lab reimplements "
                   "observability/install.sh's scrape selection (no kube-prometheus-stack, no prometheus-adapter); "
                   "in the current edition the real prometheus-operator configures it.")
_LAB_METRICS = "The series come from the simulator's exposition of vLLM V1's metrics, not from a vLLM build."
_LAB_HPA_SYNC = "The HPA controller syncs at the lab's period (run.json hpa_sync_seconds), not necessarily a cluster's."

# ---- and what one real cluster does not show --------------------------------------------------------------
_CUR_VERSIONS = "Only this cluster's Kubernetes, KEDA and Prometheus versions (overview), none other."
_CUR_CHART = "Only the chart the overview names (a stand-in there proves nothing about a chart release)."
_CUR_GPUS = "Only this cluster's GPU type, driver and the image the chart deploys."
_CUR_LOAD = ("The load is the harness's generator (prompts of the page's length, concurrency raised until the "
             "queue passes the threshold), not production traffic.")
_CUR_START = "Only this cluster's image pulls and model load time; another GPU or model changes the budget's margin."
_CUR_KEDA_OPERATOR_METRICS = ("Where the API server cannot proxy to KEDA's operator pod, its error counter is "
                              "not read and the test is skipped, saying so.")

_BROKEN_SOURCE = ("The metric source is broken as a refused connection (a Prometheus this run installed "
                  "stopped, else the trigger pointed at 127.0.0.1:9): a source that times out, answers "
                  "errors or returns no series is not shown.")
_BEYOND_BASE = ("The scenario starts from the page's step-4 stack with the harness's fixes of the defects its "
                "claim is not about (fixes/ beside the report), not the page's values as published.")

CLAIMS: dict[str, Claim] = {
    # ---- step 1: observability ----------------------------------------------------------------------------
    "test_prometheus_answers_through_the_pages_port_forward": Claim(
        "Prometheus answers (ready, version 2 or later) through the page's `kubectl port-forward` to the "
        "edition's Service.",
        _LAB_PROMETHEUS,
        _CUR_VERSIONS,
        never="Grafana, Alertmanager and prometheus-adapter are not checked.",
        installs="observability"),
    "test_prometheus_targets_include_the_stack": Claim(
        "Prometheus scrapes this run's engine and router Services (`up == 1` for both).",
        "Prometheus dials the lab's local twins of the pods, not pod IPs over a CNI; the targets are simulated.",
        "Pod networking and scrape selection on this cluster only.",
        never="Scrape interval and retention are not judged."),
    "test_queue_metric_has_series_for_the_engine": Claim(
        "Prometheus stores `vllm:num_requests_waiting` for the engine, labelled `model_name`.",
        _LAB_METRICS,
        "Only the vLLM version of the image the chart deploys."),
    # ---- step 2: vLLM -----------------------------------------------------------------------------------------
    "test_engine_pods_ready": Claim(
        "`helm install` with the page's step-2 values gives an engine pod labelled `model=llama3` that passes "
        "its readiness probe.",
        f"{_LAB_ENGINE} {_LAB_LOAD_TIME} {_LAB_CHART}",
        f"{_CUR_GPUS} {_CUR_CHART}",
        never="Answers' quality and throughput are not judged."),
    "test_router_lists_the_model": Claim(
        "The router's `/v1/models` lists the model once it has discovered the Ready engine.",
        _LAB_ROUTER,
        "Only the router version the chart deploys.",
        never="Routing across several engines is not compared."),
    # ---- step 3: KEDA -----------------------------------------------------------------------------------------
    "test_keda_deployment_available": Claim(
        "KEDA's three Deployments (operator, metrics API server, admission webhooks; one case each) are "
        "Available in namespace keda.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        installs="keda"),
    "test_external_metrics_apiservice_available": Claim(
        "The APIService v1beta1.external.metrics.k8s.io is Available: kube-apiserver reaches KEDA's metrics "
        "server.",
        f"{_LAB_KEDA} The API server reaches it through the lab's relay, not a Service in front of a pod.",
        "This cluster's aggregation layer and network policies only.",
        installs="keda"),
    "test_external_metrics_api_answers": Claim(
        "`GET /apis/external.metrics.k8s.io/v1beta1` answers and lists `externalmetrics`.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never="No metric value is read here (step 5 reads one).",
        installs="keda"),
    # ---- step 4: the upgrade ---------------------------------------------------------------------------------
    "test_release_values_are_the_pages_key_by_key": Claim(
        "After the page's `helm upgrade`, the release's values (`helm get values`) carry each key of the page's "
        "step-4 file as the page wrote it — `keda.enabled: true` and the triggers among them — except the keys "
        "the run's overlays set (profile, backend, harness fixes, EXTRA_VALUES), listed apart by file.",
        _LAB_CHART,
        _CUR_CHART,
        never="Not that the upgrade keeps what step 2 enabled (the engine's ServiceMonitor: step 6 shows it)."),
    "test_engine_deployment_leaves_replicas_to_the_autoscaler": Claim(
        "The release's engine Deployment has no `spec.replicas` once KEDA is on, so helm leaves the count to "
        "the HPA.",
        _LAB_CHART,
        _CUR_CHART),
    # ---- step 5: ScaledObject and HPA ------------------------------------------------------------------------
    "test_scaledobject_targets_engine_deployment": Claim(
        "The ScaledObject targets the engine Deployment (apps/v1).",
        _LAB_CHART,
        _CUR_CHART),
    "test_scaledobject_min_max": Claim(
        "The ScaledObject has minReplicaCount 1 and maxReplicaCount 3, as the page's values.",
        _LAB_CHART,
        _CUR_CHART),
    "test_scaledobject_has_one_prometheus_trigger": Claim(
        "The ScaledObject has one prometheus trigger with the page's query and threshold 5.",
        _LAB_CHART,
        _CUR_CHART,
        never="Not that the query reads the queue (the READY and metric-reading claims show that)."),
    "test_scaledobject_ready": Claim(
        "The ScaledObject stays READY True for two polling intervals: KEDA's polls of the trigger's "
        "Prometheus succeed.",
        "KEDA resolves serverAddress with the lab's CoreDNS from a network namespace set up as namespace keda's "
        "pods; the answer is the same as a pod's there, the cluster DNS deployment is the lab's.",
        _CUR_VERSIONS),
    "test_hpa_min_max_and_replicas": Claim(
        "KEDA's HPA has minReplicas 1, maxReplicas 3 and runs 1 replica.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    "test_hpa_targets_queue_length": Claim(
        "The HPA has one External metric (`s0-prometheus`) with target AverageValue 5.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    "test_hpa_reads_its_external_metric": Claim(
        "The HPA controller reads its external metric through KEDA's metrics API within two syncs of its "
        "creation.",
        f"{_LAB_HPA_SYNC} {_LAB_KEDA}",
        _CUR_VERSIONS),
    "test_hpa_metric_reading_is_zero_at_idle": Claim(
        "The HPA reads 0 at idle (the page's TARGETS 0/5).",
        _LAB_METRICS,
        _CUR_VERSIONS,
        never="A 0 is also what KEDA reads from an empty result: only with the metric claims beside it does "
              "it mean an idle queue."),
    "test_trigger_queries_name_metrics_prometheus_stores": Claim(
        "Each trigger query names the metric in the form this Prometheus stores and selects labels its series "
        "carry (defects 2 and 5).",
        f"{_LAB_METRICS} Prometheus is the lab's 3.16 (LAB_PROMETHEUS=2 for 2.x).",
        "Only this cluster's Prometheus version."),
    # ---- step 6: scaling under load ---------------------------------------------------------------------------
    "test_trigger_query_matches_a_scraped_series": Claim(
        "While an engine ran, the ScaledObject's own trigger query (scoped to the run's namespace) matched a "
        "series scraped within one reading lag: the 0 KEDA reads at idle is a reading, not an empty result or "
        "a series no longer scraped.",
        f"{_LAB_METRICS} {_LAB_PROMETHEUS}",
        "Read through the harness's port-forward to Prometheus, not from KEDA's namespace: whether KEDA reaches "
        "the same Prometheus is step 5's claim.",
        never="It reads the query once after the load, holding freshness only until an upgrade's change would "
              "show; a scrape that breaks later is not shown."),
    "test_queue_rises_above_threshold_under_load": Claim(
        "Load through the page's router port-forward drives the engines' queue, as Prometheus reads it, above "
        "the threshold 5.",
        _LAB_TIMING,
        _CUR_LOAD),
    "test_replicas_grow_under_load": Claim(
        "KEDA and the HPA take the engine Deployment to 2 or more replicas within the budget (polls, HPA syncs "
        "and engine readiness).",
        f"{_LAB_TIMING} {_LAB_LOAD_TIME} {_LAB_HPA_SYNC}",
        f"{_CUR_START} {_CUR_LOAD}"),
    "test_replicas_stay_within_max": Claim(
        "spec.replicas never passes maxReplicaCount 3 through the load and a settling window.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS,
        never="When the replicas never grew (see test_replicas_grow_under_load) it holds trivially."),
    "test_scaledobject_stays_ready_past_one_replica": Claim(
        "The ScaledObject stays Ready while 2 or more engines are Ready and scraped, so the HPA can scale back.",
        _LAB_METRICS,
        _CUR_VERSIONS),
    # ---- step 7a: scale to zero ---------------------------------------------------------------------------------
    "test_the_scaledobject_allows_zero_with_two_triggers": Claim(
        "The page's scale-to-zero values give a ScaledObject with minReplicaCount 0, maxReplicaCount 5 and two "
        "triggers (the queue and the traffic keepalive).",
        _LAB_CHART,
        _CUR_CHART),
    "test_idle_stack_scales_to_zero": Claim(
        "Idle, KEDA takes the engine Deployment to 0 replicas after the cooldown.",
        "No GPU is freed: the lab's GPUs are counters.",
        _CUR_VERSIONS),
    "test_scaledobject_is_inactive_at_zero": Claim(
        "At zero the ScaledObject reports Active=False.",
        _LAB_KEDA,
        _CUR_VERSIONS),
    "test_hpa_keeps_min_one_while_keda_owns_zero": Claim(
        "At zero the HPA keeps minReplicas 1 (KEDA, not the HPA, owns 0 ↔ 1).",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    "test_first_request_from_zero_gets_503": Claim(
        "The first request to the router while the model is at zero gets 503.",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_request_succeeds_once_an_engine_is_up": Claim(
        "The same request then succeeds (200) once KEDA has woken an engine, within the cold-start budget.",
        f"{_LAB_LOAD_TIME} The cold start measured is seconds, a real model's is minutes. {_LAB_ROUTER}",
        f"{_CUR_START} A client's own timeout is not tested."),
    "test_steady_traffic_keeps_the_stack_up": Claim(
        "Steady traffic keeps at least one replica for two cooldowns.",
        _LAB_ROUTER,
        _CUR_LOAD),
    "test_no_steady_request_fails": Claim(
        "The steady traffic of those two cooldowns gets answers, none of its requests failing.",
        _LAB_ROUTER,
        _CUR_LOAD),
    "test_router_lists_no_model_at_zero": Claim(
        "At zero the router's `/v1/models` lists no model.",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_router_lists_the_model_only_once_an_engine_is_ready": Claim(
        "During the cold start the router lists the model only once an engine pod is Ready.",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_the_router_restarts_at_zero": Claim(
        "The premise of the restarted-router claims: the model back at zero, the router pod replaced by a new one "
        "that is Ready.",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_a_restarted_router_lists_no_model_at_zero": Claim(
        "A router restarted while the model is at zero lists no model at `/v1/models`.",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_a_restarted_router_does_not_know_the_model_at_zero": Claim(
        "A router restarted while the model is at zero answers 404 \"not found\" — not the page's 503 "
        "(production-stack #1003, a deviation the suite records).",
        _LAB_ROUTER,
        "Only the router version the chart deploys."),
    "test_a_request_to_a_restarted_router_still_wakes_the_model": Claim(
        "A request to that restarted router still wakes the model: it succeeds once an engine is up.",
        f"{_LAB_ROUTER} {_LAB_LOAD_TIME}",
        _CUR_START,
        never="A client that retries only on 503 would have given up at the 404; that client is not run."),
    # ---- step 7b: HPA behavior -----------------------------------------------------------------------------------
    "test_hpa_carries_the_behavior": Claim(
        "The HPA's scale-down behavior equals the values' (stabilization window and Percent policy).",
        _LAB_CHART,
        _CUR_CHART),
    "test_replicas_reached_the_maximum": Claim(
        "Under load the engine Deployment reaches the scenario's maximum (5 replicas).",
        f"{_LAB_TIMING} {_LAB_ENGINE}",
        f"{_CUR_LOAD} {_CUR_GPUS}"),
    "test_replicas_come_back_to_one_after_the_load": Claim(
        "After the load, the engine Deployment scales down from the maximum back to 1 replica within the budget "
        "(the window and the Percent policy's halvings): the premise of judging the scale-down.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    "test_scale_down_respects_the_behavior": Claim(
        "After the load, no scale-down before the stabilization window and no step larger than the Percent "
        "policy allows per period.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    # ---- step 7c: fallback -----------------------------------------------------------------------------------------
    "test_the_scaledobject_carries_the_fallback": Claim(
        "The ScaledObject carries the page's fallback {failureThreshold 3, replicas 2}.",
        _LAB_CHART,
        _CUR_CHART),
    "test_fallback_condition_true_when_metrics_fail": Claim(
        "With the metric source down, KEDA reports Fallback=True.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BROKEN_SOURCE),
    "test_deployment_settles_at_fallback_replicas": Claim(
        "With the metric source down, the engine Deployment settles at the fallback's 2 replicas (Ready).",
        _LAB_ENGINE,
        _CUR_GPUS,
        never=_BROKEN_SOURCE),
    "test_deployment_holds_the_fallback_replicas_while_metrics_fail": Claim(
        "Settled there, the Deployment holds the fallback's 2 replicas for a poll and an HPA sync while the "
        "source stays down.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS,
        never=_BROKEN_SOURCE),
    "test_fallback_clears_when_metrics_return": Claim(
        "When the source returns, Fallback turns False.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BROKEN_SOURCE),
    "test_scaling_follows_the_metric_again": Claim(
        "After the source returns, the Deployment follows the metric back to 1 replica.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS),
    "test_without_fallback_the_scaledobject_reports_the_trigger_error": Claim(
        "Without a fallback block the same failure leaves the ScaledObject Ready=False (TriggerError), with no "
        "Fallback condition.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BROKEN_SOURCE),
    "test_without_fallback_it_recovers_when_metrics_return": Claim(
        "Without a fallback block the ScaledObject turns Ready again once the source returns.",
        _LAB_KEDA,
        _CUR_VERSIONS),
    # ---- step 8: cleanup -------------------------------------------------------------------------------------------
    "test_disabling_keda_removes_scaledobject_and_hpa": Claim(
        "`keda.enabled: false` and the upgrade remove the ScaledObject and its HPA.",
        _LAB_CHART,
        _CUR_CHART),
    "test_disabling_keda_gives_the_deployment_its_replicas_back": Claim(
        "After KEDA is off the engine Deployment is back at the chart's replicaCount.",
        _LAB_CHART,
        _CUR_CHART),
    "test_uninstalling_keda_removes_its_workloads_and_apiservice": Claim(
        "Uninstalling KEDA removes its workloads, its APIService and namespace keda.",
        f"{_LAB_KEDA} Its uninstall stops those processes and deletes their placeholder objects.",
        "Skipped when KEDA was there before the run: a run removes only what it installed.",
        installs="keda"),
    "test_uninstalling_observability_removes_it": Claim(
        "Uninstalling observability removes its Prometheus Service and releases.",
        "The lab's Prometheus runs as local processes; the first edition's observability/uninstall.sh is not run.",
        "Skipped when observability was there before the run: a run removes only what it installed.",
        installs="observability"),
    "test_nothing_the_run_created_remains": Claim(
        "Nothing the run recorded creating remains (namespaces, releases, cluster-wide objects), besides what "
        "helm leaves by design and the overview names (CRDs).",
        "The lab's own processes and state are the lab's to remove (`make lab-down`), not the page's.",
        "Objects other than those the run recorded are not looked for.",
        never="What another tenant of the cluster created is not looked at."),
    # ---- beyond the page ---------------------------------------------------------------------------------------------
    "test_the_load_queues_requests_without_passing_the_threshold": Claim(
        "The activation scenario's premise: the queue was above 0 and never above the threshold.",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_replicas_hold_at_one_below_the_threshold": Claim(
        "A queue at or below the threshold keeps one replica for two KEDA polls and two HPA syncs.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
    "test_keda_counts_no_errors_for_the_scaledobject": Claim(
        "KEDA counted no new error for the run's ScaledObject (`keda_scaled_object_errors_total`) during the "
        "scenario's healthy phase.",
        "KEDA's operator metrics are read from its local process.",
        _CUR_KEDA_OPERATOR_METRICS,
        never=_BEYOND_BASE),
    "test_the_runs_prometheus_stores_kedas_reading_of_the_queue": Claim(
        "The run's Prometheus stores KEDA's own reading of the queue (`keda_scaler_metrics_value`), non-zero "
        "under load.",
        "The lab's Prometheus scrapes KEDA as job keda-operator, which a cluster does only with a ServiceMonitor "
        "for it.",
        "Skipped where this cluster's Prometheus does not scrape KEDA's operator.",
        never=_BEYOND_BASE),
    "test_the_neighbour_is_really_broken": Claim(
        "The broken-neighbour premise: another namespace's ScaledObject reports its trigger error.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
    "test_the_queue_passes_the_threshold_beside_it": Claim(
        "The broken-neighbour load's premise: beside the broken ScaledObject, the run's queue passes the "
        "threshold.",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_replicas_grow_within_step_6s_budget_beside_it": Claim(
        "Beside that broken ScaledObject, the run's Deployment still grows within step 6's budget.",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC}",
        _CUR_START,
        never=_BEYOND_BASE + " One broken neighbour, not many."),
    "test_the_model_stands_at_the_phases_replicas_before_the_break": Claim(
        "The premise of each fallback-with-zero phase: the model woken and loaded to 2+ replicas, or idle at zero, "
        "before the metric source goes down (one case each).",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC}",
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_the_scaledobject_reports_the_fallback": Claim(
        "With scale to zero and fallback together, the ScaledObject reports Fallback=True when the source goes "
        "down (at 2+ replicas, and at zero: one case each).",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=f"{_BEYOND_BASE} {_BROKEN_SOURCE}"),
    "test_at_2_plus_the_deployment_settles_at_the_fallbacks_replicas": Claim(
        "Down at 2+ replicas, the Deployment settles at the fallback's replicas: the premise of the hold.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS,
        never=f"{_BEYOND_BASE} {_BROKEN_SOURCE}"),
    "test_at_2_plus_the_fallback_holds_its_replicas_instead_of_scaling_to_zero": Claim(
        "Down at 2+ replicas, the fallback holds them for a cooldown, a poll and an HPA sync: no scale to zero.",
        _LAB_HPA_SYNC,
        _CUR_VERSIONS,
        never=f"{_BEYOND_BASE} {_BROKEN_SOURCE}"),
    "test_at_zero_the_fallback_lifts_the_model_to_its_replicas": Claim(
        "Down at zero, KEDA lifts the model to the fallback's replicas.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=f"{_BEYOND_BASE} {_BROKEN_SOURCE}"),
    "test_keda_counts_no_errors_while_the_source_is_up": Claim(
        "KEDA counted no new error while the source was up (one case per phase).",
        "KEDA's operator metrics are read from its local process.",
        _CUR_KEDA_OPERATOR_METRICS,
        never=_BEYOND_BASE),
    "test_keda_counts_the_errors_while_the_source_is_down": Claim(
        "KEDA's error counter rose while the source was down (one case per phase): its metrics tell the failure.",
        "KEDA's operator metrics are read from its local process.",
        _CUR_KEDA_OPERATOR_METRICS,
        never=_BEYOND_BASE),
    "test_the_load_holds_the_model_at_its_maximum": Claim(
        "Under load the HPA held the engine Deployment at the ScaledObject's maxReplicaCount before any upgrade: "
        "the premise of the upgrade claims.",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC}",
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_an_upgrade_keeps_the_replicas_the_hpa_gave": Claim(
        "A `helm upgrade` of the release while scaled out — a pod annotation (the pod template rolls), then the "
        "chart's replicaCount too — left spec.replicas at or above the HPA's count, every change the API server "
        "wrote from just before helm ran to a hold window after.",
        f"{_LAB_CHART} helm is the machine's helm 4 (server-side apply); helm 3's client-side three-way merge is "
        "not shown.",
        "Only this helm version's apply method and this chart's templates.",
        never="Only the two settings changed here; a change of the engine's labels or selector is not shown."),
    "test_an_upgrade_leaves_spec_replicas_to_the_hpa": Claim(
        "In no state the API server wrote after each upgrade did a helm field manager own the Deployment's "
        "spec.replicas (managedFields): the chart left the count to KEDA's HPA.",
        f"{_LAB_CHART} helm is the machine's helm 4 (server-side apply).",
        "Only this helm version's apply method and this chart's templates.",
        never="Only the states written within the hold window after helm ran."),
    "test_an_upgrade_keeps_the_hpa_and_its_decision": Claim(
        "Through each upgrade KEDA kept the same HPA (its uid) and the HPA's desiredReplicas never fell below the "
        "count it had decided.",
        f"{_LAB_KEDA} {_LAB_HPA_SYNC}",
        "Only this cluster's KEDA version.",
        never=_BEYOND_BASE),
    "test_the_model_scales_in_under_the_trickle": Claim(
        "Load took the model to maxReplicaCount, and with traffic down to a trickle the HPA scaled it in to its "
        "minimum and the deleted engine pods ended: the premise of the scale-in claim.",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC} Pods end as the lab's kubelet-like supervisor ends them (SIGTERM, the "
        "grace period, SIGKILL), not a kubelet.",
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_no_answer_in_flight_is_cut_on_scale_in": Claim(
        "While the HPA scaled in, every streamed answer of the trickle (requests of about 9 s at 1 a second) "
        "ended complete — none aborted, cut or refused.",
        "The engines' shutdown is the simulator's model of vLLM 0.18+ (docs/termination.md), the router's the "
        "stand-in's; a real vLLM's and router's timing is not shown.",
        "Only this image's vLLM version and the router's; answers longer than the trickle's are not shown.",
        never=_BEYOND_BASE),
    "test_the_series_of_a_loaded_model_vanish": Claim(
        "Load held the model at maxReplicaCount, then — its engine Service made to select no pod — the trigger's "
        "own query matched no series: the premise of the empty-query claims.",
        f"{_LAB_PROMETHEUS} {_LAB_TIMING}",
        _CUR_LOAD,
        never=_BEYOND_BASE + " The series vanish one way (no endpoints); a refused scrape or a renamed port is "
              "not shown."),
    "test_a_vanished_queue_does_not_scale_the_model_in": Claim(
        "With the page's trigger, while the queue's series were gone under load, the Deployment kept the replicas "
        "it had for a whole scale-down window.",
        f"{_LAB_KEDA} {_LAB_HPA_SYNC}",
        "Only this cluster's KEDA version.",
        never=_BEYOND_BASE),
    "test_with_ignore_null_values_false_the_series_of_a_loaded_model_vanish": Claim(
        "The same premise with ignoreNullValues \"false\" and the page's fallback block: the model at its maximum "
        "under load, then the trigger's query matching no series.",
        f"{_LAB_PROMETHEUS} {_LAB_TIMING}",
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_with_ignore_null_values_false_the_fallback_holds_the_replicas": Claim(
        "With ignoreNullValues \"false\" and the page's fallback block, while the queue's series were gone under "
        "load, the Deployment kept at least fallback.replicas for a whole scale-down window.",
        f"{_LAB_KEDA} {_LAB_HPA_SYNC}",
        "Only this cluster's KEDA version.",
        never=_BEYOND_BASE),
    "test_with_ignore_null_values_false_keda_counts_the_empty_query_as_errors": Claim(
        "With ignoreNullValues \"false\", KEDA counted the empty result as errors of the ScaledObject (its "
        "operator's error counter).",
        _LAB_KEDA,
        _CUR_KEDA_OPERATOR_METRICS,
        never=_BEYOND_BASE),
    "test_with_ignore_null_values_false_the_fallback_becomes_active": Claim(
        "With ignoreNullValues \"false\" and the page's fallback block, the ScaledObject's Fallback condition was "
        "True by the end of the hold.",
        _LAB_KEDA,
        "Only this cluster's KEDA version.",
        never=_BEYOND_BASE),
    "test_the_queue_passes_the_threshold_before_the_crash": Claim(
        "The disruption's premise: the load raised the queue above the threshold, so the crash falls mid-scale "
        "(one case per crashed server).",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_keda_answers_the_hpa_again_after_the_crash": Claim(
        "After KEDA's operator or metrics API server crashes mid-scale, KEDA answers the HPA's metric query "
        "again.",
        "The crash is a SIGKILL of a local process, restarted with a kubelet's back-off by the lab; pods are "
        "not rescheduled.",
        "The crash is a deletion of KEDA's pods; a node's loss is not shown.",
        never=_BEYOND_BASE),
    "test_replicas_still_grow_within_the_budget": Claim(
        "Despite the crash, the Deployment grows to 2 within step 6's budget plus a restart allowance.",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC}",
        _CUR_START,
        never=_BEYOND_BASE),
    "test_the_queue_passes_the_threshold_under_the_load": Claim(
        "The pause scenario's premise: with the pause set, the load raised the queue above the threshold.",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_the_queue_stands_above_the_threshold_while_paused": Claim(
        "Each paused phase's premise: the queue stood above the threshold while the annotation held (one case "
        "per annotation).",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_the_scaledobject_reports_paused": Claim(
        "With `paused-replicas` and then `paused` set, the ScaledObject reports Paused (one case per annotation).",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
    "test_a_paused_scaledobject_holds_the_deployment_under_load": Claim(
        "A paused ScaledObject holds the Deployment at one replica while the queue stands above the threshold.",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_removing_the_pause_clears_the_paused_condition": Claim(
        "With the pause annotations removed, the ScaledObject reports Paused=False: the premise of the resume.",
        _LAB_KEDA,
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
    "test_removing_the_pause_resumes_scaling": Claim(
        "Removing the pause lets the scale-up happen within step 6's budget.",
        f"{_LAB_TIMING} {_LAB_HPA_SYNC}",
        _CUR_START,
        never=_BEYOND_BASE),
    "test_a_second_stack_of_the_page_installs_beside_the_first": Claim(
        "The page's own `helm install vllm …` installs a second stack in another namespace of the same cluster.",
        _LAB_CHART,
        _CUR_CHART,
        never=_BEYOND_BASE),
    "test_the_second_stack_queues": Claim(
        "The two-stacks premise: the second stack's queue is above the threshold.",
        _LAB_TIMING,
        _CUR_LOAD,
        never=_BEYOND_BASE),
    "test_the_pages_query_reads_only_its_own_stack": Claim(
        "The run's trigger query, as deployed, reads none of the other stack's series.",
        "Both stacks' Prometheus configuration is the lab's (first edition: its scrape selection).",
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
    "test_with_its_namespace_selected_the_query_reads_only_its_own_stack": Claim(
        "With the run's namespace selected (the fix of defect 9), the query reads only its own stack.",
        "Both stacks' Prometheus configuration is the lab's (first edition: its scrape selection).",
        _CUR_VERSIONS,
        never=_BEYOND_BASE),
}


def claim_name(nodeid: str) -> str:
    """The registry's key of a test: its function name, without module, class or parameters."""
    return re.sub(r"\[.*\]$", "", nodeid.rsplit("::", 1)[-1])


def claim_for(name: str) -> Claim | None:
    return CLAIMS.get(claim_name(name))


# ---- the table's rows --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimRow:
    """One test function of the run (its parameters folded), what it proves and what it does not."""

    step: str
    name: str
    outcomes: tuple[str, ...]  # each parametrisation's outcome, in run order
    defects: tuple[int, ...]  # the upstream defects its xfails named
    proves: str
    does_not: str
    registered: bool

    @property
    def outcome(self) -> str:
        """`passed`, `passed ×3`, `xfailed (defect 7)`, `2 passed, 1 failed`."""
        counts = Counter(self.outcomes)
        if len(counts) == 1:
            only, n = next(iter(counts.items()))
            text = only + (f" ×{n}" if n > 1 else "")
        else:
            text = ", ".join(f"{n} {o}" for o, n in counts.items())
        if self.defects:
            text += f" (defect{'s' if len(self.defects) > 1 else ''} {', '.join(map(str, self.defects))})"
        return text

    @property
    def main_outcome(self) -> str:
        """The outcome that colours the row: a failure first, then xfail, then the rest."""
        for outcome in ("failed", "error", "xpassed", "xfailed", "passed", "skipped"):
            if outcome in self.outcomes:
                return outcome
        return self.outcomes[0] if self.outcomes else "skipped"


def claim_rows(tests: Iterable[Any], backend: str, *, fixes: Mapping[str, Iterable[int]] | None = None,
               reused: Iterable[str] = (), overlays: Mapping[str, Iterable[str]] | None = None) -> list[ClaimRow]:
    """One row per test function that ran (`tests`: report.model.TestResult), in run order: what it
    proves and what it does not on `backend`, plus what the run itself changed for its step — the
    harness fixes applied (`fixes`: step → defect numbers), the user's EXTRA_VALUES overlays
    (`overlays`: step → paths) and a component the run found installed (`reused`: "keda",
    "observability") where the claim follows the page's install of it."""
    fixes = {step: tuple(sorted(set(numbers))) for step, numbers in (fixes or {}).items()}
    overlays = {step: tuple(paths) for step, paths in (overlays or {}).items()}
    reused = set(reused)
    groups: dict[tuple[str, str], list[Any]] = {}
    for test in tests:
        groups.setdefault((test.step, claim_name(test.nodeid)), []).append(test)
    rows = []
    for (step, name), members in groups.items():
        claim = CLAIMS.get(name)
        defects = tuple(sorted({d for t in members if t.outcome == "xfailed" for d in t.defects}))
        if claim is None:
            proves, does_not = NO_STATEMENT, NO_STATEMENT
        else:
            proves, limits = claim.proves, [claim.does_not(backend)]
            if claim.installs and claim.installs in reused:
                limits.append(f"This run found {_COMPONENT[claim.installs]} already installed: it did not run "
                              "the page's install.")
            if fixes.get(step):
                numbers = fixes[step]
                many = len(numbers) > 1
                limits.append(f"Not with the page's values as published: the harness's fix{'es' if many else ''} for "
                              f"defect{'s' if many else ''} {and_list(numbers)} {'were' if many else 'was'} applied "
                              "to this step.")
            if overlays.get(step):
                paths = overlays[step]
                limits.append(f"Not with the page's values as published: the EXTRA_VALUES overlay"
                              f"{'s' if len(paths) > 1 else ''} {and_list(paths)} went into this step.")
            does_not = " ".join(limits)
        rows.append(ClaimRow(step, name, tuple(t.outcome for t in members), defects, proves, does_not,
                             claim is not None))
    return rows


_COMPONENT = {"keda": "KEDA", "observability": "the observability stack"}


def and_list(items: Iterable[Any]) -> str:
    """`3`, `3 and 6`, `3, 6 and 7` (nothing: an empty string)."""
    words = [str(i) for i in items]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


# ---- what the whole run did not show ------------------------------------------------------------------
PAGE_TIMING = "the page's: KEDA polls every 15 s, cooldown 360 s, 300 s scale-down window"
KUBERNETES_HPA_SYNC = 15.0


def run_scope(run: Mapping[str, Any], *, stand_in: bool, reused: Iterable[str] = ()) -> list[str]:
    """Lines that hold for every row of the table, read from run.json: what was real and what was
    simulated on its backend, the chart, the profile's intervals, the HPA's sync period, the fixes
    the run was asked to apply and what it found installed."""
    backend = str(run.get("backend") or "?")
    facts = run.get("facts") or {}
    lines = []
    if backend == "lab":
        engine = run.get("engine") if isinstance(run.get("engine"), Mapping) else {}
        lines.append(
            "Backend lab — real: the control plane (kube-apiserver, kube-controller-manager with its HPA controller, "
            f"scheduler, etcd), KEDA {facts.get('keda', '?')}, Prometheus {facts.get('prometheus', '?')}; simulated: "
            "the GPU nodes, container images, model load time and the engines' timing"
            + (f" (engine preset {engine.get('name')})" if engine.get("name") else "")
            + ", and the router. No row shows how a real GPU, image or model behaves.")
    else:
        lines.append(f"Backend {backend} — this cluster's control plane, KEDA, Prometheus, GPUs and images, as the "
                     "overview names them; no other cluster or version.")
    chart = run.get("chart") if isinstance(run.get("chart"), Mapping) else {}
    if stand_in:
        lines.append(f"Chart: {chart.get('name', '?')} {chart.get('version', '?')}, the lab's stand-in written from "
                     "the chart's contract — no row says anything about a vllm/vllm-stack release.")
    elif chart:
        lines.append(f"Chart: {chart.get('name', '?')} {chart.get('version', '?')} only.")
    else:
        lines.append("Chart: not recorded.")
    profile = str(run.get("profile") or "?")
    if profile != "tutorial":
        lines.append(f"Profile {profile}: KEDA's and the HPA's intervals are shortened "
                     f"(values/profile-{profile}.yaml), so a timing that passed is the profile's, not {PAGE_TIMING}.")
    sync = run.get("hpa_sync_seconds")
    if isinstance(sync, (int, float)) and float(sync) != KUBERNETES_HPA_SYNC:
        lines.append(f"The HPA controller synced every {float(sync):g} s (Kubernetes' default is "
                     f"{KUBERNETES_HPA_SYNC:g} s).")
    asked = [int(n) for n in run.get("fix_defects") or [] if isinstance(n, int)]
    if asked:
        lines.append(f"FIX_DEFECTS={','.join(map(str, asked))}: the harness's fixes for these upstream defects were "
                     "applied to the run's upgrades; a claim they guard passed with the fix, not as published.")
    extra = [f"{scope}:{path}" if scope else str(path) for scope, path in
             (i for i in run.get("extra_values") or [] if isinstance(i, (list, tuple)) and len(i) == 2)]
    if extra:
        lines.append(f"EXTRA_VALUES={','.join(extra)}: the user's overlays went into the run's upgrades; a claim of "
                     "those steps held with them, not with the page's values as published.")
    found = sorted(reused)
    if found:
        lines.append("Found already installed and left in place: "
                     + ", ".join(_COMPONENT.get(c, c) for c in found)
                     + " — the page's install of it was not run.")
    return lines
