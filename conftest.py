"""Loads the harness's pytest plugin; everything else lives in vllm_stack_e2e.plugin."""

pytest_plugins = ("vllm_stack_e2e.plugin",)
