"""A stand-in for vLLM engines and the production-stack router, for the lab and the tests.

- `sim.engine`: the scheduler (max_num_seqs, KV budget, FIFO, prefill, decode, preemption) and
  vLLM V1's metrics; `sim.api`: its OpenAI HTTP API; `sim.tokens`: the token-counting rule.
- `sim.shutdown`: what the engine does on SIGTERM (vLLM ≥ 0.18's `--shutdown-timeout`, or ≤ 0.17's
  no drain; docs/termination.md).
- `sim.gateway`: the router stand-in (routing, 503 at zero engines, the router's proxying on
  failures, the router's metrics and the simulator's outcome counter).
- `sim.host`: serve an app in-process, or get the argv to run one as a subprocess.
- `sim.cli`: `vllm serve …` and `python -m vllm_stack_e2e.sim {serve,gateway} …`.

Kept import-free so `python -m vllm_stack_e2e.sim` starts fast.
"""
