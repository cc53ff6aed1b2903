"""Command lines are logged with the values of secret-named flags masked (a `vllm serve` with
`--api-key` in the chart's extra arguments must not put the key in the lab's logs)."""

from pathlib import Path

import pytest

from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec
from vllm_stack_e2e.redaction import redact_argv


@pytest.mark.parametrize(("argv", "shown"), [
    (["vllm", "serve", "m", "--api-key", "s3cret", "--port", "8000"],
     ["vllm", "serve", "m", "--api-key", "***", "--port", "8000"]),
    (["vllm", "serve", "m", "--api-key=s3cret"], ["vllm", "serve", "m", "--api-key=***"]),
    (["x", "--hf-token", "hf_abc", "--model", "secret-model"], ["x", "--hf-token", "***", "--model", "secret-model"]),
    (["x", "--api-key", "--port", "1"], ["x", "--api-key", "--port", "1"]),
    (["--tls-private-key-file=/certs/tls.key", "--k8s-label-selector", "a=b"],
     ["--tls-private-key-file=/certs/tls.key", "--k8s-label-selector", "a=b"]),
])
def test_secret_flag_values_are_masked(argv, shown):
    assert redact_argv(argv) == shown


def test_a_process_log_names_its_command_without_the_key(tmp_path: Path):
    proc = ManagedProcess(ProcessSpec(name="p", argv=["true", "--api-key", "s3cret"], log=tmp_path / "p.log"),
                          tmp_path / "p.pid")
    proc.start()
    proc.stop(timeout=5)
    text = (tmp_path / "p.log").read_text()
    assert "--api-key ***" in text and "s3cret" not in text
