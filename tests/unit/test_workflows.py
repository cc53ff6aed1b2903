"""The GitHub Actions workflows: actionlint (built from its Go module, shellcheck on every
`run:` block) finds nothing, and each workflow has the pieces its job needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vllm_stack_e2e import actionlint
from vllm_stack_e2e.cache import tools_dir

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
BUILD_PY = Path(actionlint.__file__).parent / "lab" / "build.py"
ALLOWED_ACTIONS = {"actions/checkout@v4", "actions/upload-artifact@v4", "actions/setup-go@v5",
                   "actions/setup-python@v5", "actions/cache@v4"}
GPU_RUNS_ON = "${{ fromJSON(vars.GPU_RUNNER_LABELS || '[\"self-hosted\",\"gpu\"]') }}"


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return doc["jobs"][job]["steps"]


def step_running(doc: dict[str, Any], job: str, text: str) -> dict[str, Any]:
    return next(s for s in steps(doc, job) if text in s.get("run", ""))


def uploads(doc: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return [s for s in steps(doc, job) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]


# ---- actionlint ------------------------------------------------------------------------------------------
def test_actionlint_is_built_pinned_into_the_cache() -> None:
    binary = actionlint.ensure()
    assert binary == tools_dir("actionlint", actionlint.VERSION) / "actionlint"
    out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == f"v{actionlint.VERSION}"


def test_workflows_pass_actionlint_with_shellcheck() -> None:
    assert shutil.which("shellcheck"), "shellcheck is not on PATH: install it (apt-get install shellcheck)"
    files = actionlint.workflow_files()
    assert {f.name for f in files} == {"nightly-e2e.yml", "release-gate.yml", "lab.yml"}
    findings = actionlint.lint(files)
    assert findings == [], "\n".join(map(str, findings))


def test_actionlint_reports_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo $HOME ${{ github.event.head_commit.message }}\n"
                   "      - uses: actions/checkout@v1\n")
    kinds = {f.kind for f in actionlint.lint([bad])}
    assert {"shellcheck", "expression", "action"} <= kinds


# ---- what each workflow must have ----------------------------------------------------------------------
def test_every_action_is_pinned_to_a_major_version() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        used = set(re.findall(r"uses:\s*(\S+)", path.read_text()))
        assert used and used <= ALLOWED_ACTIONS, f"{path.name}: {used - ALLOWED_ACTIONS}"


def test_secrets_and_inputs_never_reach_a_run_script_directly() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = load(path.name)
        for job in doc["jobs"].values():
            for step in job["steps"]:
                script = step.get("run", "")
                assert "secrets." not in script and "inputs." not in script, f"{path.name}: {step.get('name')}"
                assert "set -x" not in script


def test_nightly_runs_the_tutorial_on_the_gpu_cluster() -> None:
    doc = load("nightly-e2e.yml")
    assert doc["on"]["schedule"][0]["cron"]
    assert "workflow_dispatch" in doc["on"]
    assert doc["concurrency"] == {"group": "gpu-cluster-e2e", "cancel-in-progress": False}
    job = doc["jobs"]["e2e"]
    assert job["runs-on"] == GPU_RUNS_ON
    write = step_running(doc, "e2e", "KUBECONFIG_CONTENT")
    assert write["env"] == {"KUBECONFIG_CONTENT": "${{ secrets.E2E_KUBECONFIG }}"}
    assert 'mktemp "${RUNNER_TEMP}/' in write["run"] and '>> "${GITHUB_ENV}"' in write["run"]
    assert "umask 077" in write["run"]
    page = step_running(doc, "e2e", "make e2e CLUSTER")
    beyond = step_running(doc, "e2e", "make e2e-beyond")
    assert "make e2e CLUSTER=current" in page["run"] and page["env"] == {"REPORTS_DIR": "reports/page"}
    assert beyond["if"] == "${{ !cancelled() }}" and beyond["env"] == {"REPORTS_DIR": "reports/beyond"}, \
        "the scenarios beyond the page run after the page, in their own report, whatever the page's outcome"
    summary = step_running(doc, "e2e", "GITHUB_STEP_SUMMARY")
    assert summary["if"] == "always()" and "vllm_stack_e2e.report --latest --reports-dir" in summary["run"]
    assert "for set in page beyond" in summary["run"]
    (upload,) = uploads(doc, "e2e")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"


def test_release_gate_takes_a_chart_version_and_publishes_the_verdict() -> None:
    doc = load("release-gate.yml")
    for trigger in ("workflow_call", "workflow_dispatch"):
        version = doc["on"][trigger]["inputs"]["chart_version"]
        assert version["required"] is True and version["type"] == "string"
    assert doc["on"]["workflow_call"]["outputs"]["verdict"]["value"] == "${{ jobs.gate.outputs.verdict }}"
    assert doc["concurrency"] == {"group": "gpu-cluster-e2e", "cancel-in-progress": False}
    job = doc["jobs"]["gate"]
    assert job["runs-on"] == GPU_RUNS_ON
    assert job["outputs"]["verdict"] == "${{ steps.publish.outputs.verdict }}"
    assert job["env"]["CHART_VERSION"] == "${{ inputs.chart_version }}"
    assert 'make gate CHART_VERSION="${CHART_VERSION}"' in step_running(doc, "gate", "make gate")["run"]
    publish = next(s for s in steps(doc, "gate") if s.get("id") == "publish")
    assert publish["if"] == "always()"
    assert '"${GITHUB_OUTPUT}"' in publish["run"] and '"${GITHUB_STEP_SUMMARY}"' in publish["run"]
    paths = {u["with"]["path"] for u in uploads(doc, "gate") if u["if"] == "always()"}
    assert paths == {"reports/verdict.json", "reports/"}


def test_lab_runs_make_test_with_cached_builds() -> None:
    doc = load("lab.yml")
    assert "pull_request" in doc["on"] and doc["on"]["push"]["branches"] == ["main"]
    job = doc["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert "make test" in step_running(doc, "test", "make test")["run"]
    cache = next(s for s in steps(doc, "test") if str(s.get("uses", "")).startswith("actions/cache@"))
    paths = cache["with"]["path"].split()
    assert {"~/.cache/vllm-stack-e2e", "~/go/pkg/mod", "~/.cache/go-build"} <= set(paths)
    assert "${{ steps.pins.outputs.key }}" in cache["with"]["key"]
    (upload,) = uploads(doc, "test")
    assert upload["if"] == "failure()" and upload["with"]["path"] == "reports/"


def test_lab_cache_key_covers_every_pinned_version() -> None:
    """The key step greps `NAME_VERSION = "…"` lines: it must see each pin build.py and actionlint use."""
    script = step_running(load("lab.yml"), "test", "sha256sum")["run"]
    pattern = re.search(r"grep -hE '([^']+)'", script).group(1)
    pins = [line for line in BUILD_PY.read_text().splitlines() if re.match(pattern, line)]
    names = {line.split(" =", 1)[0] for line in pins}
    assert {"KUBERNETES_VERSION", "KEDA_VERSION", "KWOK_VERSION", "ETCD_VERSION", "PROMETHEUS_MODULE_VERSION"} <= names
    assert any(re.match(pattern, line) and actionlint.VERSION in line
               for line in Path(actionlint.__file__).read_text().splitlines())


@pytest.mark.parametrize("name", ["nightly-e2e.yml", "release-gate.yml"])
def test_gpu_jobs_upload_reports_even_when_the_run_fails(name: str) -> None:
    doc = load(name)
    (job,) = doc["jobs"]
    assert any(u["if"] == "always()" and u["with"]["path"] == "reports/" for u in uploads(doc, job))
    assert any(s.get("if") == "always()" and "rm -f" in s.get("run", "") for s in steps(doc, job))
