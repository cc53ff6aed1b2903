"""Engine presets: each simulated GPU derived from stated numbers (docs/engines.md), handed to the
simulator through its environment, with the command's own flags still winning."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vllm_stack_e2e.sim import cli, presets


def test_the_h100_presets_kv_cache_is_its_memory_after_weights_over_128_kib_a_token() -> None:
    """79.19 GiB × 0.9 − 14.96 GiB − 2.6 GiB = 53.71 GiB; / 131072 B = 440,0xx tokens, whole blocks:
    inside the 410k–442k vLLM logged for Llama-3.1-8B on 80 GB GPUs."""
    h100 = presets.get("h100-llama-3.1-8b")
    assert h100.model is not None and h100.model.kv_bytes_per_token == 131072
    assert h100.kv_cache_tokens == 440016 and h100.kv_cache_tokens % presets.BLOCK_SIZE == 0
    assert 410_000 <= h100.kv_cache_tokens <= 442_160
    assert "79.19 GiB × 0.9" in h100.derivation() and h100.derivation().endswith("= 440016 tokens")


def test_the_small_models_kv_is_28_kib_a_token() -> None:
    l4 = presets.get("l4-qwen2.5-1.5b")
    assert l4.model is not None and l4.model.kv_bytes_per_token == 2 * 28 * 2 * 128 * 2
    assert 560_000 <= l4.kv_cache_tokens <= 598_000


def test_how_many_of_the_pages_requests_run_at_once_is_bound_by_kv_before_max_num_seqs() -> None:
    """3096 tokens (3000 prompt + 80 output + the template's few) are 194 blocks of 16."""
    assert presets.get("lab").running_at_most(3096) == 24576 // 16 // 194 == 7
    assert presets.get("h100-llama-3.1-8b").running_at_most(3096) == 141
    assert presets.get("l4-qwen2.5-1.5b").running_at_most(3096) == 185
    assert presets.get("h100-llama-3.1-8b").running_at_most(16) == 1024, "short requests: max_num_seqs binds"


def test_a_preset_reaches_the_simulator_as_defaults_its_command_can_override() -> None:
    env = presets.get("h100-llama-3.1-8b").env()
    config = cli.engine_config_from(cli.parse_serve(["m"], env=env)[0])
    assert (config.kv_cache_tokens, config.max_num_seqs, config.max_num_batched_tokens) == (440016, 1024, 8192)
    assert (config.prefill_tokens_per_s, config.inter_token_latency) == (32000.0, 0.012)
    flagged = cli.engine_config_from(cli.parse_serve(["m", "--max-num-seqs", "64"], env=env)[0])
    assert flagged.max_num_seqs == 64, "the command's flag wins over the GPU's default, as in vLLM"
    forced = cli.engine_config_from(cli.parse_serve(["m", "--max-num-seqs", "64"],
                                                    env={**env, "VLLM_SIM_MAX_NUM_SEQS": "8"})[0])
    assert forced.max_num_seqs == 8, "the lab's override still wins over both"


def test_an_unknown_preset_names_the_choices() -> None:
    with pytest.raises(KeyError, match="no engine preset 'a100'.*lab, h100-llama-3.1-8b, l4-qwen2.5-1.5b"):
        presets.get("a100")


def test_the_data_plane_starts_a_namespaces_engines_with_its_runs_preset() -> None:
    """The run's namespace carries the preset (the harness annotates it); none, or an unknown one,
    leaves the lab's defaults."""
    from vllm_stack_e2e.lab.dataplane import DataPlane

    namespaces = {"run": {"metadata": {"annotations": {presets.ANNOTATION: "l4-qwen2.5-1.5b"}}},
                  "plain": {"metadata": {}}, "odd": {"metadata": {"annotations": {presets.ANNOTATION: "tpu"}}}}
    plane = SimpleNamespace(kube=SimpleNamespace(get=lambda _v, _k, name, _ns=None: namespaces.get(name)))
    env = DataPlane._preset_env(plane, "run")  # type: ignore[arg-type]
    assert env["VLLM_SIM_KV_CACHE_TOKENS"] == str(presets.get("l4-qwen2.5-1.5b").kv_cache_tokens)
    assert DataPlane._preset_env(plane, "plain") == {}  # type: ignore[arg-type]
    assert DataPlane._preset_env(plane, "odd") == {}  # type: ignore[arg-type]
