"""Harness fixes for upstream defects, written for one run — NOT part of the tutorial.

Some fixes depend on the run: defect 7's fix names the Prometheus Service with the run's
namespace, defect 3's aggregates whichever queries the scenario's triggers carry. So the fix is
derived from what the run's values render: `helm template` of the step-4 plan (+ scenario), the
registry's detectors on the rendered ScaledObject and its neighbours, then an overlay made of
each found defect's fix as the registry declares it (`Defect.fix_trigger` on every Prometheus
trigger — every trigger is written, since an overlay's list replaces the chart's — and
`Defect.fix_values`, e.g. defect 6's engine ServiceMonitor). The overlay is a file in the run's
folder, and every helm call that applies it prints it, as every overlay.

Used for scenarios whose claims are not about the defect (7a–7c), and for the whole run when the
user asks for it (FIX_DEFECTS=6,7 or --fix-defects): then a tutorial claim that fails with the
defect passes, which is how the suite shows a fix works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from . import defects, values
from .helm import Helm

Obj = Mapping[str, Any]
FixContext = defects.FixContext
SHUTDOWN_SECONDS = defects.SHUTDOWN_SECONDS  # defect 10's fix (docs/termination.md)


def lookup_in(docs: Iterable[Obj], namespace: str) -> defects.Lookup:
    """A detector's lookup over rendered objects (helm template renders one namespace)."""
    items = [d for d in docs if d]

    def find(kind: str) -> list[Obj]:
        return [d for d in items if d.get("kind") == kind
                and ((d.get("metadata") or {}).get("namespace") in (None, namespace))]
    return find


def found(docs: Iterable[Obj], numbers: Iterable[int], namespace: str) -> dict[int, str]:
    """The defects among `numbers` present in rendered objects: number -> evidence."""
    docs = list(docs)
    lookup = lookup_in(docs, namespace)
    out: dict[int, str] = {}
    # With keda disabled nothing is rendered for the trigger defects, but defect 6 (the engine's
    # ServiceMonitor) is read from the namespace alone: an upgrade that turns KEDA off must keep it too.
    for so in lookup("ScaledObject") or [None]:
        if so is not None:  # helm template may leave the namespace out
            so = {**so, "metadata": {**(so.get("metadata") or {}), "namespace": namespace}}
        for number in numbers:
            evidence = defects.get(number).evidence(so, lookup, namespace)
            if evidence and number not in out:
                out[number] = evidence
    return out


def fixed_trigger(trigger: Obj, fix: Iterable[int], run: FixContext) -> dict[str, Any]:
    """One trigger with the trigger fixes (`Defect.fix_trigger`) of the defects in `fix`, in number
    order, applied to its metadata when it is a Prometheus trigger."""
    meta = dict(trigger.get("metadata") or {})
    if trigger.get("type") == "prometheus":
        for number in sorted(fix):
            change = defects.get(number).fix_trigger
            if change is not None:
                meta = change(meta, run)
    out = {key: value for key, value in trigger.items() if key != "metadata"}
    out["metadata"] = meta
    return out


def merge(into: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` merged into `into` as helm merges an overlay: maps key by key; servingEngineSpec.modelSpec
    entry by entry (an overlay's modelSpec entries patch the base's, values.py); other values replace."""
    for key, value in data.items():
        here = into.get(key)
        if isinstance(value, Mapping) and isinstance(here, dict):
            merge(here, value)
        elif key == "modelSpec" and isinstance(value, list) and isinstance(here, list):
            for index, patch in enumerate(value):
                if index < len(here) and isinstance(here[index], dict) and isinstance(patch, Mapping):
                    merge(here[index], patch)
                elif index < len(here):
                    here[index] = patch
                else:
                    here.append(patch)
        else:
            into[key] = value
    return into


def overlay_values(docs: Iterable[Obj], fix: Iterable[int], run: FixContext) -> dict[str, Any]:
    """The values overlay that fixes the defects in `fix` in these rendered objects: every trigger
    (an overlay's list replaces the chart's) with the trigger fixes, then each values fix, in number order."""
    docs = list(docs)
    found = [defects.get(n) for n in sorted(set(fix))]
    out: dict[str, Any] = {}
    so = next((d for d in docs if d and d.get("kind") == "ScaledObject"), None)
    if so is not None and any(d.fix_trigger is not None for d in found):
        triggers = [fixed_trigger(t, fix, run) for t in (so.get("spec") or {}).get("triggers") or []]
        out = {"servingEngineSpec": {"modelSpec": [{"keda": {"triggers": triggers}}]}}
    for defect in found:
        if defect.fix_values is not None:
            merge(out, defect.fix_values(docs, run))
    return out


def text(data: Mapping[str, Any], fix: dict[int, str]) -> str:
    """An overlay's file content: a header line per defect it fixes (what was seen), then the values."""
    head = "".join(f"# Harness fix for {defects.get(n).doc} — NOT part of the tutorial. Seen: {ev}\n"
                   for n, ev in sorted(fix.items()))
    return head + yaml.safe_dump(dict(data), sort_keys=False)


def write(path: Path, data: Mapping[str, Any], fix: dict[int, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text(data, fix))
    return path


def overlay(plan: values.ValuesPlan, numbers: Iterable[int], *, chart: str, run: FixContext,
            folder: Path, name: str, helm: Helm | None = None, version: str | None = None
            ) -> tuple[Path | None, dict[int, str]]:
    """The fix overlay for the defects among `numbers` that `plan` renders (None when none is
    there), and what was seen of each."""
    docs = (helm or Helm()).template(chart, release=run.release, files=plan.files, sets=plan.sets,
                                     namespace=run.namespace, version=version)
    present = found(docs, [n for n in numbers if defects.get(n).fixable], run.namespace)
    if not present:
        return None, {}
    data = overlay_values(docs, set(present), run)
    return write(folder / f"fix-{name}.yaml", data, present), present
