"""Values files: loading and checking them, choosing which ones a run applies and in what order,
and reading the KEDA settings they produce.

The files live in `values/`: the tutorial's own values (`tutorial-step2.yaml`,
`tutorial-step4.yaml`, verbatim) and overlays (`profile-*.yaml`, `backend-*.yaml`,
`scenario-*.yaml`, `cpu-engine.yaml`).

Helm does all merging. A run's first file is its base and goes to helm as `-f`. Every later file
is an overlay: helm's `-f` would replace the whole `servingEngineSpec.modelSpec` list, so an
overlay's `modelSpec` entries are patches of the base's entries with the same index, handed to
helm as `--set-json` paths (`servingEngineSpec.modelSpec[0].keda.pollingInterval=5`), which helm
applies into the list it loaded from the base. Maps are walked down to their leaves, as `-f`
would merge them; any other list replaces the base's list whole, as `-f` would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .defects import is_aggregated, selects_model_label
from .helm import STANDIN_CHART, Helm, set_path
from .redaction import REDACTED, is_secret_key

#: The project's values/ folder (override with VLLM_STACK_E2E_VALUES_DIR).
VALUES_DIR = Path(os.environ.get("VLLM_STACK_E2E_VALUES_DIR") or Path(__file__).resolve().parents[2] / "values")

STEP_FILES = {2: "tutorial-step2.yaml", 4: "tutorial-step4.yaml"}
# Profiles and backends that need no overlay: the tutorial's numbers, and a cluster used as it is.
NO_OVERLAY_PROFILES = {"tutorial"}
NO_OVERLAY_BACKENDS = {"current"}

# KEDA's defaults for ScaledObject fields the chart leaves out (docs/keda.md).
KEDA_DEFAULT_POLLING_INTERVAL = 30
KEDA_DEFAULT_COOLDOWN_PERIOD = 300
KEDA_DEFAULT_MIN_REPLICAS = 0
KEDA_DEFAULT_MAX_REPLICAS = 100
# The chart's default trigger when a modelSpec's keda block has none (docs/chart-contract.md).
CHART_DEFAULT_SERVER = "http://prometheus-operated.monitoring.svc:9090"
CHART_DEFAULT_THRESHOLD = "5"

SetPairs = Sequence[tuple[str, Any]]


# --------------------------------------------------------------------------------------------
# loading


def load_values(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A values file as a dict (an empty or comment-only file is {}).

    Raises ConfigError with one line naming the file, the line and column, and the fix."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"values file {_show(path)} not found — check the path, or list {_show(VALUES_DIR)}") from None
    except OSError as exc:
        raise ConfigError(f"values file {_show(path)} cannot be read ({exc.strerror}) — fix its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{_show(path)}:{mark.line + 1}:{mark.column + 1}" if mark else _show(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{where}: not valid YAML ({_one_line(problem)}) — fix the indentation or quote the value at that "
            "line (values with ':' '#' or '{' need quotes)"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{_show(path)}: the top level is a {type(data).__name__}, helm needs a mapping "
            "(key: value) — start the file with a key such as servingEngineSpec:"
        )
    return data


# --------------------------------------------------------------------------------------------
# which files a run applies


def merge_order(
    step: int,
    profile: str | None = None,
    backend: str | None = None,
    scenario: str | None = None,
    extra: Sequence[str | os.PathLike[str]] = (),
    *,
    values_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """The values files of a run, in the order helm applies them: the tutorial step's file, then
    the profile's, the backend's and the scenario's overlays, then `extra` overlays. Later wins.

    profile "tutorial" and backend "current" add nothing; a name X means `profile-X.yaml`,
    `backend-X.yaml` (or `X.yaml`, e.g. backend "cpu-engine") and `scenario-X.yaml`."""
    folder = Path(values_dir) if values_dir else VALUES_DIR
    if step not in STEP_FILES:
        raise ConfigError(f"tutorial step {step} has no values file — use one of {sorted(STEP_FILES)}")
    if scenario and step < 4:
        raise ConfigError(f"scenario {scenario!r} changes the keda block, which step {step} does not have — use step 4")
    files = [folder / STEP_FILES[step]]
    if profile and profile not in NO_OVERLAY_PROFILES:
        files.append(_named(folder, "profile", profile))
    if backend and backend not in NO_OVERLAY_BACKENDS:
        files.append(_named(folder, "backend", backend))
    if scenario:
        files.append(_named(folder, "scenario", scenario))
    for item in extra:
        path = Path(item)
        candidate = path if path.exists() or path.is_absolute() else folder / path
        if not candidate.exists():
            raise ConfigError(f"overlay {item} not found in {_show(folder)} — give a path or a file name there")
        files.append(candidate)
    return files


def available(kind: str, *, values_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names usable for one kind of overlay ("profile", "backend", "scenario")."""
    folder = Path(values_dir) if values_dir else VALUES_DIR
    names = sorted(p.stem.removeprefix(f"{kind}-") for p in folder.glob(f"{kind}-*.yaml"))
    if kind == "profile":
        names = sorted(NO_OVERLAY_PROFILES) + names
    if kind == "backend":
        names = sorted(NO_OVERLAY_BACKENDS) + names + [
            p.stem for p in sorted(folder.glob("*.yaml"))
            if not re.match(r"(tutorial|profile|backend|scenario|variant|fix)-", p.name)
        ]
    return names


def _named(folder: Path, kind: str, name: str) -> Path:
    for candidate in (folder / f"{kind}-{name}.yaml", folder / f"{name}.yaml"):
        if candidate.exists() and (kind == "backend" or candidate.name.startswith(f"{kind}-")):
            return candidate
    raise ConfigError(
        f"no {kind} {name!r}: {_show(folder / f'{kind}-{name}.yaml')} does not exist — choose one of "
        f"{', '.join(available(kind, values_dir=folder))}"
    )


# --------------------------------------------------------------------------------------------
# what helm gets


@dataclass(frozen=True)
class ValuesPlan:
    """What a run hands helm: the base file (`-f`) and, in order, the `--set-json` pairs its
    overlays (and any extra sets) turn into."""

    base: Path
    overlays: tuple[Path, ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()

    @property
    def files(self) -> list[Path]:
        """The files helm gets with `-f` (only the base; overlays travel as sets)."""
        return [self.base]

    @property
    def sources(self) -> list[Path]:
        """Every values file of the run, base first."""
        return [self.base, *self.overlays]

    def describe(self) -> str:
        """The line a run prints about its values (see describe_overlay)."""
        return describe_overlay(self.sources, self.sets)


def plan_values(files: Sequence[str | os.PathLike[str]], sets: SetPairs | Mapping[str, Any] = ()) -> ValuesPlan:
    """The helm arguments for these files (first = base, rest = overlays, see the module doc),
    followed by explicit `sets` (e.g. an image or a token), which win over every file."""
    if not files:
        raise ConfigError("no values files given — pass at least the tutorial step's file (values.merge_order)")
    base = Path(files[0])
    base_values = load_values(base)
    pairs: list[tuple[str, Any]] = []
    for overlay in files[1:]:
        pairs += overlay_sets(overlay, base_values=base_values, base_path=base)
    extra = list(sets.items()) if isinstance(sets, Mapping) else list(sets)
    return ValuesPlan(base=base, overlays=tuple(Path(f) for f in files[1:]), sets=tuple(pairs + extra))


def plan_for(
    step: int,
    profile: str | None = None,
    backend: str | None = None,
    scenario: str | None = None,
    extra: Sequence[str | os.PathLike[str]] = (),
    sets: SetPairs | Mapping[str, Any] = (),
) -> ValuesPlan:
    """plan_values(merge_order(...)): the plan of one run."""
    return plan_values(merge_order(step, profile, backend, scenario, extra), sets)


def overlay_sets(
    path: str | os.PathLike[str],
    *,
    base_values: Mapping[str, Any] | None = None,
    base_path: str | os.PathLike[str] | None = None,
) -> list[tuple[str, Any]]:
    """An overlay file as ordered (`--set` path, value) pairs. With the base's values, each
    modelSpec patch is checked to land on an existing entry (and on the same name, if it names one)."""
    path = Path(path)
    data = load_values(path)
    base_models = _model_specs(base_values) if base_values is not None else None
    out: list[tuple[str, Any]] = []

    def walk(node: Mapping[str, Any], parts: tuple[str | int, ...]) -> None:
        for key, value in node.items():
            here = (*parts, str(key))
            if here == ("servingEngineSpec", "modelSpec"):
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise ConfigError(
                        f"{_show(path)}: servingEngineSpec.modelSpec must be a list of patches (- keda: …), "
                        "one per model spec of the base file, in the same order"
                    )
                for index, patch in enumerate(value):
                    _check_patch(path, index, patch, base_models, base_path)
                    walk(patch, (*here, index))
            elif isinstance(value, dict) and value:
                walk(value, here)
            else:
                out.append((set_path(*here), value))

    walk(data, ())
    return out


def _check_patch(
    path: Path, index: int, patch: Mapping[str, Any], base_models: list[dict[str, Any]] | None, base_path: Any
) -> None:
    if base_models is None:
        return
    base = _show(Path(base_path)) if base_path else "the base values"
    if index >= len(base_models):
        raise ConfigError(
            f"{_show(path)} patches servingEngineSpec.modelSpec[{index}] but {base} has {len(base_models)} "
            "model spec(s) — remove the extra entry or use a base file with that many models"
        )
    name = patch.get("name")
    if name is not None and name != base_models[index].get("name"):
        raise ConfigError(
            f"{_show(path)} patches modelSpec[{index}] as {name!r} but in {base} it is "
            f"{base_models[index].get('name')!r} — reorder the patches to match the base file"
        )


def describe_overlay(files: Sequence[str | os.PathLike[str]], sets: SetPairs | Mapping[str, Any] = ()) -> str:
    """The one line a run prints about its values: which files, and the exact helm arguments
    (secret values masked). E.g. `applied overlay: tutorial-step4.yaml + profile-fast.yaml
    (helm -f values/tutorial-step4.yaml --set-json servingEngineSpec.modelSpec[0].keda.pollingInterval=5 …)`."""
    paths = [Path(f) for f in files]
    pairs = list(sets.items()) if isinstance(sets, Mapping) else list(sets)
    names = " + ".join(p.name for p in paths) if paths else "no values files"
    args: list[str] = []
    if paths:
        args += ["-f", _show(paths[0])]
    for key, value in pairs:
        shown = REDACTED if is_secret_key(key) and value not in (None, "") else _json(value)
        args += ["--set-json", f"{key}={shown}"]
    return f"applied overlay: {names} (helm {shlex.join(args)})" if args else f"applied overlay: {names}"


# --------------------------------------------------------------------------------------------
# the KEDA settings a set of values produces


@dataclass(frozen=True)
class KedaTrigger:
    """One ScaledObject trigger."""

    type: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def server_address(self) -> str | None:
        return _str_or_none(self.metadata.get("serverAddress"))

    @property
    def query(self) -> str | None:
        return _str_or_none(self.metadata.get("query"))

    @property
    def threshold(self) -> str | None:
        """The threshold as KEDA reads it (a string in ScaledObject metadata)."""
        return _str_or_none(self.metadata.get("threshold"))

    @property
    def activation_threshold(self) -> str:
        return _str_or_none(self.metadata.get("activationThreshold")) or "0"


@dataclass(frozen=True)
class KedaSettings:
    """A ScaledObject's scaling settings: as rendered (None = not written, so KEDA's default
    applies) and with KEDA's defaults filled in (the effective_* properties)."""

    name: str
    target: str
    triggers: tuple[KedaTrigger, ...]
    namespace: str | None = None
    min_replica_count: int | None = None
    max_replica_count: int | None = None
    polling_interval: int | None = None
    cooldown_period: int | None = None
    idle_replica_count: int | None = None
    initial_cooldown_period: int | None = None
    fallback: Mapping[str, Any] | None = None
    advanced: Mapping[str, Any] | None = None

    @property
    def effective_min(self) -> int:
        return KEDA_DEFAULT_MIN_REPLICAS if self.min_replica_count is None else self.min_replica_count

    @property
    def effective_max(self) -> int:
        return KEDA_DEFAULT_MAX_REPLICAS if self.max_replica_count is None else self.max_replica_count

    @property
    def effective_polling_interval(self) -> int:
        return KEDA_DEFAULT_POLLING_INTERVAL if self.polling_interval is None else self.polling_interval

    @property
    def effective_cooldown_period(self) -> int:
        return KEDA_DEFAULT_COOLDOWN_PERIOD if self.cooldown_period is None else self.cooldown_period

    @property
    def hpa_name(self) -> str:
        """The HPA KEDA creates: advanced.horizontalPodAutoscalerConfig.name, else keda-hpa-<name>."""
        hpa = (self.advanced or {}).get("horizontalPodAutoscalerConfig") or {}
        return str(hpa.get("name") or f"keda-hpa-{self.name}")

    @property
    def hpa_min_replicas(self) -> int:
        """The HPA's minReplicas: KEDA moves 0↔1 itself, so the HPA never goes below 1."""
        return max(self.effective_min, 1)

    @property
    def behavior(self) -> Mapping[str, Any] | None:
        """advanced.horizontalPodAutoscalerConfig.behavior, which KEDA copies into the HPA."""
        hpa = (self.advanced or {}).get("horizontalPodAutoscalerConfig") or {}
        return hpa.get("behavior")

    @property
    def threshold(self) -> str | None:
        """The first trigger's threshold (the tutorial has one trigger, or the queue trigger first)."""
        return self.triggers[0].threshold if self.triggers else None

    def hpa_metric_name(self, index: int) -> str:
        """The external metric KEDA names for trigger `index` in the HPA, e.g. 's0-prometheus'."""
        return f"s{index}-{self.triggers[index].type}"


def scaledobjects_from_manifest(docs: Sequence[Mapping[str, Any]]) -> list[KedaSettings]:
    """The ScaledObjects among rendered or live objects, as KedaSettings."""
    return [_settings_from_scaledobject(doc) for doc in docs if doc.get("kind") == "ScaledObject"]


def _settings_from_scaledobject(doc: Mapping[str, Any]) -> KedaSettings:
    spec = doc.get("spec") or {}
    meta = doc.get("metadata") or {}
    triggers = tuple(
        KedaTrigger(type=str(t.get("type", "")), metadata=dict(t.get("metadata") or {}), name=t.get("name"))
        for t in (spec.get("triggers") or [])
        if isinstance(t, Mapping)
    )
    return KedaSettings(
        name=str(meta.get("name", "")),
        namespace=meta.get("namespace"),
        target=str((spec.get("scaleTargetRef") or {}).get("name", "")),
        triggers=triggers,
        min_replica_count=_int_or_none(spec.get("minReplicaCount")),
        max_replica_count=_int_or_none(spec.get("maxReplicaCount")),
        polling_interval=_int_or_none(spec.get("pollingInterval")),
        cooldown_period=_int_or_none(spec.get("cooldownPeriod")),
        idle_replica_count=_int_or_none(spec.get("idleReplicaCount")),
        initial_cooldown_period=_int_or_none(spec.get("initialCooldownPeriod")),
        fallback=spec.get("fallback"),
        advanced=spec.get("advanced"),
    )


def effective_keda(
    files: Sequence[str | os.PathLike[str]],
    sets: SetPairs | Mapping[str, Any] = (),
    *,
    chart: str | os.PathLike[str] = STANDIN_CHART,
    chart_version: str | None = None,
    release: str = "vllm",
    namespace: str = "default",
    helm: Helm | None = None,
) -> list[KedaSettings]:
    """The ScaledObjects these values produce, by asking helm: `helm template` of the chart with
    the run's files (first = base, rest = overlays) and sets, then the rendered ScaledObjects.
    An empty list means the values render no ScaledObject (keda disabled)."""
    plan = plan_values(files, sets)
    docs = (helm or Helm()).template(
        chart, release=release, files=plan.files, sets=plan.sets, namespace=namespace, version=chart_version
    )
    return scaledobjects_from_manifest(docs)


def keda_from_values(values: Mapping[str, Any], *, release: str = "vllm", namespace: str | None = None) -> list[KedaSettings]:
    """The ScaledObjects the chart would render from a complete values tree (e.g. `helm get values
    --all` of a live release), without running helm — the chart's rules from docs/chart-contract.md:
    one per modelSpec when servingEngineSpec.enableEngine, keda.enabled and no raySpec; only the
    fields present are set; without triggers, the chart's default queue trigger for that model."""
    engine = values.get("servingEngineSpec") or {}
    if not engine.get("enableEngine", True):
        return []
    out: list[KedaSettings] = []
    for spec in _model_specs(values):
        keda = spec.get("keda")
        if not isinstance(keda, Mapping) or not keda.get("enabled") or "raySpec" in spec:
            continue
        model = str(spec.get("name", ""))
        if "triggers" in keda:
            raw = keda["triggers"] if isinstance(keda["triggers"], list) else [keda["triggers"]]
            triggers = tuple(
                KedaTrigger(type=str(t.get("type", "")), metadata=dict(t.get("metadata") or {}), name=t.get("name"))
                for t in raw
                if isinstance(t, Mapping)
            )
        else:
            triggers = (default_trigger(model),)
        out.append(KedaSettings(
            name=f"{release}-{model}-scaledobject",
            namespace=namespace,
            target=f"{release}-{model}-deployment-vllm",
            triggers=triggers,
            min_replica_count=_int_or_none(keda.get("minReplicaCount")),
            max_replica_count=_int_or_none(keda.get("maxReplicaCount")),
            polling_interval=_int_or_none(keda.get("pollingInterval")),
            cooldown_period=_int_or_none(keda.get("cooldownPeriod")),
            idle_replica_count=_int_or_none(keda.get("idleReplicaCount")),
            initial_cooldown_period=_int_or_none(keda.get("initialCooldownPeriod")),
            fallback=keda.get("fallback"),
            advanced=keda.get("advanced"),
        ))
    return out


def default_trigger(model: str) -> KedaTrigger:
    """The chart's trigger for a keda block without triggers (docs/chart-contract.md)."""
    return KedaTrigger(type="prometheus", metadata={
        "serverAddress": CHART_DEFAULT_SERVER,
        "metricName": "vllm:num_requests_waiting",
        "query": f'vllm:num_requests_waiting{{model="{model}"}}',
        "threshold": CHART_DEFAULT_THRESHOLD,
    })


# --------------------------------------------------------------------------------------------
# checks


@dataclass(frozen=True)
class Finding:
    """Something about a configuration worth telling the user, with what to do about it."""

    severity: str  # "error": cannot work as the tutorial says; "warning": likely not; "info"
    message: str
    fix: str
    defect: int | None = None  # docs/chart-contract.md defect number, when it is one of those

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} — {self.fix}"


def check_keda(
    settings: KedaSettings,
    *,
    model_url: str | None = None,
    bundled_prometheus_release: str | None = None,
) -> list[Finding]:
    """What will keep this ScaledObject from scaling as the tutorial says (docs/chart-contract.md
    defects 2-4 and KEDA's required fields). `model_url` improves the fix for defect 2;
    `bundled_prometheus_release` (the chart's kube-prometheus-stack subchart is enabled in that
    release) enables the check for defect 4."""
    findings: list[Finding] = []
    where = f"ScaledObject {settings.name}"
    if not settings.triggers:
        findings.append(Finding("error", f"{where} has no triggers", "add at least one trigger (KEDA requires one)"))
    if settings.effective_min > settings.effective_max:
        findings.append(Finding(
            "error", f"{where}: minReplicaCount {settings.effective_min} > maxReplicaCount {settings.effective_max}",
            "make minReplicaCount ≤ maxReplicaCount",
        ))
    for index, trigger in enumerate(settings.triggers):
        label = f"{where} trigger {index} ({trigger.type})"
        if trigger.type != "prometheus":
            continue
        missing = [key for key in ("serverAddress", "query", "threshold") if not trigger.metadata.get(key)]
        if missing:
            findings.append(Finding(
                "error", f"{label} lacks {', '.join(missing)}",
                "set serverAddress, query and threshold (all required by KEDA's Prometheus scaler)",
            ))
        query = trigger.query or ""
        if selects_model_label(query):
            served = model_url or "<the modelURL>"
            findings.append(Finding(
                "warning",
                f"{label} query {query!r} selects engine series by model=…, but vLLM labels them model_name; "
                "it likely matches nothing, which KEDA reads as 0, so it never scales",
                f'select model_name="{served}" instead, or aggregate without a selector: sum(vllm:num_requests_waiting)',
                defect=2,
            ))
        if query and settings.effective_max > 1 and not is_aggregated(query):
            findings.append(Finding(
                "warning",
                f"{label} query {query!r} is not aggregated: with 2+ engine pods it returns one series per pod and "
                f"KEDA's Prometheus scaler fails on more than one element, so scaling stops past 1 replica "
                f"(maxReplicaCount {settings.effective_max})",
                f"aggregate it: sum({query})",
                defect=3,
            ))
        server = trigger.server_address or ""
        if bundled_prometheus_release and "prometheus-operated.monitoring" in server:
            findings.append(Finding(
                "warning",
                f"{label} queries {server}, the standalone observability install's Prometheus, but this release "
                "enables the chart's kube-prometheus-stack subchart",
                f"use http://{bundled_prometheus_release}-kube-prometheus-stack-prometheus."
                f"{settings.namespace or '<release namespace>'}.svc:9090 (KEDA's operator runs in namespace keda, "
                "where the short name does not resolve), or install observability/install.sh and disable the subchart",
                defect=4,
            ))
    return findings


def check_values(
    values: Mapping[str, Any], *, source: str = "values", release: str = "vllm"
) -> list[Finding]:
    """Shape checks of a complete values tree for the keys the tutorial uses, then check_keda of
    every ScaledObject it would render."""
    findings: list[Finding] = []
    engine = values.get("servingEngineSpec")
    if engine is not None and not isinstance(engine, Mapping):
        return [Finding("error", f"{source}: servingEngineSpec is a {type(engine).__name__}", "make it a mapping")]
    specs = (engine or {}).get("modelSpec")
    if specs is not None and not isinstance(specs, list):
        return [Finding("error", f"{source}: servingEngineSpec.modelSpec is not a list", "write it as a list: - name: …")]
    for index, spec in enumerate(specs or []):
        where = f"{source}: servingEngineSpec.modelSpec[{index}]"
        if not isinstance(spec, Mapping):
            findings.append(Finding("error", f"{where} is not a mapping", "write each model spec as key: value pairs"))
            continue
        needed = ["name", "repository", "tag", "modelURL"]
        if not spec.get("resources"):
            needed += ["requestCPU", "requestMemory"]
        missing = [key for key in needed if spec.get(key) in (None, "")]
        if missing:
            findings.append(Finding("error", f"{where} lacks {', '.join(missing)}", "the chart requires them; add them"))
        keda = spec.get("keda")
        if keda is None:
            continue
        if not isinstance(keda, Mapping):
            findings.append(Finding("error", f"{where}.keda is not a mapping", "write keda as a mapping: enabled: true …"))
            continue
        if "triggers" in keda and not isinstance(keda["triggers"], list):
            findings.append(Finding(
                "error",
                f"{where}.keda.triggers is a {type(keda['triggers']).__name__}; the chart's ScaledObject template "
                "needs a list (its values.schema.json wrongly says object)",
                "write triggers as a list: - type: prometheus …",
                defect=1,
            ))
    bundled = (values.get("kube-prometheus-stack") or {}).get("enabled") if isinstance(
        values.get("kube-prometheus-stack"), Mapping) else False
    models = {str(s.get("name")): s for s in (specs or []) if isinstance(s, Mapping)}
    for settings in keda_from_values(values, release=release):
        model = settings.name.removeprefix(f"{release}-").removesuffix("-scaledobject")
        findings += check_keda(
            settings,
            model_url=(models.get(model) or {}).get("modelURL"),
            bundled_prometheus_release=release if bundled else None,
        )
    return findings


# --------------------------------------------------------------------------------------------
# helpers


def _model_specs(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    engine = (values or {}).get("servingEngineSpec") or {}
    specs = engine.get("modelSpec") if isinstance(engine, Mapping) else None
    return [s for s in specs if isinstance(s, dict)] if isinstance(specs, list) else []


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _json(value: Any) -> str:
    return json.dumps(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show(path: Path) -> str:
    """A path as the user knows it: relative to the current directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
