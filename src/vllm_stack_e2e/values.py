"""Values files: loading them, and choosing which ones a run applies and in what order (the
ScaledObjects they produce: scaledobject.py; what is checked in them: checks.py).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import editions
from .errors import ConfigError
from .helm import set_path
from .redaction import REDACTED, is_secret_key

#: The project's values/ folder (override with VLLM_STACK_E2E_VALUES_DIR).
VALUES_DIR = Path(os.environ.get("VLLM_STACK_E2E_VALUES_DIR") or Path(__file__).resolve().parents[2] / "values")

STEP_FILES = {2: "tutorial-step2.yaml", 4: "tutorial-step4.yaml"}
# Profiles and backends that need no overlay: the tutorial's numbers, and a cluster used as it is.
NO_OVERLAY_PROFILES = {"tutorial"}
NO_OVERLAY_BACKENDS = {"current"}

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
    edition: str | None = None,
) -> list[Path]:
    """The values files of a run, in the order helm applies them: the tutorial step's file, then
    the profile's, the backend's and the scenario's overlays, then `extra` overlays. Later wins.

    profile "tutorial" and backend "current" add nothing; a name X means `profile-X.yaml`,
    `backend-X.yaml` (or `X.yaml`, e.g. backend "cpu-engine") and `scenario-X.yaml`. With an
    `edition`, a file that edition pins in its own folder (values/<edition>/) wins over the shared one."""
    folder = Path(values_dir) if values_dir else VALUES_DIR

    def own(path: Path) -> Path:
        return edition_file(path.parent, edition, path.name) or path

    if step not in STEP_FILES:
        raise ConfigError(f"tutorial step {step} has no values file — use one of {sorted(STEP_FILES)}")
    if scenario and step < 4:
        raise ConfigError(f"scenario {scenario!r} changes the keda block, which step {step} does not have — use step 4")
    files = [own(folder / STEP_FILES[step])]
    if profile and profile not in NO_OVERLAY_PROFILES:
        files.append(_named(folder, "profile", profile))
    if backend and backend not in NO_OVERLAY_BACKENDS:
        files.append(_named(folder, "backend", backend))
    if scenario:
        files.append(edition_file(folder, edition, f"scenario-{scenario}.yaml") or _named(folder, "scenario", scenario))
    for item in extra:
        path = Path(item)
        candidate = path if path.exists() or path.is_absolute() else folder / path
        if not candidate.exists():
            raise ConfigError(f"overlay {item} not found in {_show(folder)} — give a path or a file name there")
        files.append(candidate)
    return files


def with_variant(profile: str | None, scenario: str | None, extra: Sequence[str] = (),
                 edition: str | None = None) -> tuple[str, ...]:
    """`extra` preceded by the profile's variant of the scenario (values/variant-<profile>-<scenario>.yaml,
    the edition's own copy in values/<edition>/ when it has one) when there is one: the overlay
    that scales a scenario's own numbers to the profile."""
    name = f"variant-{profile}-{scenario}.yaml"
    own = edition_file(VALUES_DIR, edition, name) if scenario else None
    if own is not None:
        return (str(own.relative_to(VALUES_DIR)), *extra)
    return ((name,) if scenario and (VALUES_DIR / name).exists() else ()) + tuple(extra)


def edition_file(folder: Path, edition: str | None, name: str) -> Path | None:
    """The edition's own copy of a values file (values/<edition>/, then the folders of the edition
    it is based on), or None when it keeps the shared one."""
    if not edition:
        return None
    chain = editions.EDITIONS[edition].folders if edition in editions.EDITIONS else (edition,)
    return next((folder / own / name for own in chain if (folder / own / name).is_file()), None)


def available(kind: str, *, values_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names usable for one kind of overlay ("profile", "backend", "scenario")."""
    folder = Path(values_dir) if values_dir else VALUES_DIR
    names = sorted(p.stem.removeprefix(f"{kind}-") for p in folder.glob(f"{kind}-*.yaml"))
    if kind == "profile":
        names = sorted(NO_OVERLAY_PROFILES) + names
    if kind == "backend":
        names = sorted(NO_OVERLAY_BACKENDS) + names + [
            p.stem for p in sorted(folder.glob("*.yaml"))
            if not re.match(r"(tutorial|profile|backend|scenario|variant|fix|break)-", p.name)
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
    edition: str | None = None,
) -> ValuesPlan:
    """plan_values(merge_order(...)): the plan of one run."""
    return plan_values(merge_order(step, profile, backend, scenario, extra, edition=edition), sets)


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
    base_models = model_specs(base_values) if base_values is not None else None
    engine = data.get("servingEngineSpec")
    if isinstance(engine, dict) and "modelSpec" in engine:
        patches = engine["modelSpec"]
        if not isinstance(patches, list) or not all(isinstance(v, dict) for v in patches):
            raise ConfigError(
                f"{_show(path)}: servingEngineSpec.modelSpec must be a list of patches (- keda: …), "
                "one per model spec of the base file, in the same order"
            )
        for index, patch in enumerate(patches):
            _check_patch(path, index, patch, base_models, base_path)
    return list(leaves(data).items())


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
# a release's values against the page's


def leaves(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as `--set` paths to their leaves (an overlay's `--set-json` pairs, overlay_sets): maps
    down to their leaves, `servingEngineSpec.modelSpec` by index, any other list (and an empty map) a leaf."""
    out: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], parts: tuple[str | int, ...]) -> None:
        for key, value in node.items():
            here = (*parts, str(key))
            if here == ("servingEngineSpec", "modelSpec") and isinstance(value, list):
                for index, spec in enumerate(value):
                    if isinstance(spec, Mapping):
                        walk(spec, (*here, index))
                    else:
                        out[set_path(*here, index)] = spec
            elif isinstance(value, Mapping) and value:
                walk(value, here)
            else:
                out[set_path(*here)] = value

    walk(values, ())
    return out


@dataclass(frozen=True)
class AgainstPage:
    """A release's user-supplied values (`helm get values`) against the page's file, key by key."""

    kept: tuple[str, ...]  # the page's keys the release carries as the page wrote them
    harness: tuple[tuple[str, str, Any], ...]  # (key, the overlay that set it, its value): the run's additions
    broken: tuple[str, ...]  # what no source explains: a page key dropped or rewritten, a key of no source

    def explain(self) -> str:
        added = "; ".join(f"{key}={_shown(key, value)} ({source})" for key, source, value in self.harness) or "none"
        lines = [f"{len(self.kept)} of the page's keys as written; the harness's additions: {added}"]
        if self.broken:
            lines.insert(0, "not as the page or an overlay wrote them: " + "; ".join(self.broken))
        return " — ".join(lines)


def against_page(page: Mapping[str, Any], release: Mapping[str, Any], plan: ValuesPlan) -> AgainstPage:
    """Judge `release` (helm get values) against `page` (the step's file as the page prints it): each
    of the page's keys must be there as written unless one of the plan's overlays set it (then it is
    the overlay's, listed apart by name — a harness fix's rewrite is named, not hidden); a key the
    page does not have must be an overlay's. Whatever else differs was dropped or rewritten by
    something no one named (the chart, helm, an unlisted overlay)."""
    setters: dict[str, tuple[str, Any]] = {}
    base_values = load_values(plan.base)
    for overlay in plan.overlays:
        for key, value in overlay_sets(overlay, base_values=base_values, base_path=plan.base):
            setters[key] = (overlay.name, value)
    for key, value in plan.sets:
        if key not in setters or setters[key][1] != value:
            setters[key] = ("--set-json", value)
    want, got = leaves(page), leaves(release)
    kept: list[str] = []
    harness: list[tuple[str, str, Any]] = []
    broken: list[str] = []
    for key in [*want, *(k for k in got if k not in want), *(k for k in setters if k not in want and k not in got)]:
        present = key in got
        if key in setters:
            source, value = setters[key]
            if (present and got[key] == value) or (not present and value is None):
                harness.append((key, source, value))
            else:
                broken.append(f"{key}: {source} set {_shown(key, value)}, the release has "
                              + (_shown(key, got[key]) if present else "no such key"))
        elif key not in want:
            broken.append(f"{key}={_shown(key, got[key])}: in the release, from neither the page nor an overlay")
        elif not present:
            broken.append(f"{key}: the page's {_shown(key, want[key])} dropped")
        elif got[key] != want[key]:
            broken.append(f"{key}: the page's {_shown(key, want[key])} rewritten as {_shown(key, got[key])}")
        else:
            kept.append(key)
    return AgainstPage(tuple(kept), tuple(harness), tuple(broken))


# --------------------------------------------------------------------------------------------
# helpers


def model_specs(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    engine = (values or {}).get("servingEngineSpec") or {}
    specs = engine.get("modelSpec") if isinstance(engine, Mapping) else None
    return [s for s in specs if isinstance(s, dict)] if isinstance(specs, list) else []






def _json(value: Any) -> str:
    return json.dumps(value)


def _shown(key: str, value: Any) -> str:
    """A value for messages, a secret's masked (as describe_overlay masks it)."""
    return REDACTED if is_secret_key(key) and value not in (None, "") else _json(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show(path: Path) -> str:
    """A path as the user knows it: relative to the current directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
