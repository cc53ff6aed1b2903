"""Harness fixes for upstream defects, written for one run — NOT part of the tutorial.

Some fixes depend on the run: defect 7's fix names the Prometheus Service with the run's
namespace, defect 3's aggregates whichever queries the scenario's triggers carry. So the fix is
derived from what the run's values render: `helm template` of the step-4 plan (+ scenario), the
registry's detectors on the rendered ScaledObject and its neighbours, then an overlay that
changes only what each found defect needs — the triggers (every one of them, since an overlay's
list replaces the chart's) and, for defect 6, the engine's ServiceMonitor. The overlay is a file
in the run's folder, and every helm call that applies it prints it, as every overlay.

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
# Defect 10's fix: how long a scaled-in engine may finish what it runs — under the pod's 30 s grace
# period (the chart has no key to raise it), above the scenarios' longest request (docs/termination.md).
SHUTDOWN_SECONDS = 25


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
    for so in lookup("ScaledObject") or [{"kind": "ScaledObject", "metadata": {"namespace": namespace}}]:
        so = {**so, "metadata": {**(so.get("metadata") or {}), "namespace": namespace}}
        for number in numbers:
            detector = defects.get(number).present
            evidence = detector(so, lookup) if detector is not None else None
            if evidence and number not in out:
                out[number] = evidence
    return out


def fixed_trigger(trigger: Obj, fix: set[int], namespace: str) -> dict[str, Any]:
    """One trigger with the fixes of defects 3 (aggregate), 7 (namespaced Service name), 9 (the
    release's namespace selected in the query) and 11 (an empty result is an error, not 0)."""
    meta = dict(trigger.get("metadata") or {})
    if trigger.get("type") == "prometheus":
        query = str(meta.get("query") or "")
        if 9 in fix and query:
            query = meta["query"] = defects.scope_to_namespace(query, namespace)
        if 3 in fix and query and not defects.is_aggregated(query):
            meta["query"] = f"sum({query})"
        if 11 in fix:
            meta["ignoreNullValues"] = "false"
        address = str(meta.get("serverAddress") or "")
        host = defects.server_host(address)
        if 7 in fix and defects.is_short_name(host):
            meta["serverAddress"] = address.replace(f"//{host}", f"//{host}.{namespace}.svc", 1)
    out = {key: value for key, value in trigger.items() if key != "metadata"}
    out["metadata"] = meta
    return out


def overlay_values(docs: Iterable[Obj], fix: set[int], namespace: str) -> dict[str, Any]:
    """The values overlay that fixes `fix` in these rendered objects."""
    docs = list(docs)
    out: dict[str, Any] = {}
    so = next((d for d in docs if d and d.get("kind") == "ScaledObject"), None)
    if fix & {3, 7, 9, 11} and so is not None:
        triggers = [fixed_trigger(t, fix, namespace) for t in (so.get("spec") or {}).get("triggers") or []]
        out = {"servingEngineSpec": {"modelSpec": [{"keda": {"triggers": triggers}}]}}
    if 6 in fix:
        out.setdefault("servingEngineSpec", {})["serviceMonitor"] = {"enabled": True}
    if 10 in fix:
        engine = out.setdefault("servingEngineSpec", {})
        spec = (engine.setdefault("modelSpec", [{}]))[0]
        # enablePrefixCaching kept at vLLM's default: the chart turns it off in a vllmConfig without it.
        spec["vllmConfig"] = {"enablePrefixCaching": True,
                              "extraArgs": [defects.SHUTDOWN_FLAG, str(SHUTDOWN_SECONDS)]}
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


def overlay(plan: values.ValuesPlan, numbers: Iterable[int], *, chart: str, namespace: str, release: str,
            folder: Path, name: str, helm: Helm | None = None, version: str | None = None
            ) -> tuple[Path | None, dict[int, str]]:
    """The fix overlay for the defects among `numbers` that `plan` renders (None when none is
    there), and what was seen of each."""
    docs = (helm or Helm()).template(chart, release=release, files=plan.files, sets=plan.sets, namespace=namespace,
                                     version=version)
    present = found(docs, [n for n in numbers if defects.get(n).fixable], namespace)
    if not present:
        return None, {}
    data = overlay_values(docs, set(present), namespace)
    return write(folder / f"fix-{name}.yaml", data, present), present
