"""What one run is: backend, profile, names, where evidence goes. Validated before anything
is installed; every problem is a one-line `ConfigError` naming the input and the fix."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

BACKENDS = ("lab", "current")
PROFILES = ("tutorial", "fast")
REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_LABEL = "vllm-stack-e2e.io/run"
OWNER_LABEL = "vllm-stack-e2e.io/owner"
#: EXTRA_VALUES's scope for the step-4 values alone (no scenario overlay): `step4:path`.
STEP4_SCOPE = "step4"


#: kube-controller-manager's default --horizontal-pod-autoscaler-sync-period: a cluster's unless
#: HPA_SYNC_SECONDS says otherwise (the lab says its own: lab/cluster.py HPA_SYNC_SECONDS).
DEFAULT_HPA_SYNC_SECONDS = 15.0


@dataclass(frozen=True)
class Profile:
    """Timing of a run. `tutorial` is the tutorial's numbers; `fast` the same scenario, shorter.
    `hpa_sync_seconds` is the cluster's, not the profile's: RunConfig.profile_settings fills it in."""

    name: str
    hpa_sync_seconds: float = DEFAULT_HPA_SYNC_SECONDS
    engine_ready_seconds: float = 30.0  # budget for one engine pod to become Ready
    install_seconds: float = 300.0  # the tutorial's `kubectl wait … --timeout=300s`


PROFILE_SETTINGS = {
    "tutorial": Profile("tutorial", engine_ready_seconds=600.0, install_seconds=300.0),
    "fast": Profile("fast", engine_ready_seconds=60.0, install_seconds=180.0),
}


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass
class RunConfig:
    """One run of the suite."""

    cluster: str = "lab"
    profile: str = "fast"
    keep: bool = False
    run_id: str = field(default_factory=new_run_id)
    release: str = "vllm"
    model: str = "llama3"
    namespace: str = ""
    reports_dir: Path = REPO_ROOT / "reports"
    kubeconfig: Path | None = None
    chart: str | None = None  # override: a chart path or repo/name
    chart_version: str | None = None
    # EXTRA_VALUES: (scope, overlay) — an overlay for every step-4 upgrade (scope None), or only for
    # one scenario's ("step4": the step-4 values themselves, as the page's step 6 and 7c's contrast use them)
    extra_values: tuple[tuple[str | None, str], ...] = ()
    fix_defects: tuple[int, ...] = ()  # FIX_DEFECTS: upstream defects whose harness fix step 2 and every step-4 upgrade apply
    edition: str | None = None  # EDITION: the tutorial's edition asked for (None: chosen from the chart)
    # How often the cluster's HPA controller syncs: the backend says (the lab its own setting; a
    # cluster Kubernetes' default or HPA_SYNC_SECONDS).
    hpa_sync_seconds: float = DEFAULT_HPA_SYNC_SECONDS
    # ENGINE: the lab's simulated engine, sized like a GPU serving a model (sim.presets); None off the lab.
    engine: str | None = "lab"

    def __post_init__(self) -> None:
        if not self.namespace:
            self.namespace = f"vse-{self.run_id.lower()}"[:63].rstrip("-")

    def extra_values_for(self, scenario: str | None) -> tuple[str, ...]:
        """The EXTRA_VALUES overlays of one step-4 upgrade (`scenario` None: the step-4 values)."""
        scope = scenario or STEP4_SCOPE
        return tuple(path for only, path in self.extra_values if only is None or only == scope)

    @property
    def profile_settings(self) -> Profile:
        return dataclasses.replace(PROFILE_SETTINGS[self.profile], hpa_sync_seconds=self.hpa_sync_seconds)

    @property
    def run_dir(self) -> Path:
        return self.reports_dir / self.run_id

    @property
    def artifacts_dir(self) -> Path:
        return self.run_dir / "artifacts"

    @property
    def engine_deployment(self) -> str:
        return f"{self.release}-{self.model}-deployment-vllm"

    @property
    def scaledobject(self) -> str:
        return f"{self.release}-{self.model}-scaledobject"

    @property
    def router_service(self) -> str:
        return f"{self.release}-router-service"

    @property
    def hpa(self) -> str:
        return f"keda-hpa-{self.scaledobject}"


def parse_fix_defects(text: str) -> tuple[int, ...]:
    """`6,7` -> (6, 7); each must be a registered defect whose fix the harness can write."""
    from . import defects

    numbers: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        fixable = sorted(n for n, d in defects.DEFECTS.items() if d.fixable)
        if not part.isdigit() or int(part) not in defects.DEFECTS or not defects.get(int(part)).fixable:
            raise ConfigError(f"FIX_DEFECTS names {part!r}, not an upstream defect the harness can fix: choose from "
                              f"{', '.join(map(str, fixable))} ({defects.DOC})")
        numbers.append(int(part))
    return tuple(sorted(set(numbers)))


def parse_extra_values(text: str) -> tuple[tuple[str | None, str], ...]:
    """EXTRA_VALUES: comma-separated overlays, each `path` (every step-4 upgrade) or `scope:path`
    (only the upgrades of scenario `scope` — a name of values/scenario-<name>.yaml — or `step4`,
    the step-4 values alone), so one run can carry an overlay per scenario."""
    from .values import available

    scopes = {STEP4_SCOPE, *available("scenario")}
    out: list[tuple[str | None, str]] = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        scope, _, rest = item.partition(":")
        only: str | None = None
        path = item
        if rest and not Path(item).is_file():
            if scope not in scopes:
                raise ConfigError(f"EXTRA_VALUES names {item}: {scope!r} is not a scenario — use scope:path with one "
                                  f"of {', '.join(sorted(scopes))}, or a plain path for every step-4 upgrade")
            only, path = scope, rest
        if not Path(path).is_file():
            raise ConfigError(f"EXTRA_VALUES names {path}, which is not a file: give paths of values overlays")
        out.append((only, str(Path(path).resolve())))
    return tuple(out)


def resolve_engine(cluster: str, text: str) -> str | None:
    """The engine preset of a run: on the lab the one named (default `lab`); off the lab none — a GPU
    cluster runs the engine the chart deploys, so naming one there is refused."""
    name = text.strip()
    if cluster != "lab":
        if name:
            raise ConfigError(f"ENGINE={name!r} sizes the lab's simulated engine; CLUSTER={cluster} runs the engine "
                              "the chart deploys on your GPUs — unset ENGINE")
        return None
    from .sim import presets

    try:
        return presets.get(name or presets.DEFAULT).name
    except KeyError as exc:
        raise ConfigError(f"unknown ENGINE={name!r}: choose one of {', '.join(presets.PRESETS)} (docs/engines.md)") from exc


def resolve(cluster: str | None = None, profile: str | None = None, keep: bool = False,
            kubeconfig: str | None = None, chart: str | None = None, chart_version: str | None = None,
            reports_dir: str | None = None, edition: str | None = None, fix_defects: str | None = None,
            engine: str | None = None) -> RunConfig:
    """Options first, then environment (CLUSTER, PROFILE, KUBECONFIG, VLLM_CHART, CHART_VERSION,
    EXTRA_VALUES — overlays appended to every step-4 upgrade, to try a fix or break a claim —,
    EDITION — the tutorial's edition, docs/tutorial.md —, FIX_DEFECTS — upstream defects whose
    harness fix the run applies, e.g. 6,7, docs/upstream-defects.md —, HPA_SYNC_SECONDS — the
    cluster's HPA sync period, 15 unless its kube-controller-manager says otherwise; the lab says
    its own —, ENGINE — the lab's simulated engine preset, docs/engines.md)."""
    cluster = (cluster or os.environ.get("CLUSTER") or "lab").strip()
    if cluster not in BACKENDS:
        raise ConfigError(f"unknown CLUSTER={cluster!r}: choose one of {', '.join(BACKENDS)} "
                          "(lab = the local lab, current = your kube context)")
    profile = (profile or os.environ.get("PROFILE") or ("fast" if cluster == "lab" else "tutorial")).strip()
    if profile not in PROFILES:
        raise ConfigError(f"unknown PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
    kube = kubeconfig or os.environ.get("KUBECONFIG")
    kube_path = None
    if cluster == "current":
        kube_path = Path(kube).expanduser() if kube else Path("~/.kube/config").expanduser()
        if ":" in str(kube or ""):
            raise ConfigError(f"KUBECONFIG={kube!r} lists several files: point it at one kubeconfig file")
        if not kube_path.is_file():
            raise ConfigError(f"kubeconfig {kube_path} does not exist: set KUBECONFIG to your cluster's kubeconfig "
                              "or use CLUSTER=lab")
    version = chart_version or os.environ.get("CHART_VERSION") or None
    if version is not None and not re.fullmatch(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", version):
        raise ConfigError(f"CHART_VERSION={version!r} is not an exact version like 0.1.12: pin one version")
    extra = parse_extra_values(os.environ.get("EXTRA_VALUES", ""))
    asked = (edition or os.environ.get("EDITION") or "").strip() or None
    if asked is not None:
        from .editions import get as edition

        edition(asked)  # a one-line ConfigError with the choices for an unknown one
    fixes = parse_fix_defects(fix_defects if fix_defects is not None else os.environ.get("FIX_DEFECTS", ""))
    sync_text = os.environ.get("HPA_SYNC_SECONDS", "").strip()
    try:
        sync = float(sync_text) if sync_text else DEFAULT_HPA_SYNC_SECONDS
    except ValueError:
        sync = -1.0
    if sync <= 0:
        raise ConfigError(f"HPA_SYNC_SECONDS={sync_text!r} is not a positive number of seconds: give your cluster's "
                          "kube-controller-manager --horizontal-pod-autoscaler-sync-period (default 15)")
    engine = resolve_engine(cluster, engine if engine is not None else os.environ.get("ENGINE", ""))
    config = RunConfig(cluster=cluster, profile=profile, keep=keep, kubeconfig=kube_path, edition=asked, fix_defects=fixes,
                       hpa_sync_seconds=sync, engine=engine,
                       chart=chart or os.environ.get("VLLM_CHART"), chart_version=version,
                       extra_values=extra)
    if reports_dir or os.environ.get("REPORTS_DIR"):
        config.reports_dir = Path(reports_dir or os.environ["REPORTS_DIR"]).resolve()
    return config
