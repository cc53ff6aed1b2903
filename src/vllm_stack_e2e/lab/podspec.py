"""Reading a pod's spec the way a kubelet does, for the data plane: the container's command line,
the ports it names, and its environment with `valueFrom` / `envFrom` resolved from the API.

Pure functions: the objects a reference needs (Secrets, ConfigMaps) come through `lookup`, so the
rules are unit-tested without an API server."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
# (kind, namespace, name) -> the object or None
Lookup = Callable[[str, str, str], Obj | None]
VLLM_DEFAULT_PORT = 8000  # `vllm serve --port` default


class EnvError(ValueError):
    """A reference the kubelet could not resolve: the container is not created
    (CreateContainerConfigError) until it can be."""


def container(pod: Obj, index: int = 0) -> Obj:
    return pod["spec"]["containers"][index]


def argv(pod: Obj) -> list[str]:
    """command + args of the pod's first container."""
    c = container(pod)
    return list(c.get("command") or []) + list(c.get("args") or [])


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` in args (the last one wins, as argparse)."""
    found = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def listen_port(args: list[str], default: int = VLLM_DEFAULT_PORT) -> int:
    """The port a server's command line listens on (`--port N`), else its program's default."""
    value = flag(args, "--port")
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise ValueError(f"--port {value!r} is not a number") from None


def port_number(pod: Obj, port: int | str | None) -> int | None:
    """A probe's or Service's target port as a number: a number as is, a name looked up in the
    containers' ports (None when no container names it)."""
    if port is None:
        return None
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for c in pod["spec"]["containers"]:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    return None


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(?P<key>[^']+)'\]$")


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
              "status.podIP": status.get("podIP"),
              "status.podIPs": ",".join(ip.get("ip", "") for ip in status.get("podIPs") or [])}
    if path in simple:
        return str(simple[path] or "")
    if m := _FIELD.match(path):
        return str((meta.get(m[1]) or {}).get(m["key"], ""))
    raise EnvError(f"fieldRef {path!r} is not a field the kubelet exposes")


def _key_ref(kind: str, ref: Obj, namespace: str, lookup: Lookup) -> str | None:
    obj = lookup(kind, namespace, ref.get("name", ""))
    data = (obj or {}).get("data") or {}
    key = ref.get("key", "")
    if obj is not None and key in data:
        return base64.b64decode(data[key]).decode() if kind == "Secret" else str(data[key])
    if ref.get("optional"):
        return None
    missing = f"{kind} {namespace}/{ref.get('name')}" + ("" if obj is None else f" has no key {key!r}")
    raise EnvError(f"{missing}: the container cannot start (CreateContainerConfigError)")


def env(pod: Obj, lookup: Lookup, index: int = 0) -> dict[str, str]:
    """The container's environment: envFrom first, then env in order (later entries win and may
    use `$(VAR)` of earlier ones, as Kubernetes expands them). EnvError for a missing reference
    that is not optional."""
    c = container(pod, index)
    namespace = pod["metadata"]["namespace"]
    out: dict[str, str] = {}
    for source in c.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key not in source:
                continue
            ref = source[key]
            obj = lookup(kind, namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f"{kind} {namespace}/{ref.get('name')} (envFrom): the container cannot start "
                               "(CreateContainerConfigError)")
            for name, value in (obj.get("data") or {}).items():
                out[prefix + name] = base64.b64decode(value).decode() if kind == "Secret" else str(value)
    for entry in c.get("env") or []:
        name = entry["name"]
        if "valueFrom" not in entry:
            out[name] = re.sub(r"\$\((\w+)\)", lambda m: out.get(m[1], m[0]), str(entry.get("value", "")))
            continue
        source = entry["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = _field(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source:
            value = _key_ref("Secret", source["secretKeyRef"], namespace, lookup)
        elif "configMapKeyRef" in source:
            value = _key_ref("ConfigMap", source["configMapKeyRef"], namespace, lookup)
        else:  # resourceFieldRef: limits/requests in the container's units; the simulator has no use for them
            value = None
        if value is not None:
            out[name] = value
    return out
