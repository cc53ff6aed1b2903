"""Secrets never reach a log, a report or an artifact: one place that knows what a secret looks
like, in a values tree or manifest (by key) and in free text (tokens, key material)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Keys (anywhere in a `--set` path or a values tree) whose values are treated as secrets.
SECRET_KEY = re.compile(r"token|secret|passw(or)?d|api[-_]?key|credential", re.IGNORECASE)
REDACTED = "***"


def is_secret_key(key: str) -> bool:
    """Whether a values key or `--set` path names a secret (token, secret, password, API key)."""
    return bool(SECRET_KEY.search(key))


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the values of secret-named flags (`--api-key K`, `--hf-token=K`) masked,
    for logging it. Only flags are looked at, so a path or a model name is never taken for one."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("--"):
            out.append(REDACTED)
            continue
        flag, eq, _ = arg.partition("=")
        secret = arg.startswith("--") and is_secret_key(flag)
        out.append(f"{flag}={REDACTED}" if secret and eq else arg)
        hide_next = secret and not eq
    return out


def redact_tree(obj: Any) -> Any:
    """A copy of a values tree or manifest with secrets replaced by `***`: scalars under secret-like
    keys, env entries whose name is secret-like, and the data of Secret objects."""
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        is_secret_object = obj.get("kind") == "Secret"
        env_secret = isinstance(obj.get("name"), str) and is_secret_key(obj["name"]) and "value" in obj
        for key, value in obj.items():
            if is_secret_object and key in ("data", "stringData") and isinstance(value, Mapping):
                out[key] = {k: REDACTED for k in value}
            elif env_secret and key == "value":
                out[key] = REDACTED
            elif isinstance(key, str) and is_secret_key(key) and _is_scalar(value) and value not in ("", None):
                out[key] = REDACTED
            else:
                out[key] = redact_tree(value)
        return out
    if isinstance(obj, list):
        return [redact_tree(item) for item in obj]
    return obj


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list))


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), "hf_***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)\b([\w-]*(?:token|password|passwd|secret|api[_-]?key|client-key-data|"
                r"client-certificate-data|certificate-authority-data))(['\"]?\s*[:=]\s*['\"]?)"
                r"([^\s'\",}]+)"), r"\1\2***"),
)


def redact_text(text: str) -> str:
    """`text` with tokens, passwords and kubeconfig key material replaced by ***."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
