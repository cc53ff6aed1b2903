"""The helm binary, run through `sh`: install/upgrade/uninstall, template, lint, and the read-only
queries the harness and its reports need. The one module that runs helm.

Secrets never reach a log line, an exception or the process list: any value whose key looks like
a token, secret, password or API key is handed to helm with `--set-file` from a private temporary
file, shown as `key=***`, and scrubbed from helm's own output before it is quoted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sh
import yaml

from . import defects, tools, waits
from .errors import CommandError, ProvisionError
from .redaction import REDACTED, is_secret_key, redact_tree

log = logging.getLogger(__name__)


#: Where the lab's stand-in for vllm/vllm-stack lives (docs/chart-contract.md is its contract).
STANDIN_CHART = Path(__file__).parent / "charts" / "vllm-stack-standin"
STANDIN_ANNOTATION = "vllm-stack-e2e/stand-in"

# Seconds added to helm's own --timeout before the process itself is killed, so helm gets to
# report what it was waiting for.
_KILL_MARGIN = 60
_QUICK_TIMEOUT = 120.0

# stderr pattern -> what the user should do next. First match wins.
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), hint)
    for pattern, hint in (
        (r"keda[/.]triggers\S*\s*:\s*(got array, want object|Invalid type\. Expected: object, given: array)",
         defects.get(1).reason()),
        (r"don't meet the specifications of the schema",
         "a value has the wrong type for the chart's values.schema.json: fix the key named above"),
        (r"Kubernetes cluster unreachable|connection refused|no such host|dial tcp",
         "check the kubeconfig/context (`kubectl cluster-info`), or bring the lab up with `make lab-up`"),
        (r"no matches for kind \"ScaledObject\"|ensure CRDs are installed",
         "install KEDA first (tutorial step 3), so its CRDs exist"),
        (r"another operation \(install/upgrade/rollback\) is in progress",
         "a previous helm run was interrupted: `helm rollback` or `helm uninstall` the release"),
        (r"has no deployed releases|release: not found|not found$",
         "install the release first (`helm upgrade --install`), or check the release name and namespace"),
        (r"cannot re-use a name that is still in use",
         "upgrade the existing release, or uninstall it first"),
        (r"execution error at|template: ",
         "a chart template failed on these values: fix the value named in the message"),
        (r"context deadline exceeded|timed out waiting|timeout",
         "the release did not become ready in time: look at `kubectl get events` and the pods, or raise the timeout"),
        (r"repo .* not found|no repo named|failed to fetch|could not find",
         "add the chart repository (`helm repo add`) or check the chart name and version"),
        (r"YAML parse error|error converting YAML|yaml:",
         "a values file or rendered manifest is not valid YAML: fix the file and line in the message"),
        (r"forbidden|Unauthorized",
         "the kube identity lacks permission for this release's objects: use a context with the needed RBAC"),
    )
)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document manifest."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    except yaml.YAMLError as exc:
        raise CommandError(f"helm printed a manifest that is not valid YAML ({_one_line(str(exc))}) — "
                           "render it with `helm template` and fix the template") from None


def is_stand_in(chart: Mapping[str, Any]) -> bool:
    """Whether a chart is the lab's stand-in rather than a real chart: `helm show chart` metadata
    (its annotation) or a run record's chart (its `stand_in` flag), or a name ending `-standin`."""
    annotations = chart.get("annotations") or {}
    return (str(annotations.get(STANDIN_ANNOTATION, "")).lower() == "true" or bool(chart.get("stand_in"))
            or str(chart.get("name") or "").endswith("-standin"))


Sets = Mapping[str, Any] | Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class LintMessage:
    """One finding of `helm lint`; `defect` is the upstream defect's number (vllm_stack_e2e.defects) when recognised."""

    severity: str  # "error", "warning" or "info"
    path: str
    message: str
    defect: int | None = None
    explanation: str = ""
    fix: str = ""

    def __str__(self) -> str:
        text = f"[{self.severity.upper()}] {self.path}: {self.message}"
        if self.defect is not None:
            text += f" — known defect {self.defect}: {self.explanation}; {self.fix}"
        return text


@dataclass(frozen=True)
class LintResult:
    """`helm lint` as data: its findings by severity, its exit code and its raw output."""

    exit_code: int
    messages: tuple[LintMessage, ...]
    raw: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.errors

    @property
    def errors(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == "error"]

    @property
    def warnings(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == "warning"]

    @property
    def infos(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == "info"]

    @property
    def defects(self) -> list[int]:
        """Upstream defect numbers recognised among the findings, in order, once each."""
        return list(dict.fromkeys(m.defect for m in self.messages if m.defect is not None))

    @property
    def only_known_defects(self) -> bool:
        """Lint failed, but only on recognised chart defects (so installing still works)."""
        return bool(self.errors) and all(m.defect is not None for m in self.errors)


_LINT_LINE = re.compile(r"^\[(ERROR|WARNING|INFO)\]\s+(?:(?P<path>[^:\s][^:]*?):\s+)?(?P<msg>.*)$")
# Helm ≥3.18 (jsonschema v6): "- at '/servingEngineSpec/modelSpec/0/keda/triggers': got array, want object"
# Helm <3.18 (gojsonschema):  "- servingEngineSpec.modelSpec.0.keda.triggers: Invalid type. Expected: object, given: array"
_TRIGGERS_AS_OBJECT = re.compile(
    r"keda[/.]triggers\S*\s*(?:'\s*)?:\s*(got array, want object|Invalid type\. Expected: object, given: array)",
    re.IGNORECASE,
)


def parse_lint(output: str, exit_code: int) -> LintResult:
    """Turn `helm lint` output into a LintResult, labelling known chart defects."""
    messages: list[LintMessage] = []
    current: list[str] | None = None

    def flush() -> None:
        if current is None:
            return
        severity, path, text = current[0], current[1], "\n".join(current[2:]).strip()
        messages.append(_label_defect(LintMessage(severity=severity, path=path, message=text)))

    for line in output.splitlines():
        match = _LINT_LINE.match(line.strip())
        if match:
            flush()
            current = [match.group(1).lower(), match.group("path") or "", match.group("msg")]
        elif current is not None and line.strip() and not line.startswith(("==>", "Error:")):
            current.append(line.strip())
        elif not line.strip() or line.startswith(("==>", "Error:")):
            flush()
            current = None
    flush()
    return LintResult(exit_code=exit_code, messages=tuple(messages), raw=output)


def _label_defect(message: LintMessage) -> LintMessage:
    if message.severity == "error" and _TRIGGERS_AS_OBJECT.search(message.message):
        return LintMessage(
            severity=message.severity,
            path=message.path,
            message=message.message,
            defect=1,
            explanation=defects.get(1).explanation,
            fix=defects.get(1).fix,
        )
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _last_line(text: str) -> str:
    """The line that says what went wrong: helm's last `Error:` line (with the lines that detail
    it, when it ends in a colon), else its last line. helm follows some errors with advice such as
    "Use --debug flag …", which names nothing."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    if not starts:
        return lines[-1] if lines else ""
    parts = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1:]:
        if not parts[-1].endswith(":") and not line.startswith("- "):
            break
        parts.append(line)
    detail = " ".join(parts)
    return detail if len(detail) <= 400 else detail[:399] + "…"


def _escape_key(part: str) -> str:
    return re.sub(r"([\\.,=\[\]])", r"\\\1", part)


class Helm:
    """The helm binary for one cluster (kubeconfig, context) and default namespace."""

    def __init__(
        self,
        binary: str | os.PathLike[str] | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        namespace: str | None = None,
        *,
        kube_context: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._binary = Path(binary) if binary else None
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.namespace = namespace
        self.kube_context = kube_context
        # helm reads its repository config and caches from the environment (HELM_*).
        self.env = {**os.environ, **(env or {})}

    # -- public API -------------------------------------------------------------------------

    @property
    def binary(self) -> Path:
        """Path of the helm binary (resolved on first use: $HELM, PATH, or the PyPI wheel)."""
        if self._binary is None:
            self._binary = tools.helm()
        return self._binary

    def version(self) -> str:
        """helm's version, e.g. 'v4.1.4'."""
        return self._run(["version", "--template", "{{.Version}}"]).stdout.strip()

    def install(
        self,
        release: str,
        chart: str | os.PathLike[str],
        *,
        files: Sequence[str | os.PathLike[str]] = (),
        sets: Sets | None = None,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float = 300,
        create_namespace: bool = False,
        version: str | None = None,
        skip_schema_validation: bool = False,
    ) -> dict[str, Any]:
        """`helm upgrade --install`: install the release or upgrade it in place; returns the release."""
        return self.upgrade(
            release, chart, files=files, sets=sets, namespace=namespace, wait=wait, timeout=timeout,
            create_namespace=create_namespace, version=version,
            skip_schema_validation=skip_schema_validation, install=True,
        )

    def upgrade(
        self,
        release: str,
        chart: str | os.PathLike[str],
        *,
        files: Sequence[str | os.PathLike[str]] = (),
        sets: Sets | None = None,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float = 300,
        create_namespace: bool = False,
        version: str | None = None,
        skip_schema_validation: bool = False,
        install: bool = False,
    ) -> dict[str, Any]:
        """`helm upgrade` of an existing release (as the tutorial's step 4 does); with install=True,
        `upgrade --install`. Returns the release as helm reports it (`-o json`)."""
        args = ["upgrade", release, str(chart), "--output", "json", "--timeout", f"{int(timeout)}s"]
        if install:
            args.insert(1, "--install")
            if create_namespace:
                args.append("--create-namespace")
        if wait:
            # helm 3: boolean flag; helm 4: bare --wait means the "watcher" strategy.
            args.append("--wait")
        if version:
            args += ["--version", version]
        if skip_schema_validation:
            args.append("--skip-schema-validation")
        with _ValueArgs(files, sets) as values:
            result = self._run(
                args + values.args + self._cluster_args(namespace),
                timeout=timeout + _KILL_MARGIN, secrets=values.secrets,
            )
        return _json_or_raw(result.stdout)

    def uninstall(
        self,
        release: str,
        *,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float = 300,
        ignore_not_found: bool = True,
    ) -> bool:
        """`helm uninstall`; returns False when the release did not exist (and ignore_not_found)."""
        args = ["uninstall", release, "--timeout", f"{int(timeout)}s"]
        if wait:
            args.append("--wait")
        try:
            self._run(args + self._cluster_args(namespace), timeout=timeout + _KILL_MARGIN)
        except HelmError as exc:
            if ignore_not_found and exc.not_found:
                return False
            raise
        return True

    def template(
        self,
        chart: str | os.PathLike[str],
        *,
        release: str = "vllm",
        files: Sequence[str | os.PathLike[str]] = (),
        sets: Sets | None = None,
        namespace: str | None = None,
        version: str | None = None,
        show_only: Sequence[str] = (),
        api_versions: Sequence[str] = (),
        kube_version: str | None = None,
        skip_schema_validation: bool = False,
    ) -> list[dict[str, Any]]:
        """`helm template`: the rendered objects, parsed. Needs no cluster."""
        args = ["template", release, str(chart), "--namespace", namespace or self.namespace or "default"]
        if version:
            args += ["--version", version]
        for item in show_only:
            args += ["--show-only", item]
        for api in api_versions:
            args += ["--api-versions", api]
        if kube_version:
            args += ["--kube-version", kube_version]
        if skip_schema_validation:
            args.append("--skip-schema-validation")
        with _ValueArgs(files, sets) as values:
            result = self._run(args + values.args, secrets=values.secrets)
        return parse_documents(result.stdout)

    def lint(
        self,
        chart: str | os.PathLike[str],
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        sets: Sets | None = None,
        strict: bool = False,
        skip_schema_validation: bool = False,
    ) -> LintResult:
        """`helm lint` of a local chart directory with these values, as structured findings.
        A failing lint is a result, not an exception; known chart defects are labelled."""
        args = ["lint", str(chart)]
        if strict:
            args.append("--strict")
        if skip_schema_validation:
            args.append("--skip-schema-validation")
        with _ValueArgs(files, sets) as values:
            result = self._run(args + values.args, secrets=values.secrets, ok_codes=(0, 1))
        return parse_lint(result.stdout + "\n" + result.stderr, result.exit_code)

    def get_values(
        self, release: str, *, namespace: str | None = None, all_values: bool = False, redacted: bool = True
    ) -> dict[str, Any]:
        """`helm get values` of a release (user-supplied only unless all_values); secrets masked
        unless redacted=False."""
        args = ["get", "values", release, "--output", "json"]
        if all_values:
            args.append("--all")
        values = _json_or_raw(self._run(args + self._cluster_args(namespace)).stdout) or {}
        return redact_tree(values) if redacted else values

    def get_manifest(self, release: str, *, namespace: str | None = None, redacted: bool = True) -> str:
        """`helm get manifest` of a release as YAML text; Secret data and secret env values masked
        unless redacted=False."""
        text = self._run(["get", "manifest", release] + self._cluster_args(namespace)).stdout
        if not redacted:
            return text
        return yaml.safe_dump_all(redact_tree(parse_documents(text)), sort_keys=False)

    def list_releases(self, *, namespace: str | None = None, all_namespaces: bool = False) -> list[dict[str, Any]]:
        """`helm list` of a namespace or of all of them, in every state (a failed or pending
        release is still there to clean up). State flags, not --all, which helm 4 removed."""
        args = ["list", "--output", "json", "--deployed", "--failed", "--pending", "--superseded", "--uninstalling"]
        if all_namespaces:
            args.append("--all-namespaces")
        result = self._run(args + self._cluster_args(None if all_namespaces else namespace))
        return _json_or_raw(result.stdout) or []

    def status(self, release: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        """`helm status` of a release, or None when there is no such release."""
        try:
            result = self._run(["status", release, "--output", "json"] + self._cluster_args(namespace))
        except HelmError as exc:
            if exc.not_found:
                return None
            raise
        return _json_or_raw(result.stdout)

    def repo_add(self, name: str, url: str, *, update: bool = True) -> None:
        """`helm repo add --force-update` (idempotent), then `helm repo update` of that repo."""
        self._run(["repo", "add", name, url, "--force-update"])
        if update:
            self._run(["repo", "update", name])

    def pull(self, chart: str, *, version: str | None = None, dest: str | os.PathLike[str]) -> Path:
        """`helm pull --untar` a chart into dest; returns the chart directory (for lint)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        args = ["pull", chart, "--untar", "--untardir", str(dest)]
        if version:
            args += ["--version", version]
        self._run(args, timeout=300)
        return dest / chart.rsplit("/", 1)[-1]

    def package(self, chart: str | os.PathLike[str], *, dest: str | os.PathLike[str]) -> Path:
        """`helm package` a chart directory into dest; returns the .tgz (e.g. to serve the stand-in
        from a chart repository)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        out = self._run(["package", str(chart), "--destination", str(dest)]).stdout
        match = re.search(r"saved it to:\s*(\S+\.tgz)", out)
        if not match:
            raise CommandError(f"`helm package {chart}` did not say where it saved the chart ({_one_line(out)[-200:]}) — "
                               f"look in {dest}")
        return Path(match.group(1))

    def show_chart(self, chart: str | os.PathLike[str], *, version: str | None = None) -> dict[str, Any]:
        """`helm show chart`: the chart's metadata (name, version, description, annotations…)."""
        args = ["show", "chart", str(chart)]
        if version:
            args += ["--version", version]
        meta = yaml.safe_load(self._run(args).stdout) or {}
        if not isinstance(meta, dict):
            raise CommandError(f"`helm show chart {chart}` printed no chart metadata — check the chart reference")
        return meta

    # -- plumbing ---------------------------------------------------------------------------

    def _cluster_args(self, namespace: str | None) -> list[str]:
        args: list[str] = []
        if self.kubeconfig:
            args += ["--kubeconfig", str(self.kubeconfig)]
        if self.kube_context:
            args += ["--kube-context", self.kube_context]
        ns = namespace or self.namespace
        if ns:
            args += ["--namespace", ns]
        return args

    def _run(
        self,
        args: list[str],
        *,
        timeout: float = _QUICK_TIMEOUT,
        secrets: Iterable[str] = (),
        ok_codes: Sequence[int] = (0,),
    ) -> "_Result":
        secrets = [s for s in secrets if s]
        display = _display(args)
        log.info("helm %s", display)
        try:
            command = sh.Command(str(self.binary))
        except sh.CommandNotFound:
            raise ProvisionError(f"helm binary {self.binary} not found or not executable — set HELM=/path/to/helm") from None
        proc = None
        try:
            with waits.spent("helm"):
                with _interrupts_held():
                    proc = command(
                        *args, _env=self.env, _timeout=timeout, _tty_out=False, _ok_code=list(ok_codes), _in="",
                        _bg=True, _bg_exc=False,
                    )
                proc.wait()
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C / SIGTERM reached us, maybe not helm (a signal to our PID only): stop helm
            # before teardown runs, or its `--wait` would hold the interpreter open for minutes.
            if proc is not None:
                _stop(proc)
            raise
        except sh.ErrorReturnCode as exc:
            stderr = _scrub(exc.stderr.decode(errors="replace"), secrets)
            stdout = _scrub(exc.stdout.decode(errors="replace"), secrets)
            raise _command_error(display, exc.exit_code, stderr or stdout) from None
        except sh.TimeoutException:
            raise CommandError(
                f"`helm {display}` did not finish within {timeout:.0f}s — the cluster may be unreachable or "
                "slow; check `kubectl get events`, or raise the timeout"
            ) from None
        except OSError as exc:
            raise ProvisionError(f"cannot run helm at {self.binary}: {exc} — set HELM=/path/to/helm") from None
        return _Result(
            exit_code=proc.exit_code,
            stdout=_scrub(proc.stdout.decode(errors="replace"), secrets),
            stderr=_scrub(proc.stderr.decode(errors="replace"), secrets),
        )


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM while sh forks helm, and deliver them once the fork is over.

    sh forks with os.fork, which runs Python's at-fork callbacks; a KeyboardInterrupt raised in
    one of them is swallowed ("Exception ignored in _releaseLock") and the run carries on as if
    never interrupted, with logging's lock left held."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only; nothing to hold here
        return
    # A handler set outside Python (getsignal gives None) is left as is.
    previous = {s: h for s in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(s)) is not None}
    for signum in previous:
        signal.signal(signum, lambda received, _frame: held.append(received))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:
            signal.raise_signal(signum)  # its own handler acts on it now


def _stop(proc: Any, grace: float = 10.0) -> None:
    """SIGTERM a running helm (it cancels its operation), SIGKILL it after `grace` seconds."""
    with contextlib.suppress(Exception):
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except sh.TimeoutException:
        with contextlib.suppress(Exception):
            proc.kill()
    except Exception:  # noqa: BLE001 — its exit status after a signal is not ours to report
        pass


@dataclass(frozen=True)
class _Result:
    exit_code: int
    stdout: str
    stderr: str


class HelmError(CommandError):
    """A helm command that failed: exit code, the last line helm printed, and whether helm said
    the release does not exist."""

    def __init__(self, message: str, *, exit_code: int, stderr_tail: str, not_found: bool) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.not_found = not_found


def _command_error(display: str, exit_code: int, output: str) -> HelmError:
    tail = _last_line(output) or "(no output)"
    hint = next((h for pattern, h in _HINTS if pattern.search(output)), "run the command by hand to see its full output")
    not_found = bool(re.search(r"release: not found|has no deployed releases|: not found\s*$", output, re.M))
    return HelmError(
        f"`helm {display}` failed (exit {exit_code}): {tail} — {hint}",
        exit_code=exit_code, stderr_tail=tail, not_found=not_found,
    )


def _display(args: Sequence[str]) -> str:
    """The command line as a user would type it, with the values of secret `--set*` keys masked."""
    shown: list[str] = []
    previous = ""
    for arg in args:
        if previous.startswith("--set"):
            key, sep, _value = arg.partition("=")
            if sep and is_secret_key(key):
                arg = f"{key}={REDACTED}"
        shown.append(arg)
        previous = arg
    return shlex.join(shown)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _json_or_raw(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        # helm prints warnings before the JSON on some versions; the document starts at the first brace.
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start > 0:
            try:
                return json.loads(text[start:])
            except ValueError:
                pass
        return {"raw": text}


@dataclass
class _ValueArgs:
    """`-f`/`--set-json`/`--set-file` arguments for files and sets; a context manager because secret
    values live in private temporary files for the duration of the command."""

    files: Sequence[str | os.PathLike[str]]
    sets: Sets | None
    args: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> "_ValueArgs":
        for path in self.files:
            self.args += ["--values", str(path)]
        pairs = list(self.sets.items()) if isinstance(self.sets, Mapping) else list(self.sets or ())
        for key, value in pairs:
            if is_secret_key(key) and value not in (None, ""):
                secret = value if isinstance(value, str) else json.dumps(value)
                self.secrets.append(secret)
                self.args += ["--set-file", f"{key}={self._secret_file(secret)}"]
            else:
                # one flag type for every value keeps helm's application order equal to ours
                # (helm applies all --set-json before all --set, whatever the command-line order).
                self.args += ["--set-json", f"{key}={json.dumps(value)}"]
        return self

    def _secret_file(self, secret: str) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vllm-stack-e2e-helm-")
        fd, path = tempfile.mkstemp(dir=self._tmp.name)
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(secret)
        return path

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def set_path(*parts: str | int) -> str:
    """A `--set` path from key parts, escaping dots and brackets in keys: ("a", "b.c", 0) -> 'a.b\\.c[0]'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _escape_key(part)
    return out
