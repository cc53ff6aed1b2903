"""vllm_stack_e2e.helm runs the real helm binary: rendering, linting with known chart defects
labelled, one-line errors with hints, and secrets that never reach logs or exceptions."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vllm_stack_e2e.errors import CommandError, ProvisionError
from vllm_stack_e2e.helm import STANDIN_CHART, Helm, HelmError, is_stand_in, parse_lint, set_path
from vllm_stack_e2e.redaction import REDACTED, is_secret_key
from vllm_stack_e2e.redaction import redact_tree as redact

STEP4 = Path(__file__).resolve().parents[2] / "values" / "tutorial-step4.yaml"
TOKEN = "hf_SuperSecretTokenValue123"
TOKEN_KEY = "servingEngineSpec.modelSpec[0].hf_token"




def write_chart(root: Path, name: str, templates: dict[str, str], schema: dict | None = None, values: str = "") -> Path:
    """A minimal chart for a test: Chart.yaml, values, optional schema, templates."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.0.1\ndescription: test chart\n")
    (chart / "values.yaml").write_text(values)
    if schema is not None:
        (chart / "values.schema.json").write_text(json.dumps(schema))
    for file, text in templates.items():
        (chart / "templates" / file).write_text(text)
    return chart


# -- basics --------------------------------------------------------------------------------------


def test_version_names_the_release(helm: Helm) -> None:
    assert helm.version().startswith(("v3.", "v4."))


def test_template_returns_parsed_objects(helm: Helm) -> None:
    docs = helm.template(STANDIN_CHART, release="r1", namespace="ns1", files=[STEP4])
    assert all(isinstance(d, dict) and d["kind"] for d in docs)
    engine = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "r1-llama3-deployment-vllm")
    assert engine["metadata"]["namespace"] == "ns1"


def test_template_show_only_limits_the_output(helm: Helm) -> None:
    docs = helm.template(STANDIN_CHART, files=[STEP4], show_only=["templates/scaledobject.yaml"])
    assert [d["kind"] for d in docs] == ["ScaledObject"]


def test_sets_are_typed_json_and_applied_in_order(helm: Helm) -> None:
    sets = [
        ("servingEngineSpec.modelSpec[0].keda.pollingInterval", 5),
        ("servingEngineSpec.modelSpec[0].keda.pollingInterval", 7),  # the later one wins
        ("servingEngineSpec.modelSpec[0].keda.fallback", {"failureThreshold": 3, "replicas": 2}),
    ]
    so = next(d for d in helm.template(STANDIN_CHART, files=[STEP4], sets=sets) if d["kind"] == "ScaledObject")
    assert so["spec"]["pollingInterval"] == 7
    assert so["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 2}


def test_set_path_escapes_dots_in_keys(helm: Helm) -> None:
    path = set_path("servingEngineSpec", "labels", "example.com/team")
    assert path == "servingEngineSpec.labels.example\\.com/team"
    assert set_path("servingEngineSpec", "modelSpec", 0, "keda") == "servingEngineSpec.modelSpec[0].keda"
    docs = helm.template(STANDIN_CHART, files=[STEP4], sets={path: "ml"})
    engine = next(d for d in docs if d["metadata"]["name"] == "vllm-llama3-deployment-vllm")
    assert engine["spec"]["template"]["metadata"]["labels"]["example.com/team"] == "ml"


def test_show_chart_tells_the_standin_from_a_real_chart(helm: Helm, tmp_path: Path) -> None:
    meta = helm.show_chart(STANDIN_CHART)
    assert (meta["name"], is_stand_in(meta)) == ("vllm-stack-standin", True)
    other = write_chart(tmp_path, "vllm-stack", {})
    assert is_stand_in(helm.show_chart(other)) is False


# -- lint ----------------------------------------------------------------------------------------


def test_lint_of_the_standin_is_structured(helm: Helm) -> None:
    result = helm.lint(STANDIN_CHART, [STEP4])
    assert result.ok and result.exit_code == 0
    assert [(m.severity, m.path) for m in result.infos] == [("info", "Chart.yaml")]
    assert "Linting" in result.raw


# A schema with the shape of the real chart 0.1.12's mistake: keda.triggers typed as an object.
TRIGGERS_AS_OBJECT_SCHEMA = {
    "$schema": "https://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"servingEngineSpec": {"type": "object", "properties": {"modelSpec": {
        "type": "array",
        "items": {"type": "object", "properties": {"keda": {"type": "object", "properties": {
            "triggers": {"type": "object"},
        }}}},
    }}}},
}


def test_lint_labels_the_triggers_schema_defect(helm: Helm, tmp_path: Path) -> None:
    chart = write_chart(tmp_path, "schema-defect", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
                        schema=TRIGGERS_AS_OBJECT_SCHEMA)
    result = helm.lint(chart, [STEP4])
    assert not result.ok and result.exit_code == 1
    assert result.defects == [1]
    assert result.only_known_defects
    message = result.errors[0]
    assert message.path == "values.yaml" and "keda/triggers" in message.message
    assert "known defect 1" in str(message) and "--skip-schema-validation" in message.fix


def test_lint_without_schema_validation_passes_the_defect(helm: Helm, tmp_path: Path) -> None:
    chart = write_chart(tmp_path, "schema-defect", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
                        schema=TRIGGERS_AS_OBJECT_SCHEMA)
    assert helm.lint(chart, [STEP4], skip_schema_validation=True).ok


def test_install_errors_on_the_schema_defect_carry_its_hint(helm: Helm, tmp_path: Path) -> None:
    # a chart that ships the mistaken schema fails template/install too; the hint names the defect
    chart = write_chart(tmp_path, "schema-defect", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
                        schema=TRIGGERS_AS_OBJECT_SCHEMA)
    with pytest.raises(CommandError, match=r"keda/triggers.*got array, want object.* — .*defect 1"):
        helm.template(chart, files=[STEP4])


def test_lint_reports_template_errors_unlabelled(helm: Helm, tmp_path: Path) -> None:
    chart = write_chart(tmp_path, "broken", {"bad.yaml": "{{ .Values.missing.key }}\n"})
    result = helm.lint(chart)
    assert not result.ok
    assert result.errors and result.defects == [] and not result.only_known_defects


@pytest.mark.parametrize(
    "line",
    [
        # helm ≥3.18 and 4.x (jsonschema v6)
        "[ERROR] values.yaml: - at '/servingEngineSpec/modelSpec/0/keda/triggers': got array, want object",
        # helm <3.18 (gojsonschema)
        "[ERROR] values.yaml: - servingEngineSpec.modelSpec.0.keda.triggers: Invalid type. Expected: object, given: array",
    ],
)
def test_parse_lint_recognises_both_schema_message_forms(line: str) -> None:
    output = f"==> Linting ./helm\n[INFO] Chart.yaml: icon is recommended\n{line}\n\nError: 1 chart(s) linted, 1 chart(s) failed\n"
    result = parse_lint(output, 1)
    assert result.defects == [1]
    assert [m.severity for m in result.messages] == ["info", "error"]


def test_parse_lint_keeps_continuation_lines_with_their_message() -> None:
    output = (
        "==> Linting x\n"
        "[ERROR] templates/: values don't meet the specifications of the schema(s) in the following chart(s):\n"
        "x:\n"
        "- at '/a': got string, want integer\n"
        "\n"
        "[WARNING] templates/cm.yaml: object name does not conform\n"
    )
    result = parse_lint(output, 1)
    assert [m.severity for m in result.messages] == ["error", "warning"]
    assert "got string, want integer" in result.errors[0].message
    assert result.warnings[0].path == "templates/cm.yaml"


# -- errors --------------------------------------------------------------------------------------


@pytest.fixture()
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }))
    return path


def test_errors_are_one_line_with_command_exit_code_and_hint(helm: Helm, unreachable_kubeconfig: Path) -> None:
    h = Helm(helm.binary, kubeconfig=unreachable_kubeconfig, namespace="default")
    with pytest.raises(HelmError) as info:
        h.list_releases()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("`helm list --output json")
    assert "(exit 1)" in message and "unreachable" in message.lower()
    assert "kubeconfig" in message.split(" — ")[-1]
    assert info.value.exit_code == 1 and not info.value.not_found


def test_template_errors_name_the_failing_value(helm: Helm) -> None:
    with pytest.raises(CommandError, match=r"keda.triggers must be a list.* — a chart template failed"):
        helm.template(STANDIN_CHART, files=[STEP4], sets={"servingEngineSpec.modelSpec[0].keda.triggers": "x"},
                      skip_schema_validation=True)


def test_missing_binary_is_a_provision_error(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="HELM="):
        Helm(tmp_path / "no-helm").version()


# -- secrets -------------------------------------------------------------------------------------


def test_secret_sets_reach_the_chart_but_not_the_log(helm: Helm, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vllm_stack_e2e.helm"):
        docs = helm.template(STANDIN_CHART, files=[STEP4], sets={TOKEN_KEY: TOKEN})
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["hf_token_llama3"]).decode() == TOKEN
    assert caplog.records, "helm commands are logged"
    assert TOKEN not in caplog.text
    assert f"{TOKEN_KEY}={REDACTED}" in caplog.text


def test_secret_sets_never_appear_in_exceptions(helm: Helm) -> None:
    sets = {TOKEN_KEY: TOKEN, "servingEngineSpec.modelSpec[0].keda.triggers": {"broken": True}}
    with pytest.raises(CommandError) as info:
        helm.template(STANDIN_CHART, files=[STEP4], sets=sets)
    assert TOKEN not in str(info.value)
    assert f"{TOKEN_KEY}={REDACTED}" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_secrets_echoed_by_helm_are_scrubbed(helm: Helm, tmp_path: Path) -> None:
    chart = write_chart(tmp_path, "echo", {"fail.yaml": '{{ fail (printf "bad token %s" .Values.auth.token) }}\n'})
    with pytest.raises(CommandError) as info:
        helm.template(chart, sets={"auth.token": TOKEN})
    assert TOKEN not in str(info.value)
    assert f"bad token {REDACTED}" in str(info.value)


@pytest.mark.parametrize("key, secret", [
    ("servingEngineSpec.modelSpec[0].hf_token", True),
    ("routerSpec.hf_token", True),
    ("servingEngineSpec.vllmApiKey", True),
    ("grafana.adminPassword", True),
    ("servingEngineSpec.modelSpec[0].keda.pollingInterval", False),
    ("servingEngineSpec.modelSpec[0].modelURL", False),
])
def test_secret_keys_are_recognised(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_masks_values_env_and_secret_objects() -> None:
    values = {"servingEngineSpec": {"modelSpec": [{"name": "m", "hf_token": TOKEN, "requestGPU": 1}]},
              "routerSpec": {"hf_token": ""}}
    assert redact(values) == {"servingEngineSpec": {"modelSpec": [{"name": "m", "hf_token": REDACTED, "requestGPU": 1}]},
                              "routerSpec": {"hf_token": ""}}
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"hf_token_m": "aGY="}}
    assert redact(secret)["data"] == {"hf_token_m": REDACTED}
    env = [{"name": "HF_TOKEN", "value": TOKEN}, {"name": "HF_HOME", "value": "/tmp"}]
    assert redact(env) == [{"name": "HF_TOKEN", "value": REDACTED}, {"name": "HF_HOME", "value": "/tmp"}]
    assert values["servingEngineSpec"]["modelSpec"][0]["hf_token"] == TOKEN, "the input is left unchanged"


# -- repositories ----------------------------------------------------------------------------------


@pytest.fixture()
def chart_repo(helm: Helm, tmp_path: Path) -> Iterator[str]:
    """The stand-in, packaged and served as a chart repository on localhost."""
    served = tmp_path / "repo"
    tgz = helm.package(STANDIN_CHART, dest=served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    meta = helm.show_chart(tgz)
    (served / "index.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "entries": {meta["name"]: [{**meta, "urls": [f"{url}/{tgz.name}"], "created": "2026-01-01T00:00:00Z"}]},
        "generated": "2026-01-01T00:00:00Z",
    }))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join()


def test_repo_add_is_idempotent_and_charts_resolve(helm: Helm, chart_repo: str, tmp_path: Path) -> None:
    h = Helm(helm.binary, env={
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
        "HELM_REPOSITORY_CONFIG": str(tmp_path / "config" / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(tmp_path / "cache" / "repository"),
    })
    h.repo_add("lab", chart_repo)
    h.repo_add("lab", chart_repo)  # a second add changes nothing and does not fail
    meta = h.show_chart("lab/vllm-stack-standin", version="0.1.12-standin.1")
    assert is_stand_in(meta) and meta["version"] == "0.1.12-standin.1"
    docs = h.template("lab/vllm-stack-standin", files=[STEP4], version="0.1.12-standin.1")
    assert any(d["kind"] == "ScaledObject" for d in docs)


@pytest.fixture()
def python_ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler for the test's duration. A process started in the background by
    a non-interactive shell (`nohup make test &`, a cron job) inherits SIGINT ignored, and a SIGINT
    sent to it then does nothing; these tests are about what the harness does with a Ctrl-C, not
    about how pytest was started."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def test_interrupt_stops_a_running_helm(tmp_path: Path, python_ctrl_c: None) -> None:
    """Ctrl-C or SIGTERM sent to the harness's PID only (as a CI runner or the interruption test
    does) must stop a running `helm … --wait` too: otherwise the interpreter stays alive until helm
    gives up. A stand-in helm (a script that blocks until signalled) is used because a real helm only blocks this
    long against a cluster."""
    pidfile = tmp_path / "helm.pid"
    fake = tmp_path / "helm"
    # The stand-in blocks until a signal ends it; SIGALRM bounds it to 120 s if nothing does.
    fake.write_text(f"#!{sys.executable}\nimport os, signal\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
                    "signal.alarm(120)\nsignal.pause()\n")
    fake.chmod(0o755)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        Helm(binary=fake)._run(["install", "x", "y", "--wait"], timeout=60)
    assert time.monotonic() - started < 15
    pid = int(pidfile.read_text())
    gone = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    assert gone in ("", "Z"), f"helm (pid {pid}) still running: {gone}"


_SIGINT_AT_FORK = threading.Event()


def _sigint_if_armed() -> None:
    if _SIGINT_AT_FORK.is_set():
        _SIGINT_AT_FORK.clear()
        signal.raise_signal(signal.SIGINT)


os.register_at_fork(after_in_parent=_sigint_if_armed)


def test_interrupt_during_the_fork_of_helm_is_not_lost(tmp_path: Path, python_ctrl_c: None) -> None:
    """A Ctrl-C that lands while sh forks helm must still interrupt the run. Python swallows a
    KeyboardInterrupt raised in an at-fork callback ("Exception ignored in _releaseLock"), so a
    run interrupted at that instant used to carry on and pass. The signal is raised from an
    at-fork callback here because no outside sender can hit that window on demand."""
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho installed\n")
    fake.chmod(0o755)
    _SIGINT_AT_FORK.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            Helm(binary=fake)._run(["install", "x", "y"], timeout=30)
    finally:
        _SIGINT_AT_FORK.clear()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the run's own Ctrl-C handler is back"
