"""The scenarios' kit (steps/scenario.py) without a cluster: the stack's typed handles, the
ScaledObject's trigger fields, the shared budgets, and Scenario's set-up, evidence and restores."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from _stacks import with_handles

from vllm_stack_e2e import kube as k
from vllm_stack_e2e.steps import scenario

SO = {"kind": "ScaledObject", "metadata": {"name": "so"},
      "spec": {"minReplicaCount": 0, "maxReplicaCount": 3, "triggers": [
          {"type": "prometheus", "metadata": {"query": "sum(vllm:num_requests_waiting)", "threshold": "5"}},
          {"type": "prometheus", "metadata": {"query": "sum(rate(x[1m]))", "threshold": "1"}}]}}


class FakeKube:
    """Records every call with its arguments; `get` answers from `objects` by (kind, name, namespace)."""

    def __init__(self, objects: dict[tuple[str, str, str | None], k.Obj] | None = None) -> None:
        self.objects, self.calls = objects or {}, []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> k.Obj | None:
        self.calls.append(("get", kind, name, namespace))
        return self.objects.get((kind, name, namespace))

    def __getattr__(self, method: str) -> Any:
        return lambda *args, **kw: self.calls.append((method, *args, *kw.values())) or method


def _stack(kube: FakeKube, lines: list[str] | None = None) -> Any:
    return with_handles(SimpleNamespace(kube=kube, namespace="run", echo=(lines if lines is not None else []).append,
                                        config=SimpleNamespace(engine_deployment="vllm-engine", scaledobject="so",
                                                               hpa="keda-hpa-so")))


def test_the_handles_fill_in_kind_name_and_namespace_and_read_typed_views() -> None:
    kube = FakeKube({("ScaledObject", "so", "run"): SO,
                     ("Deployment", "vllm-engine", "run"): {"spec": {"replicas": 2}, "status": {"readyReplicas": 1}}})
    stack = _stack(kube)
    so = stack.scaledobject.get()
    assert isinstance(so, k.ScaledObject) and so.threshold == 5.0 and so.max_replicas == 3
    engine = stack.engine.get()
    assert isinstance(engine, k.Deployment) and (engine.spec_replicas, engine.ready_replicas) == (2, 1)
    hpa = stack.hpa.get()
    assert isinstance(hpa, k.Hpa) and not hpa.exists, "absent: a view of None"
    check = k.spec_replicas("==", 0)
    assert stack.engine.reach(check, 30, "at zero") == "reach"
    stack.engine.hold(check, 5, "stays", since={"x": 1})
    stack.hpa.wait_for(k.GONE, 9, "gone")
    stack.engine.scale(1)
    stack.scaledobject.annotate({"a": None})
    stack.scaledobject.delete()
    assert kube.calls[3:] == [
        ("reach", "apps/v1", "Deployment", "vllm-engine", "run", check, 30, "at zero", "", None),
        ("hold", "apps/v1", "Deployment", "vllm-engine", "run", check, 5, "stays", {"x": 1}),
        ("wait_for", "autoscaling/v2", "HorizontalPodAutoscaler", "keda-hpa-so", "run", k.GONE, 9, "gone", ""),
        ("scale", "apps/v1", "Deployment", "vllm-engine", "run", 1),
        ("annotate", "keda.sh/v1alpha1", "ScaledObject", "so", "run", {"a": None}),
        ("delete", "keda.sh/v1alpha1", "ScaledObject", "so", "run")]


def test_a_scaledobject_view_reads_its_first_trigger_and_keda_defaults() -> None:
    so = k.ScaledObject(SO)
    assert so.threshold == 5.0 and so.query == "sum(vllm:num_requests_waiting)" and so.min_replica_count == 0
    assert k.ScaledObject({"spec": {}}).min_replica_count == 1, "KEDA's default"
    assert scenario.rate_window(so) == 60.0


def test_the_idle_budget_is_the_rate_window_the_cooldown_three_polls_and_a_minute() -> None:
    assert scenario.idle_budget(60, 30, 5) == 60 + 30 + 15 + 60


class _Timeline:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")

    def save(self, path: Any) -> None:
        self.log.append(f"save {path.name}")


def _scenario_stack(log: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from pathlib import Path

    stack = _stack(FakeKube({("ScaledObject", "so", "run"): SO}), log)
    stack.config.run_dir = Path("/run-dir")
    stack.fixes = lambda scenario, numbers, extra=(): log.append(f"fixes {scenario} {numbers}") or ("fix.yaml",)

    def reset(_stack: Any, scenario: str | None, extra: tuple = (), also: tuple = ()) -> k.ScaledObject:
        log.append(f"reset {scenario} extra={extra} also={also}")
        return k.ScaledObject(SO)

    monkeypatch.setattr(scenario, "reset", reset)
    return stack


def test_a_scenario_sets_up_then_restores_in_reverse_and_saves_its_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    stack = _scenario_stack(log, monkeypatch)
    with scenario.Scenario(stack, "fallback", also=("page.yaml",)) as sc:
        assert sc.threshold == 5.0 and sc.extra == ("fix.yaml",)
        sc.timeline(_Timeline("step7c", log))
        sc.restore(log.append, "load stopped")
        sc.restore(log.append, "annotation removed")
        log.append("body")
    assert log == ["fixes fallback (3, 6, 7, 9, 12, 13)", "reset fallback extra=('fix.yaml',) also=('page.yaml',)", "body",
                   "annotation removed", "load stopped", "stop step7c", "save step7c.json"]


def test_a_scenario_given_its_fixes_renders_none_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    with scenario.Scenario(_scenario_stack(log, monkeypatch), "x", extra=("mine.yaml",)) as sc:
        assert sc.extra == ("mine.yaml",)
    assert log == ["reset x extra=('mine.yaml',) also=()"]


def test_a_failing_scenario_prints_the_stacks_objects_then_restores_and_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError, match="helm refused"):
        with scenario.Scenario(_scenario_stack(log, monkeypatch), fixed=()) as sc:
            sc.restore(log.append, "restored")
            raise RuntimeError("helm refused")
    evidence = next(line for line in log if line.startswith("scenario step 4 stopped on RuntimeError"))
    assert "Deployment vllm-engine: absent" in evidence and "ScaledObject so:" in evidence
    assert "HorizontalPodAutoscaler keda-hpa-so: absent" in evidence
    assert log.index(evidence) < log.index("restored"), "evidence first, then the restores"
