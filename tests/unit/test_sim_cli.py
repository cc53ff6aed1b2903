"""`vllm serve` / `gateway` argument handling: vLLM flags accepted, simulator knobs and their
environment twins, loopback only, and the argv helpers the lab uses."""

import sys

import pytest

from vllm_stack_e2e.sim import cli
from vllm_stack_e2e.sim.host import engine_argv, gateway_argv, require_loopback


def test_unknown_vllm_flags_are_accepted_and_reported():
    args, ignored = cli.parse_serve(
        ["meta-llama/Llama-3.1-8B-Instruct", "--host", "127.0.0.1", "--port", "8000", "--tensor-parallel-size", "1",
         "--gpu-memory-utilization", "0.9", "--enable-chunked-prefill", "--max-num-seqs", "3"], env={})
    assert args.model == "meta-llama/Llama-3.1-8B-Instruct" and args.max_num_seqs == 3 and args.port == 8000
    assert ignored == ["--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9", "--enable-chunked-prefill"]


def test_sim_knobs_come_from_flags_then_env_then_defaults():
    env = {"VLLM_SIM_KV_CACHE_TOKENS": "4096", "VLLM_SIM_INTER_TOKEN_LATENCY": "0.5"}
    args, _ = cli.parse_serve(["m", "--sim-inter-token-latency", "0.25"], env=env)
    config = cli.engine_config_from(args)
    assert config.kv_cache_tokens == 4096  # env
    assert config.inter_token_latency == 0.25  # flag beats env
    assert config.prefill_tokens_per_s == 8000.0 and config.engine_id == "0"  # defaults


def test_env_wins_over_the_vllm_flags_a_pod_command_carries():
    env = {"VLLM_SIM_HOST": "127.0.90.7", "VLLM_SIM_MAX_NUM_SEQS": "2"}
    args, _ = cli.parse_serve(["m", "--host", "0.0.0.0", "--max-num-seqs", "256"], env=env)
    assert (args.host, args.max_num_seqs) == ("127.0.90.7", 2)


def test_max_num_batched_tokens_is_vllms_flag_with_an_env_twin_that_wins():
    """`--max-num-batched-tokens` as `vllm serve` spells it; default 2048 (vLLM's for GPUs under
    70 GiB); VLLM_SIM_MAX_NUM_BATCHED_TOKENS wins over the flag, as the other size twins do."""
    assert cli.engine_config_from(cli.parse_serve(["m"], env={})[0]).max_num_batched_tokens == 2048
    args, ignored = cli.parse_serve(["m", "--max-num-batched-tokens", "8192"], env={})
    assert cli.engine_config_from(args).max_num_batched_tokens == 8192 and not ignored
    args, _ = cli.parse_serve(["m", "--max-num-batched-tokens", "8192"],
                              env={"VLLM_SIM_MAX_NUM_BATCHED_TOKENS": "512"})
    assert args.max_num_batched_tokens == 512
    with pytest.raises(SystemExit, match="VLLM_SIM_MAX_NUM_BATCHED_TOKENS"):
        cli.parse_serve(["m"], env={"VLLM_SIM_MAX_NUM_BATCHED_TOKENS": "lots"})


def test_a_budget_below_max_num_seqs_is_refused_as_vllm_does(capsys):
    assert cli.serve_main(["m", "--max-num-seqs", "256", "--max-num-batched-tokens", "128"]) == 2
    assert "max_num_batched_tokens (128) must be greater than or equal to max_num_seqs (256)" in capsys.readouterr().err


def test_served_model_names_and_model_flag():
    args, _ = cli.parse_serve(["--model", "org/m", "--served-model-name", "a", "b"], env={})
    config = cli.engine_config_from(args)
    assert config.model_name == "a" and config.names == ("a", "b") and config.model == "org/m"


def test_bad_input_is_refused_with_a_message(capsys):
    with pytest.raises(SystemExit, match="no model"):
        cli.parse_serve([], env={})
    with pytest.raises(SystemExit, match="VLLM_SIM_KV_CACHE_TOKENS"):
        cli.parse_serve(["m"], env={"VLLM_SIM_KV_CACHE_TOKENS": "lots"})
    assert cli.serve_main(["m", "--host", "0.0.0.0"]) == 2
    assert "loopback only" in capsys.readouterr().err
    assert cli.serve_main(["m", "--max-model-len", "100000"]) == 2
    assert "cannot hold one request" in capsys.readouterr().err
    assert cli.main(["frobnicate"]) == 2


def test_argv_helpers_build_what_the_cli_parses():
    argv = engine_argv("llama3", "127.0.90.3", 8000, max_num_seqs=2, sim={"kv-cache-tokens": 4096})
    assert argv[:4] == [sys.executable, "-m", "vllm_stack_e2e.sim", "serve"]
    args, ignored = cli.parse_serve(argv[4:], env={})
    assert (args.model, args.host, args.port, args.max_num_seqs, args.sim_kv_cache_tokens) == \
        ("llama3", "127.0.90.3", 8000, 2, 4096) and not ignored
    gw = gateway_argv("127.0.0.1", 9000, ["llama3"], engines=["http://127.0.0.1:8000"])
    assert gw[3:] == ["gateway", "--host", "127.0.0.1", "--port", "9000", "--service-discovery", "static",
                      "--routing-logic", "roundrobin", "--model", "llama3", "--static-backends", "http://127.0.0.1:8000",
                      "--static-models", "llama3"]


def test_an_api_key_comes_from_the_flag_or_vllm_api_key():
    args, _ = cli.parse_serve(["m", "--api-key", "a"], env={"VLLM_API_KEY": "b"})
    assert args.api_keys == ("a",), "the flag wins, as in vLLM"
    args, _ = cli.parse_serve(["m"], env={"VLLM_API_KEY": "b"})
    assert args.api_keys == ("b",)
    args, _ = cli.parse_serve(["m"], env={"VLLM_API_KEY": ""})
    assert args.api_keys == ()


@pytest.mark.parametrize(("argv", "complaint"), [
    (["--routing-logic", "roundrobin"], "--service-discovery must be provided"),
    (["--service-discovery", "k8s", "--routing-logic", "session"], "Session key"),
    (["--service-discovery", "k8s", "--routing-logic", "roundrobin", "--host", "0.0.0.0"], "loopback only"),
])
def test_the_gateway_refuses_what_the_router_refuses(argv, complaint, capsys):
    assert cli.gateway_main(argv, env={}) == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com", "::1"])
def test_only_loopback_addresses_are_allowed(host):
    with pytest.raises(ValueError, match="loopback only"):
        require_loopback(host)
    require_loopback("127.0.90.1")
