"""Drift check: how a published "Autoscaling with KEDA" page differs from the edition pinned here.

    python -m vllm_stack_e2e.tutorial_diff PAGE.rst|URL [--edition NAME]
    make tutorial-diff TUTORIAL=PAGE.rst|URL [EDITION=NAME]

It reads the page's code blocks under their headings: each YAML block is matched by what it is
(the step-2 values, the step-4 values with the keda block, the scale-to-zero, HPA-behavior and
fallback blocks) and compared key by key with the edition's pinned values files; each shell
command is matched by the role it plays (install KEDA, port-forward Prometheus, upgrade the
release …) and compared with the edition's pinned command. The edition is guessed from the page
when not given. Exit 0: no drift; 1: drift (printed, one line each); 2: the page could not be read.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import editions
from .editions import Edition
from .errors import ConfigError

_DIRECTIVE = re.compile(r"^\.\. code-block::\s*(\w+)\s*$|^\.\. code::\s*(\w+)\s*$")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
# Which pinned scenario file a keda-only block is compared with, by what it sets.
SCENARIO_FILES = {"scale-to-zero": "scenario-scale-to-zero.yaml", "hpa-behavior": "scenario-hpa-behavior.yaml",
                  "fallback": "scenario-fallback.yaml"}
# The role a page command plays, by its shape (the first that matches wins).
ROLES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((role, re.compile(pattern)) for role, pattern in (
    ("keda-namespace", r"^kubectl create namespace keda\b"),
    ("keda-install", r"^helm (upgrade --)?install keda\b"),
    ("keda-uninstall", r"^helm uninstall keda\b"),
    ("keda-namespace-delete", r"^kubectl delete namespace keda\b"),
    ("observability-install", r"^(bash|sh|\./)\s*install\.sh\b"),
    ("observability-uninstall", r"^(bash|sh|\./)\s*uninstall\.sh\b"),
    ("vllm-install", r"^helm (upgrade --install|install) vllm\b"),
    ("vllm-upgrade", r"^helm upgrade vllm\b"),
    ("prometheus-port-forward", r"^kubectl port-forward svc/\S*prometheus\S*"),
    ("router-port-forward", r"^kubectl port-forward svc/\S*router\S*"),
    ("load-generator", r"load-generator|load_generator"),
))
# Commands a page shows only to look around; they set nothing up, so they never count as drift.
_LOOKS = re.compile(r"^(kubectl (get|describe|logs|wait)|curl|cd|helm repo (add|update)|watch)\b")


@dataclass(frozen=True)
class Block:
    """One code block of the page, with the heading it sits under."""

    language: str
    heading: str
    text: str


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_ATX = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def is_markdown(page: str) -> bool:
    """A Markdown page (the repository's tutorials/*.md) rather than reStructuredText (the docs
    site's .rst): it fences its code and has no code-block directive."""
    return bool(re.search(r"^\s*(```|~~~)", page, re.M)) and not re.search(r"^\s*\.\. code(-block)?::", page, re.M)


def read_blocks(page: str) -> list[Block]:
    """The code blocks of a page, in order, each with its nearest heading: fenced blocks of a
    Markdown page, code-block directives of a reStructuredText one."""
    return read_markdown_blocks(page) if is_markdown(page) else read_rst_blocks(page)


def read_markdown_blocks(page: str) -> list[Block]:
    """Fenced code blocks (``` or ~~~, the info string's first word as the language) under their
    nearest ATX (`## …`) or setext heading."""
    lines = page.splitlines()
    blocks: list[Block] = []
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        fence = _FENCE.match(line)
        if fence:
            marker, language = fence.group(2), (fence.group(3) or "").lower()
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                body.append(lines[index])
                index += 1
            blocks.append(Block(language, heading, _dedent(body)))
            index += 1
            continue
        atx = _ATX.match(line)
        if atx:
            heading = atx.group(1)
        elif line.strip() and re.match(r"^(=+|-+)\s*$", nxt) and not line.lstrip().startswith(("-", "*", "|")):
            heading = line.strip()
            index += 1
        index += 1
    return blocks


def read_rst_blocks(page: str) -> list[Block]:
    """The code blocks of a reStructuredText page, in order, each with its nearest heading."""
    lines = page.splitlines()
    blocks: list[Block] = []
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()) - 1:
            heading = line.strip()
            index += 2
            continue
        found = _DIRECTIVE.match(line.strip())
        if not found:
            index += 1
            continue
        language = (found.group(1) or found.group(2)).lower()
        index += 1
        while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith(":")):
            index += 1  # the blank line and any :options: of the directive
        body: list[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith((" ", "\t"))):
            body.append(lines[index])
            index += 1
        blocks.append(Block(language, heading, _dedent(body)))
    return blocks


def _dedent(body: list[str]) -> str:
    indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in body).strip("\n") + "\n"


def commands(blocks: Sequence[Block]) -> list[tuple[str, str]]:
    """(heading, command) for every shell command of the page, continuation lines joined."""
    found: list[tuple[str, str]] = []
    for block in blocks:
        if block.language not in ("bash", "sh", "shell", "console"):
            continue
        for command in _logical_lines(block.text.replace("\\\n", " ")):
            command = " ".join(command.strip().removeprefix("$ ").split())
            if command and not command.startswith("#"):
                found.append((block.heading, command))
    return found


def _logical_lines(text: str) -> list[str]:
    """Lines joined while a single- or double-quoted string is open (a `curl -d '{…}'` body)."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        pending = f"{pending} {line}" if pending else line
        if pending.count("'") % 2 == 0 and pending.replace('\\"', "").count('"') % 2 == 0:
            out.append(pending)
            pending = ""
    if pending:
        out.append(pending)
    return out


def kind_of(doc: Any) -> str | None:
    """What a YAML block of the page is: the step-1 monitoring snippet, step2, step4, or a
    scenario's keda block."""
    if not isinstance(doc, Mapping):
        return None
    if "servingEngineSpec" in doc and not (doc.get("servingEngineSpec") or {}).get("modelSpec"):
        return "step1"
    if "servingEngineSpec" in doc:
        specs = (doc.get("servingEngineSpec") or {}).get("modelSpec") or [{}]
        keda = specs[0].get("keda") if isinstance(specs[0], Mapping) else None
        return "step4" if isinstance(keda, Mapping) and keda.get("enabled") else "step2"
    keda = doc.get("keda")
    if not isinstance(keda, Mapping):
        return None
    if keda.get("minReplicaCount") == 0:
        return "scale-to-zero"
    if "advanced" in keda:
        return "hpa-behavior"
    if "fallback" in keda:
        return "fallback"
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`a.b[0].c` → leaf value, for comparing two values trees key by key."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def compare(what: str, page: Any, pinned: Any) -> Iterator[str]:
    """One line per key the page adds, drops or changes against the pinned tree."""
    got, want = flatten(page), flatten(pinned)
    for key in sorted(set(got) | set(want)):
        if key not in want:
            yield f"{what}: the page adds {key} = {got[key]!r}"
        elif key not in got:
            yield f"{what}: the page drops {key} (pinned {want[key]!r})"
        elif str(got[key]) != str(want[key]):
            yield f"{what}: {key} is {got[key]!r} on the page, {want[key]!r} pinned"


def _pinned_keda(path: Path) -> Any:
    data = yaml.safe_load(path.read_text()) or {}
    return {"keda": data["servingEngineSpec"]["modelSpec"][0]["keda"]}


def guess(page: str) -> tuple[Edition, str]:
    """The edition a page is, from what step 1 does there, asking each edition of the registry in
    order (editions.Edition.recognised_by): run observability/install.sh (the first edition — whose
    script installs kube-prometheus-stack too, so the name alone decides nothing), or enable the
    chart's kube-prometheus-stack subchart in its values."""
    blocks = read_blocks(page)
    roles = {role for _heading, command in commands(blocks) for role, pattern in ROLES if pattern.search(command)}
    yaml_blocks = [b.text for b in blocks if b.language in ("yaml", "yml")]
    for edition in editions.EDITIONS.values():
        where, what = edition.recognised_by or ("", "")
        if (where == "command" and what in roles) or (
                where == "yaml" and any(re.search(what, text, re.M) for text in yaml_blocks)):
            shown = f"gives the {what} command" if where == "command" else f"has a YAML block matching {what!r}"
            return edition, f"the page {shown}, as {edition.name} does"
    return editions.EDITIONS[editions.DEFAULT], f"the page matches no edition's step 1: {editions.DEFAULT}, the first"


def drift(page: str, edition: Edition, root: Path = editions.VALUES_ROOT) -> list[str]:
    """Every way `page` differs from the pinned `edition`, one line each (empty: none)."""
    blocks = read_blocks(page)
    problems: list[str] = []
    seen: set[str] = set()
    for block in blocks:
        if block.language not in ("yaml", "yml"):
            continue
        try:
            doc = yaml.safe_load(block.text)
        except yaml.YAMLError as exc:
            problems.append(f"YAML block under {block.heading!r} does not parse: {' '.join(str(exc).split())}")
            continue
        kind = kind_of(doc)
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        if kind == "step1":
            # A snippet of keys to add: each must be in the pinned step-2 values, with the same value.
            pinned = flatten(yaml.safe_load(edition.values_file("tutorial-step2.yaml", root).read_text()))
            for key, value in flatten(doc).items():
                if str(pinned.get(key)) != str(value):
                    problems.append(f"step1 snippet ({block.heading}): {key} is {value!r} on the page, "
                                    f"{pinned.get(key, 'absent')!r} in the pinned step-2 values")
        elif kind in ("step2", "step4"):
            pinned = yaml.safe_load(edition.values_file(f"tutorial-{kind}.yaml", root).read_text())
            problems += compare(f"{kind} values ({block.heading})", doc, pinned)
        else:
            problems += compare(f"{kind} block ({block.heading})", doc,
                                _pinned_keda(edition.values_file(SCENARIO_FILES[kind], root)))
    for kind in ("step4", *SCENARIO_FILES):
        if kind not in seen:
            problems.append(f"{kind}: the page has no such YAML block (pinned {edition.name} has one)")
    problems += _command_drift(commands(blocks), edition)
    return problems


def _command_drift(page_commands: list[tuple[str, str]], edition: Edition) -> list[str]:
    problems: list[str] = []
    played: dict[str, list[str]] = {}
    for heading, command in page_commands:
        role = next((name for name, pattern in ROLES if pattern.search(command)), None)
        if role is None:
            if not _LOOKS.match(command):
                problems.append(f"command under {heading!r} is new: `{command}`")
            continue
        played.setdefault(role, []).append(command)
    for role, pinned in edition.commands.items():
        given = played.pop(role, [])
        if not given:
            problems.append(f"{role}: the page no longer gives `{pinned}`")
        elif pinned not in given:
            problems.append(f"{role}: the page gives `{given[0]}`, pinned `{pinned}`")
    for role, given in played.items():
        problems.append(f"{role}: the page gives `{given[0]}`, which {edition.name} does not have")
    return problems


def read_page(source: str) -> str:
    """A page from a path or an http(s) URL."""
    if re.match(r"https?://", source):
        import httpx

        try:
            response = httpx.get(source, timeout=30, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise OSError(f"cannot fetch {source}: {exc}") from None
        return response.text
    return Path(source).read_text()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_stack_e2e.tutorial_diff",
                                     description="How a published autoscaling-keda.rst differs from a pinned edition.")
    parser.add_argument("page", help="the page: the docs site's .rst or the repository's tutorials/*.md, a path or an "
                                     "http(s) URL")
    parser.add_argument("--edition", default=None, help=f"one of {', '.join(editions.EDITIONS)} (default: guessed)")
    args = parser.parse_args(argv)
    try:
        page = read_page(args.page)
        edition, why = (editions.get(args.edition), "asked for") if args.edition else guess(page)
    except (OSError, ConfigError) as exc:
        print(f"error: {exc} — give a readable .rst or .md path or URL (TUTORIAL=…)", file=sys.stderr)
        return 2
    problems = drift(page, edition)
    print(f"{args.page} against edition {edition.name} ({why}): "
          + (f"{len(problems)} difference(s)" if problems else "no drift"))
    for line in problems:
        print(f"- {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
