"""KEDA's own account of a ScaledObject, parsed from the operator's /metrics text (names as KEDA
2.20.2 exports them), and how the lab's Prometheus flavours scrape it."""

import base64
import gzip
from pathlib import Path

import yaml

from vllm_stack_e2e import kedametrics
from vllm_stack_e2e.lab import monitoring
from vllm_stack_e2e.lab import paths as p
from vllm_stack_e2e.lab.observability import LabPrometheus

OPERATOR_METRICS = """\
# HELP keda_scaler_metrics_value The current value for each scaler's metric that would be used by the HPA in computing the target average.
# TYPE keda_scaler_metrics_value gauge
keda_scaler_metrics_value{metric="s0-prometheus",namespace="run",scaledObject="vllm-llama3-scaledobject",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 7
keda_scaler_metrics_value{metric="s1-prometheus",namespace="run",scaledObject="vllm-llama3-scaledobject",scaler="prometheusScaler",triggerIndex="1",type="scaledobject"} 1
keda_scaler_metrics_value{metric="s0-prometheus",namespace="run-neighbour",scaledObject="neighbour",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 99
# HELP keda_scaler_active Indicates whether a scaler is active (1), or not (0).
# TYPE keda_scaler_active gauge
keda_scaler_active{metric="s0-prometheus",namespace="run",scaledObject="vllm-llama3-scaledobject",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 1
# HELP keda_scaler_detail_errors_total The total number of errors encountered for each scaler.
# TYPE keda_scaler_detail_errors_total counter
keda_scaler_detail_errors_total{metric="s0-prometheus",namespace="run",scaledObject="vllm-llama3-scaledobject",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 3
keda_scaler_detail_errors_total{metric="s0-prometheus",namespace="run-neighbour",scaledObject="neighbour",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 40
# HELP keda_scaled_object_errors_total The number of errors that have occurred for each ScaledObject.
# TYPE keda_scaled_object_errors_total counter
keda_scaled_object_errors_total{namespace="run",scaledObject="vllm-llama3-scaledobject"} 6
"""


def test_a_reading_keeps_only_the_scaledobjects_own_series():
    reading = kedametrics.parse(OPERATOR_METRICS, "run", "vllm-llama3-scaledobject")
    assert reading.values == {0: 7.0, 1: 1.0} and reading.value(0) == 7.0
    assert reading.active == {0: True}
    assert reading.scaler_errors == {0: 3.0}, "the neighbour's 40 errors are not ours"
    assert reading.errors == 6.0, "the ScaledObject's own counter wins (scaler and cache errors)"


def test_before_the_object_counter_exists_the_scalers_errors_count():
    text = "\n".join(line for line in OPERATOR_METRICS.splitlines() if "scaled_object_errors" not in line)
    assert kedametrics.parse(text, "run", "vllm-llama3-scaledobject").errors == 3.0


def test_an_unknown_scaledobject_reads_as_nothing_counted():
    reading = kedametrics.parse(OPERATOR_METRICS, "run", "other")
    assert reading.values == {} and reading.errors == 0.0 and reading.value() is None


def test_new_errors_sum_the_increases_and_read_a_drop_as_an_operator_restart():
    assert kedametrics.new_errors([]) is None and kedametrics.new_errors([None, None]) is None
    assert kedametrics.new_errors([4, 4, None, 4]) == 0
    assert kedametrics.new_errors([4, 6, 9]) == 5
    assert kedametrics.new_errors([4, 6, 1, 2]) == 2 + 1 + 1, "after a restart the counter starts again from 0"


def test_the_first_editions_lab_prometheus_scrapes_keda(tmp_path: Path):
    prom = LabPrometheus(binary=tmp_path / "prometheus", data_dir=tmp_path, targets_file=tmp_path / "targets.json")
    jobs = {job["job_name"]: job for job in yaml.safe_load(prom.render_config())["scrape_configs"]}
    keda = jobs[p.KEDA_SCRAPE_JOB]
    assert keda["static_configs"][0]["targets"] == [f"{p.KEDA_OPERATOR_ADDR}:{p.KEDA_METRICS_PORT}"]
    assert "namespace" not in keda["static_configs"][0]["labels"], "KEDA's namespace label must stay the ScaledObject's"
    assert "vllm-stack" in jobs


def test_the_current_editions_generated_config_gets_the_keda_job_once(tmp_path: Path):
    generated = {"global": {"scrape_interval": "30s"}, "scrape_configs": [
        {"job_name": "serviceMonitor/run/engine/0", "kubernetes_sd_configs": [{"role": "endpoints"}]}]}
    data = base64.b64encode(gzip.compress(yaml.safe_dump(generated).encode())).decode()
    secret = {"metadata": {"name": "prometheus-x"}, "data": {monitoring.CONFIG_KEY: data}}
    config = yaml.safe_load(monitoring.lab_config(secret, tmp_path / "kubeconfig", {}))
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert names == ["serviceMonitor/run/engine/0", p.KEDA_SCRAPE_JOB]
