"""Where the harness keeps what it builds and downloads: outside the repo, keyed by version."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of the harness's cache (`VLLM_STACK_E2E_CACHE`, default ~/.cache/vllm-stack-e2e)."""
    root = os.environ.get("VLLM_STACK_E2E_CACHE") or "~/.cache/vllm-stack-e2e"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def tools_dir(name: str, version: str) -> Path:
    """Folder for one versioned tool, e.g. tools/helm-4.1.4/."""
    path = cache_dir() / "tools" / f"{name}-{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def lab_state_dir() -> Path:
    """Working state of running labs (kubeconfigs, logs, PIDs): state/."""
    path = cache_dir() / "state"
    path.mkdir(parents=True, exist_ok=True)
    return path
