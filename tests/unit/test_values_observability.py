"""observability/: install.sh and uninstall.sh (tutorial steps 1 and 8) and their values. The
scripts run here against recording stand-ins for helm and kubectl, so what they would do to a
cluster is checked without one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vllm_stack_e2e.errors import ProvisionError
from vllm_stack_e2e.helm import STANDIN_CHART, Helm

OBS = Path(__file__).resolve().parents[2] / "observability"
STEP4 = OBS.parent / "values" / "tutorial-step4.yaml"
SCRIPTS = [OBS / "install.sh", OBS / "uninstall.sh"]

# A fake binary: appends its arguments to $CALLS, one call per line; `status` exits $STATUS_RC.
FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
if [ "${1:-}" = "status" ]; then exit "${STATUS_RC:-0}"; fi
exit 0
"""


@pytest.fixture()
def fakes(tmp_path: Path) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "CALLS": str(tmp_path / "calls")}
    for name in ("helm", "kubectl"):
        path = tmp_path / name
        path.write_text(FAKE)
        path.chmod(0o755)
        env[name.upper()] = str(path)
    return env


def run(script: Path, env: dict[str, str], **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(["bash", str(script)], env={**env, **extra}, capture_output=True, text=True, timeout=60)
    calls_file = Path(env["CALLS"])
    calls = calls_file.read_text().splitlines() if calls_file.exists() else []
    calls_file.unlink(missing_ok=True)
    return proc, calls


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_valid_strict_bash(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (Debian: apt-get install -y shellcheck)")
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def pinned(name: str) -> str:
    match = re.search(rf'^{name}="\$\{{{name}:-(\d+\.\d+\.\d+)\}}"$', (OBS / "install.sh").read_text(), re.M)
    assert match, f"{name} is not pinned as {name}=\"${{{name}:-X.Y.Z}}\" in install.sh"
    return match.group(1)


def test_chart_versions_are_pinned_at_the_top() -> None:
    assert pinned("KUBE_PROM_STACK_VERSION") == "82.4.3"
    assert pinned("PROMETHEUS_ADAPTER_VERSION") == "5.3.0"


def test_install_runs_the_tutorials_releases_pinned_and_waiting(fakes: dict[str, str]) -> None:
    proc, calls = run(OBS / "install.sh", fakes)
    assert proc.returncode == 0, proc.stderr
    helm = [c.removeprefix("helm ") for c in calls if c.startswith("helm ")]
    assert helm[0] == "repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update"
    assert helm[2] == (
        "upgrade --install kube-prom-stack prometheus-community/kube-prometheus-stack --version 82.4.3 "
        f"--namespace monitoring --create-namespace --values {OBS}/kube-prom-stack.yaml --wait --timeout 10m"
    )
    assert helm[3] == (
        "upgrade --install prometheus-adapter prometheus-community/prometheus-adapter --version 5.3.0 "
        f"--namespace monitoring --create-namespace --values {OBS}/prom-adapter.yaml --wait --timeout 10m"
    )
    assert "kubectl --namespace monitoring get service prometheus-operated" in calls
    # every command is printed before it runs
    assert f"+ {fakes['HELM']} upgrade --install kube-prom-stack" in proc.stderr


def test_install_twice_does_the_same_idempotent_things(fakes: dict[str, str]) -> None:
    _, first = run(OBS / "install.sh", fakes)
    _, second = run(OBS / "install.sh", fakes)
    assert first == second
    assert all("install" not in c or "upgrade --install" in c for c in first)


def test_versions_and_binaries_are_overridable(fakes: dict[str, str]) -> None:
    proc, calls = run(OBS / "install.sh", fakes, KUBE_PROM_STACK_VERSION="99.0.0", PROMETHEUS_ADAPTER_VERSION="9.9.9")
    assert proc.returncode == 0
    assert any("kube-prometheus-stack --version 99.0.0" in c for c in calls)
    assert any("prometheus-adapter --version 9.9.9" in c for c in calls)


def test_install_stops_at_the_first_failure(fakes: dict[str, str], tmp_path: Path) -> None:
    failing = tmp_path / "failing-helm"
    failing.write_text('#!/usr/bin/env bash\necho "helm $*" >> "$CALLS"\nexit 1\n')
    failing.chmod(0o755)
    proc, calls = run(OBS / "install.sh", {**fakes, "HELM": str(failing)})
    assert proc.returncode != 0
    assert len(calls) == 1


def test_uninstall_removes_installed_releases_adapter_first(fakes: dict[str, str]) -> None:
    proc, calls = run(OBS / "uninstall.sh", fakes, STATUS_RC="0")
    assert proc.returncode == 0, proc.stderr
    removed = [c for c in calls if " uninstall " in c]
    assert removed == [
        "helm uninstall prometheus-adapter --namespace monitoring --wait --timeout 10m",
        "helm uninstall kube-prom-stack --namespace monitoring --wait --timeout 10m",
    ]
    assert not [c for c in calls if c.startswith("kubectl delete")], "CRDs and namespace stay without PURGE=1"


def test_uninstall_with_nothing_installed_changes_nothing(fakes: dict[str, str]) -> None:
    proc, calls = run(OBS / "uninstall.sh", fakes, STATUS_RC="1")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if " uninstall " in c or c.startswith("kubectl delete")]
    assert "not installed" in proc.stderr


def test_uninstall_purge_deletes_the_namespace(fakes: dict[str, str]) -> None:
    proc, calls = run(OBS / "uninstall.sh", fakes, STATUS_RC="1", PURGE="1")
    assert proc.returncode == 0, proc.stderr
    assert "kubectl delete namespace monitoring --ignore-not-found --wait=true" in calls


# -- values --------------------------------------------------------------------------------------


def service_monitor() -> dict:
    [monitor] = yaml.safe_load((OBS / "kube-prom-stack.yaml").read_text())["prometheus"]["additionalServiceMonitors"]
    return monitor


def test_service_monitor_selects_the_stacks_services_in_any_namespace() -> None:
    monitor = service_monitor()
    expressions = {e["key"]: (e["operator"], e["values"]) for e in monitor["selector"]["matchExpressions"]}
    assert expressions == {
        "app.kubernetes.io/managed-by": ("In", ["Helm"]),
        "environment": ("In", ["test", "router"]),
        "release": ("In", ["test", "router"]),
    }
    assert monitor["namespaceSelector"] == {"any": True}
    assert [e["port"] for e in monitor["endpoints"]] == ["service-port", "router-sport"]


def test_adapter_points_at_the_operators_prometheus() -> None:
    adapter = yaml.safe_load((OBS / "prom-adapter.yaml").read_text())
    assert adapter["prometheus"] == {"url": "http://kube-prom-stack-kube-prome-prometheus.monitoring.svc", "port": 9090}


def test_service_monitor_matches_the_charts_services_as_helm_installs_them() -> None:
    try:
        helm = Helm()
        helm.binary
    except ProvisionError as exc:
        pytest.skip(f"no helm binary: {exc}")
    docs = helm.template(STANDIN_CHART, files=[STEP4])
    services = {d["metadata"]["name"]: dict(d["metadata"]["labels"]) for d in docs if d["kind"] == "Service"}
    monitor = service_monitor()

    def selected(labels: dict[str, str]) -> bool:
        return all(labels.get(e["key"]) in e["values"] for e in monitor["selector"]["matchExpressions"])

    # helm install/upgrade sets app.kubernetes.io/managed-by=Helm on every top-level object
    installed = {name: {**labels, "app.kubernetes.io/managed-by": "Helm"} for name, labels in services.items()}
    assert {name for name, labels in installed.items() if selected(labels)} == {
        "vllm-llama3-engine-service", "vllm-router-service",
    }
    # as rendered (lowercase "helm"), nothing would match: the relabelling is what makes it work
    assert not any(selected(labels) for labels in services.values())
