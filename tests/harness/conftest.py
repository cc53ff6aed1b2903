"""The harness's own tests on a cluster backend (the lab by default): the lab itself, an
interrupted run, preflight on too few GPUs, break overlays. They run in `make test` (and CI),
not in `make e2e`, which is the tutorial only. Fixtures come from vllm_stack_e2e.plugin."""
