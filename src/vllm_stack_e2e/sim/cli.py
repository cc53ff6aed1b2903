"""Command line of the simulator: `vllm-sim serve …` (the engine, with `vllm serve`'s arguments) and
`vllm-sim gateway …` (the router). The command is not called `vllm`: installing the harness next
to vLLM must never shadow the real `vllm`.

    vllm-sim serve MODEL --host 127.0.0.1 --port 8000 [--served-model-name NAME …]
               [--max-num-seqs N] [--max-model-len N] [--max-num-batched-tokens N] [--sim-… V …]
               [any other vLLM flag]
    python -m vllm_stack_e2e.sim serve MODEL …          (the same)
    python -m vllm_stack_e2e.sim gateway --service-discovery static|k8s --routing-logic roundrobin|session
               [--host H] [--port P] [--static-backends URLS --static-models MODELS] [--session-key K]
               [--engine URL=MODEL …] [any other router flag]

vLLM flags the simulator has no use for (`--tensor-parallel-size 1`, `--enable-chunked-prefill`,
…) are accepted and logged. Simulator knobs are `--sim-…` flags, each with an environment twin
(`--sim-kv-cache-tokens` ↔ `VLLM_SIM_KV_CACHE_TOKENS`); the flag wins over the variable.
For the vLLM flags a pod command may carry, the variables `VLLM_SIM_HOST`, `VLLM_SIM_PORT`,
`VLLM_SIM_MAX_NUM_SEQS`, `VLLM_SIM_MAX_MODEL_LEN` and `VLLM_SIM_MAX_NUM_BATCHED_TOKENS` win over
the flags, so the lab can run a pod's command verbatim and still choose the bind address and size.
`VLLM_SIM_DEFAULT_MAX_NUM_SEQS` and `VLLM_SIM_DEFAULT_MAX_NUM_BATCHED_TOKENS` are the GPU's
defaults instead (an engine preset's, `sim.presets`): the command's flags win over them, as over
vLLM's own defaults.

SIGTERM: the engine does what `sim.shutdown` says — vLLM ≥ 0.18's `--shutdown-timeout N` (default 0)
unless `--sim-shutdown no-drain` / `VLLM_SIM_SHUTDOWN=no-drain` asks for vLLM ≤ 0.17's behaviour. The
gateway, like the production-stack router, stops accepting and waits without limit for its open
streams (until SIGKILL).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("vllm_stack_e2e.sim")


@dataclass(frozen=True)
class Knob:
    """A simulator setting: its `--sim-` flag, environment twin, type, default and help."""

    name: str
    kind: Callable[[str], Any]
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return f"--sim-{self.name}"

    @property
    def env(self) -> str:
        return "VLLM_SIM_" + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return "sim_" + self.name.replace("-", "_")


KNOBS = (
    Knob("kv-cache-tokens", int, 65536, "KV-cache size in tokens (whole blocks of 16), shared by running requests"),
    Knob("prefill-tokens-per-s", float, 8000.0, "prefill throughput (tokens/s): a step lasts 1/X s longer per prompt token in it"),
    Knob("inter-token-latency", float, 0.03, "seconds a step of decodes lasts: the gap between a decoding request's tokens"),
    Knob("engine-id", str, "0", "value of the `engine` label on every metric (vLLM: engine index, '0')"),
    Knob("startup-delay", float, 0.0, "seconds of simulated model load before the port opens"),
    Knob("default-max-tokens", int, 16, "max_tokens when a request gives none (there is no EOS)"),
    Knob("log-level", str, "info", "simulator log level (debug, info, warning)"),
    Knob("shutdown", str, "shutdown-timeout",
         "what SIGTERM does: shutdown-timeout (vLLM >= 0.18, honours --shutdown-timeout) or no-drain "
         "(vLLM <= 0.17: requests in flight stall until SIGKILL)"),
    Knob("shutdown-exit-delay", float, 0.0,
         "seconds a shutting-down engine (shutdown-timeout) stays up once nothing is left: listener open, "
         "/health 200, new requests answered abort (the simulator's stand-in for teardown time)"),
)
# vLLM flags whose environment twin wins over the flag (see the module docstring).
ENV_OVERRIDES = {"host": "VLLM_SIM_HOST", "port": "VLLM_SIM_PORT", "max_num_seqs": "VLLM_SIM_MAX_NUM_SEQS",
                 "max_model_len": "VLLM_SIM_MAX_MODEL_LEN",
                 "max_num_batched_tokens": "VLLM_SIM_MAX_NUM_BATCHED_TOKENS"}


# vLLM flags whose default depends on the GPU (vLLM picks them by device memory): a flag the command
# gives wins; else the environment's default (an engine preset, sim.presets); else vLLM's for a GPU
# under 70 GiB.
GPU_DEFAULTS = {"max_num_seqs": ("VLLM_SIM_DEFAULT_MAX_NUM_SEQS", 256),
                "max_num_batched_tokens": ("VLLM_SIM_DEFAULT_MAX_NUM_BATCHED_TOKENS", 2048)}


def _int_env(env: dict[str, str], var: str, default: int) -> int:
    raw = env.get(var)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"error: {var}={raw!r} is not an integer — fix or unset it") from None


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-sim serve", description="Simulated vLLM engine (OpenAI API + metrics).")
    p.add_argument("model_tag", nargs="?", help="model name or path, as for vLLM")
    p.add_argument("--model", dest="model_flag", metavar="MODEL", help="model (alternative to the positional)")
    p.add_argument("--host", default="127.0.0.1", help="bind address, loopback only (env VLLM_SIM_HOST wins)")
    p.add_argument("--port", type=int, default=8000, help="port (env VLLM_SIM_PORT wins)")
    p.add_argument("--served-model-name", nargs="+", default=None, metavar="NAME", help="names the API answers to")
    p.add_argument("--max-num-seqs", type=int, default=None, metavar="N",
                   help="running requests at most (default 256, or env VLLM_SIM_DEFAULT_MAX_NUM_SEQS; "
                        "env VLLM_SIM_MAX_NUM_SEQS wins over the flag)")
    p.add_argument("--max-model-len", type=int, default=16384, metavar="N", help="prompt + output tokens at most (env VLLM_SIM_MAX_MODEL_LEN wins)")
    p.add_argument("--max-num-batched-tokens", type=int, default=None, metavar="N",
                   help="tokens one scheduler step computes at most (default 2048, or env "
                        "VLLM_SIM_DEFAULT_MAX_NUM_BATCHED_TOKENS; env VLLM_SIM_MAX_NUM_BATCHED_TOKENS wins over the flag)")
    p.add_argument("--api-key", nargs="+", default=None, metavar="KEY",
                   help="require `Authorization: Bearer KEY` (else env VLLM_API_KEY, as vLLM)")
    p.add_argument("--shutdown-timeout", type=float, default=None, metavar="N",
                   help="vLLM >= 0.18: on SIGTERM, seconds requests in flight may finish (0, the default: "
                        "they end at once with finish_reason abort; what is left after max(N, 5) is cut)")
    for knob in KNOBS:
        metavar = {int: "N", float: "X"}.get(knob.kind, "NAME")
        p.add_argument(knob.flag, dest=knob.dest, type=knob.kind, default=None, metavar=metavar,
                       help=f"{knob.help} (env {knob.env}, default {knob.default})")
    return p


def _knob_value(knob: Knob, given: Any, env: dict[str, str]) -> Any:
    if given is not None:
        return given
    raw = env.get(knob.env)
    if raw is None or raw == "":
        return knob.default
    try:
        return knob.kind(raw)
    except ValueError:
        raise SystemExit(f"error: {knob.env}={raw!r} is not a valid {knob.kind.__name__} — fix or unset it") from None


def parse_serve(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Parse `serve` arguments; returns the options (env applied) and the ignored vLLM flags."""
    env = dict(os.environ) if env is None else env
    args, ignored = _serve_parser().parse_known_args(list(argv))
    for dest, (var, builtin) in GPU_DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, _int_env(env, var, builtin))
    for dest, var in ENV_OVERRIDES.items():
        raw = env.get(var)
        if raw:
            try:
                setattr(args, dest, raw if dest == "host" else int(raw))
            except ValueError:
                raise SystemExit(f"error: {var}={raw!r} is not an integer — fix or unset it") from None
    for knob in KNOBS:
        setattr(args, knob.dest, _knob_value(knob, getattr(args, knob.dest), env))
    from .shutdown import BEHAVIOURS

    if args.sim_shutdown not in BEHAVIOURS:
        raise SystemExit(f"error: --sim-shutdown/VLLM_SIM_SHUTDOWN={args.sim_shutdown!r}: expected "
                         f"{' or '.join(BEHAVIOURS)}")
    if args.shutdown_timeout is not None and args.shutdown_timeout < 0:
        raise SystemExit(f"error: --shutdown-timeout must be ≥ 0 seconds, got {args.shutdown_timeout:g}")
    if args.sim_shutdown_exit_delay < 0:
        raise SystemExit(f"error: --sim-shutdown-exit-delay must be ≥ 0 seconds, got {args.sim_shutdown_exit_delay:g}")
    args.model = args.model_flag or args.model_tag
    args.api_keys = tuple(args.api_key or ([env["VLLM_API_KEY"]] if env.get("VLLM_API_KEY") else []))
    if not args.model:
        raise SystemExit("error: no model given — `vllm-sim serve MODEL …` (or --model MODEL)")
    return args, ignored


def engine_config_from(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The EngineConfig the parsed `serve` options describe."""
    from .engine import EngineConfig

    return EngineConfig(
        model=args.model, served_model_names=tuple(args.served_model_name or ()),
        max_num_seqs=args.max_num_seqs, max_model_len=args.max_model_len,
        max_num_batched_tokens=args.max_num_batched_tokens,
        kv_cache_tokens=args.sim_kv_cache_tokens, prefill_tokens_per_s=args.sim_prefill_tokens_per_s,
        inter_token_latency=args.sim_inter_token_latency, engine_id=args.sim_engine_id,
        default_max_tokens=args.sim_default_max_tokens, startup_delay=args.sim_startup_delay,
    )


def shutdown_policy_from(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The ShutdownPolicy the parsed `serve` options describe (`sim.shutdown`)."""
    from .shutdown import ShutdownPolicy

    timeout = args.shutdown_timeout or 0.0
    if args.sim_shutdown == "no-drain":
        timeout = 0.0  # vLLM ≤ 0.17 has no --shutdown-timeout
    return ShutdownPolicy(behaviour=args.sim_shutdown, timeout=timeout, exit_delay=args.sim_shutdown_exit_delay)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(levelname)s %(asctime)s [sim] %(message)s")


def serve_main(argv: Sequence[str]) -> int:
    """`vllm serve`: load (simulated), then serve one engine until SIGTERM/SIGINT."""
    from .api import engine_app
    from .engine import Engine
    from .host import EngineServer, require_loopback, uvicorn_config
    from .shutdown import EngineShutdown

    args, ignored = parse_serve(argv)
    _setup_logging(args.sim_log_level)
    try:
        require_loopback(args.host)
        config = engine_config_from(args)
        engine = Engine(config)
        policy = shutdown_policy_from(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ignored:
        log.info("ignoring vLLM flags the simulator does not model: %s", " ".join(ignored))
    if args.sim_shutdown == "no-drain" and args.shutdown_timeout is not None:
        log.warning("--shutdown-timeout %g ignored: VLLM_SIM_SHUTDOWN=no-drain models vLLM ≤ 0.17, which has no "
                    "such flag (a real 0.17 refuses to start with it)", args.shutdown_timeout)
    log.info("engine %s for model %s: max_num_seqs=%d max_model_len=%d max_num_batched_tokens=%d "
             "kv_cache_tokens=%d (%d blocks of %d) prefill=%.0f tok/s itl=%.3fs", config.engine_id,
             config.model_name, config.max_num_seqs, config.max_model_len, config.max_num_batched_tokens,
             config.kv_cache_tokens, config.num_kv_blocks, config.block_size, config.prefill_tokens_per_s,
             config.inter_token_latency)
    log.info("on SIGTERM: %s", "vLLM ≤ 0.17, no drain (VLLM_SIM_SHUTDOWN=no-drain)" if policy.mode == "no-drain" else
             f"vLLM ≥ 0.18, --shutdown-timeout {policy.timeout:g} ({policy.mode})")
    if config.startup_delay > 0:
        log.info("loading model (simulated) for %.1fs before opening %s:%d", config.startup_delay, args.host, args.port)
        time.sleep(config.startup_delay)
    shutdown = EngineShutdown(engine, policy)
    server = EngineServer(uvicorn_config(engine_app(engine, args.api_keys, shutdown), args.host, args.port,
                                         log_level="warning"), shutdown, cut=_cut_process)
    log.info("serving on http://%s:%d%s", args.host, args.port, " (API key required)" if args.api_keys else "")
    server.run()
    return 0


def _cut_process(remaining: int) -> None:
    """vLLM ≥ 0.18 past max(--shutdown-timeout, 5 s): the process goes, and with it every connection
    (a stream ends without finish_reason or [DONE], a non-streamed request gets no response)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(0)


def gateway_main(argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """`gateway`: the router stand-in, with the production-stack router's flags, until SIGTERM/SIGINT.

    `--static-backends`/`--static-models` are engines with their models (static discovery); with
    `--service-discovery k8s` engines arrive at run time (`POST /admin/engines`). `--engine URL=MODEL`
    is the same as one static backend. `VLLM_SIM_HOST`/`VLLM_SIM_PORT` win over `--host`/`--port`."""
    import uvicorn

    from . import routerflags
    from .gateway import Gateway
    from .host import require_loopback, uvicorn_config

    env = dict(os.environ) if env is None else env
    rest = list(argv)
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--engine", action="append", default=[], help="engine URL=MODEL (repeatable)")
    extra.add_argument("--model", action="append", default=[], help="a model known from the start (repeatable)")
    extra.add_argument("--log-level", default="info")
    if "-h" in rest or "--help" in rest:
        routerflags.parser().print_help()
        return 0
    sim, rest = extra.parse_known_args(rest)
    _setup_logging(sim.log_level)
    try:
        settings = routerflags.parse(rest)
        host = env.get("VLLM_SIM_HOST") or settings.host
        port = int(env.get("VLLM_SIM_PORT") or settings.port)
        require_loopback(host)
        static = list(zip(settings.static_backends, settings.static_models)) if settings.service_discovery == "static" else []
        static += [(url, model) for url, _, model in (spec.partition("=") for spec in sim.engine)]
        gateway = Gateway([*sim.model, *(model for _, model in static if model)],
                          routing=settings.routing_logic, session_key=settings.session_key,
                          reroute_attempts=settings.max_instance_failover_reroute_attempts)
        for url, model in static:
            gateway.add_engine(url, model or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.ignored:
        log.info("ignoring router flags the simulator does not model: %s", " ".join(settings.ignored))
    log.info("gateway on http://%s:%d: discovery %s, routing %s, reroute attempts %d, models %s, engines %s", host,
             port, settings.service_discovery, gateway.routing, gateway.reroute_attempts, gateway.models(),
             [b.url for b in gateway.engines()])
    config = uvicorn_config(gateway.app, host, port, log_level="warning")
    # SIGTERM: stop accepting and wait without limit for the open streams, as the router does
    # (docs/termination.md, "Its own SIGTERM"); the kubelet's SIGKILL ends the wait.
    config.timeout_graceful_shutdown = None
    uvicorn.Server(config).run()
    return 0


USAGE = "usage: vllm-sim {serve MODEL,gateway} [options] (also python -m vllm_stack_e2e.sim …; -h for help)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vllm-sim` console script and `python -m vllm_stack_e2e.sim`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-v", "--version", "version"):
        from .api import SIM_VERSION

        print(SIM_VERSION)
        return 0
    command, rest = args[0], args[1:]
    if command == "serve":
        return serve_main(rest)
    if command == "gateway":
        return gateway_main(rest)
    print(f"error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
