"""LocalPrometheus's generated config and target bookkeeping (no process started here;
tests/integration starts real ones)."""

import pytest
import yaml

from vllm_stack_e2e.lab.prometheus import LocalPrometheus, ScrapeTarget


@pytest.fixture
def local(tmp_path):
    return LocalPrometheus(binary=tmp_path / "prometheus", data_dir=tmp_path / "p", listen="127.0.90.1:9090")


def jobs(local: LocalPrometheus) -> dict:
    return {job["job_name"]: job for job in yaml.safe_load(local.render_config())["scrape_configs"]}


def test_targets_become_static_configs_with_their_labels(local):
    local.set_targets([
        ScrapeTarget.of("127.0.90.11:8000", job="vllm-engine", namespace="default", pod="vllm-llama3-0"),
        ScrapeTarget.of("127.0.90.12:8000", job="vllm-engine", namespace="default", pod="vllm-llama3-1"),
        ScrapeTarget.of("127.0.90.2:8000", job="vllm-router", service="vllm-router-service"),
    ])
    config = jobs(local)
    assert set(config) == {"vllm-engine", "vllm-router"}
    engine = config["vllm-engine"]
    assert engine["scrape_interval"] == "1s" and engine["scrape_timeout"] == "1s"
    assert [sc["targets"] for sc in engine["static_configs"]] == [["127.0.90.11:8000"], ["127.0.90.12:8000"]]
    assert engine["static_configs"][1]["labels"] == {"job": "vllm-engine", "namespace": "default",
                                                      "pod": "vllm-llama3-1"}
    assert local.config_path.exists(), "set_targets writes the file even before start"


def test_targets_can_come_and_go_like_pods(local):
    local.add_target(ScrapeTarget.of("127.0.90.11:8000", pod="a"))
    local.add_target(ScrapeTarget.of("127.0.90.12:8000", pod="b"))
    local.add_target(ScrapeTarget.of("127.0.90.12:8000", pod="b-relabelled"))
    assert sorted(t.label_dict["pod"] for t in local.targets()) == ["a", "b-relabelled"]
    assert local.remove_targets("127.0.90.11:8000") == 1
    assert local.remove_targets(lambda t: t.label_dict.get("pod") == "nope") == 0
    assert [t.address for t in local.targets()] == ["127.0.90.12:8000"]


def test_argv_listens_where_asked_with_the_lifecycle_api(local):
    argv = local.argv()
    assert "--web.listen-address=127.0.90.1:9090" in argv and "--web.enable-lifecycle" in argv
    assert local.url == "http://127.0.90.1:9090"


def test_only_loopback_listen_addresses(tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        LocalPrometheus(binary=tmp_path / "p", data_dir=tmp_path, listen="0.0.0.0:9090")
    with pytest.raises(ValueError, match="HOST:PORT"):
        LocalPrometheus(binary=tmp_path / "p", data_dir=tmp_path, listen="9090")
