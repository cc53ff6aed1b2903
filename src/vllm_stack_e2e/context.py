"""The stack one run stands up: its backend, chart, namespace, the values it applies, and the
two ways in that the tutorial uses (port-forwards to Prometheus and to the router)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import kube as k
from . import kubectl as kubectl_cli
from . import editions, fixes, runplan, scaledobject, tools, values
from .helm import STANDIN_CHART
from .backends.base import Backend, ChartRef
from .config import OWNER_LABEL, RUN_LABEL, RunConfig
from .prom import Prometheus
from .sim import presets

Echo = Callable[[str], None]


@dataclass
class Created:
    """One thing this run created, for teardown and the leftovers check."""

    kind: str  # namespace | release | observability | keda | lab
    name: str
    namespace: str | None = None


@dataclass
class Stack:
    config: RunConfig
    backend: Backend
    echo: Echo = print
    ledger: list[Created] = field(default_factory=list)
    applied_plans: dict[str, values.ValuesPlan] = field(default_factory=dict)  # step -> the plan it last applied
    preflight: Any = None  # preflight.Report of the run
    facts_cache: dict[str, str] = field(default_factory=dict)
    timelines: dict[str, Any] = field(default_factory=dict)  # name -> Timeline, for evidence
    upgraded_at: float | None = None  # wall clock of the last step4_upgrade.upgrade (step 4, a scenario)
    crds_before: set[str] | None = None  # the cluster's CRDs before the run's first install (step 1)
    left_behind: dict[str, list[str]] = field(default_factory=dict)  # what -> cluster-wide objects left (not failures)
    reused: set[str] = field(default_factory=set)  # found installed and left in place: "keda", "observability"
    _chart: ChartRef | None = None
    _forwards: dict[str, kubectl_cli.PortForward] = field(default_factory=dict)
    _reopened: dict[str, float] = field(default_factory=dict)
    _prom: Prometheus | None = None
    _edition: editions.Edition | None = None
    _plans: runplan.Plans | None = None

    # ---- names --------------------------------------------------------------------------
    @property
    def kube(self) -> k.Kube:
        return self.backend.kube

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def chart(self) -> ChartRef:
        if self._chart is None:
            self._chart = self.backend.chart()
        return self._chart

    def record(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.ledger.append(Created(kind, name, namespace))
        self._save_ledger()

    def created(self, *kinds: str) -> bool:
        """Whether this run created something of these kinds (its ledger): a run removes only that."""
        return any(c.kind in kinds for c in self.ledger)

    def forget(self, kind: str, name: str) -> None:
        self.ledger = [c for c in self.ledger if not (c.kind == kind and c.name == name)]
        self._save_ledger()

    def _save_ledger(self) -> None:
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        (self.config.run_dir / "created.json").write_text(json.dumps([c.__dict__ for c in self.ledger], indent=1))

    # ---- values -------------------------------------------------------------------------
    @property
    def plans(self) -> runplan.Plans:
        """The run's values plans (vllm_stack_e2e.runplan), each built once."""
        if self._plans is None:
            overlays, chart = self.backend.overlays(), self.chart
            existing = self.edition.monitoring.existing
            run = fixes.FixContext(self.namespace, self.config.release, self.prometheus_service,
                                   existing.release if existing else None)
            fixer = runplan.Fixer(chart.upgrade_ref, run, self.config.run_dir / "fixes", helm=self.backend.helm,
                                  version=chart.version if chart.repo else None)
            self._plans = runplan.Plans(self.edition.name, self.config.profile, overlays[0] if overlays else None,
                                        self.config.fix_defects, self.config.extra_values_for, fixer)
        return self._plans

    def expected(self, scenario: str | None = None, extra: tuple[str, ...] = ()) -> scaledobject.KedaSettings:
        """The ScaledObject the tutorial's values (+ profile, backend, scenario, harness fixes — those
        the scenario applies and those the run was asked for) describe — without the user's
        EXTRA_VALUES: what the claims are checked against."""
        files = self.plans.get(4, scenario, extra).files(user=False)
        chart = self.chart.upgrade_ref if self.chart.stand_in else STANDIN_CHART
        return scaledobject.effective_keda(files, chart=chart)[0]

    def plan(self, step: int, scenario: str | None = None, extra: tuple[str, ...] = ()) -> values.ValuesPlan:
        """The values of one helm install/upgrade (vllm_stack_e2e.runplan): the tutorial step's file,
        the profile's, the backend's and the scenario's overlays, the profile's variant of the scenario,
        `extra` (fixes), then at step 4 the user's EXTRA_VALUES and the fix of FIX_DEFECTS."""
        chosen = self.plans.get(step, scenario, extra)
        if chosen.key.fixes:
            self._say_fix(chosen, scenario, asked=True)
        plan = chosen.values()
        self.applied_plans[f"step{step}" + (f"+{scenario}" if scenario else "")] = plan
        self.echo(plan.describe())
        return plan

    @property
    def applied(self) -> dict[str, str]:
        """Step (+ scenario) -> the overlays its last helm call applied, as printed (run.json)."""
        return {step: plan.describe() for step, plan in self.applied_plans.items()}

    def fixes(self, scenario: str | None, numbers: tuple[int, ...], extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The harness's fix overlay (vllm_stack_e2e.fixes) for those of `numbers` that step 4
        (+ scenario, + its profile variant, + `extra`) renders, as a tuple for `extra`; () when none
        is there. Printed."""
        return self._say_fix(self.plans.get(4, scenario, extra, tuple(numbers)), scenario, asked=False)

    def _say_fix(self, plan: runplan.Plan, scenario: str | None, asked: bool) -> tuple[str, ...]:
        path, seen = plan.fix()
        if path is None:
            if asked and plan.key.fixes:
                self.echo(f"FIX_DEFECTS={','.join(map(str, plan.key.fixes))}: none of them is in the "
                          f"step-{plan.key.step} values" + (f" + {scenario}" if scenario else "") + "; nothing to fix")
            return ()
        self.echo(f"harness fix for upstream defect(s) {', '.join(map(str, sorted(seen)))} (NOT part of the tutorial): "
                  f"{path}")
        return (str(path),)

    def crd_names(self) -> set[str]:
        return {c["metadata"]["name"] for c in self.kube.list(*k.CRD)}

    # ---- ways in --------------------------------------------------------------------------
    def _forward(self, key: str, namespace: str, target: str, remote_port: int) -> kubectl_cli.PortForward:
        """An open port-forward; a new one when kubectl lost its pod (pods come and go)."""
        forward = self._forwards.get(key)
        if forward is None or not forward.alive():
            if forward is not None:
                if time.monotonic() - self._reopened.get(key, 0.0) > 60:  # say it once a minute at most
                    self.echo(f"port-forward {target} -n {namespace} ended (pod gone or its port refused); "
                              "opening a new one")
                    self._reopened[key] = time.monotonic()
                forward.close()
            forward = kubectl_cli.PortForward(tools.kubectl(), self.backend.kubeconfig, namespace, target, remote_port).open()
            self._forwards[key] = forward
        return forward

    @property
    def prometheus_service(self) -> tuple[str, str]:
        """(namespace, Service) of the edition's Prometheus: `monitoring/prometheus-operated`, or the
        chart's subchart `<release>-kube-prometheus-stack-prometheus` in the release namespace."""
        return self.edition.prometheus(self.config.release, self.namespace)

    def prometheus(self) -> Prometheus:
        """Prometheus through the page's port-forward: `kubectl port-forward svc/prometheus-operated
        -n monitoring 9090:9090`, or `svc/<release>-kube-prometheus-stack-prometheus 9090:9090`."""
        namespace, service = self.prometheus_service
        port = self._forward("prometheus", namespace, f"svc/{service}", 9090).port
        url = f"http://127.0.0.1:{port}"
        if self._prom is None:
            self._prom = Prometheus(url)
        elif self._prom.base_url != url:
            self._prom.move_to(url)  # a renewed port-forward: whoever holds the object follows it
        return self._prom

    def router_base(self) -> str:
        """The router's OpenAI base URL through `kubectl port-forward svc/<release>-router-service 30080:80`."""
        port = self._forward("router", self.namespace, f"svc/{self.config.router_service}", 80).port
        return f"http://127.0.0.1:{port}/v1"

    def namespace_object(self) -> dict[str, Any]:
        """The run's namespace; on the lab annotated with the engine preset its engines simulate."""
        meta: dict[str, Any] = {"name": self.namespace,
                                "labels": {RUN_LABEL: self.config.run_id, OWNER_LABEL: "vllm-stack-e2e"}}
        if self.config.engine:
            meta["annotations"] = {presets.ANNOTATION: self.config.engine}
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}

    def close(self) -> None:
        for forward in self._forwards.values():
            forward.close()
        self._forwards.clear()
        if self._prom is not None:
            self._prom.close()
            self._prom = None

    # ---- the tutorial's edition ----------------------------------------------------------
    @property
    def edition(self) -> editions.Edition:
        """The edition this run follows; its `why` says why (docs/tutorial.md)."""
        if self._edition is None:
            self._edition = editions.choose(self.config.edition, self.chart.version, stand_in=self.chart.stand_in)
        return self._edition

    def edition_record(self) -> dict[str, str] | None:
        if self._edition is None and self._chart is None:
            return None  # the run never got as far as its chart
        edition = self.edition
        return {"name": edition.name, "title": edition.title, "why": edition.why}

    # ---- facts --------------------------------------------------------------------------
    def header(self) -> list[str]:
        facts = self.backend.facts()
        facts["helm"] = self.backend.helm.version()
        self.facts_cache = {**facts, "chart": self.chart.describe()}
        lines = [f"vllm-stack-e2e run {self.config.run_id}",
                 f"backend: {facts.pop('backend')}",
                 f"chart: {self.chart.describe()}",
                 f"kubernetes {facts.pop('kubernetes', '?')}, keda {facts.pop('keda', '?')}, "
                 f"helm {facts.pop('helm')}, profile {self.config.profile}, HPA sync every "
                 f"{self.config.hpa_sync_seconds:g}s",
                 f"namespace: {self.namespace}",
                 f"tutorial edition: {self.edition.name} — {self.edition.why}"]
        lines += [f"{key}: {value}" for key, value in facts.items()]
        return lines

    # ---- the stack's objects, typed (kube.Handle) -----------------------------------------
    @property
    def engine(self) -> k.Handle[k.Deployment]:
        """The engine Deployment."""
        return k.Handle(self.kube, k.DEPLOYMENT, self.config.engine_deployment, self.namespace, k.Deployment)

    @property
    def scaledobject(self) -> k.Handle[k.ScaledObject]:
        """The tutorial's ScaledObject."""
        return k.Handle(self.kube, k.SCALEDOBJECT, self.config.scaledobject, self.namespace, k.ScaledObject)

    @property
    def hpa(self) -> k.Handle[k.Hpa]:
        """The HPA KEDA makes for the ScaledObject."""
        return k.Handle(self.kube, k.HPA, self.config.hpa, self.namespace, k.Hpa)
