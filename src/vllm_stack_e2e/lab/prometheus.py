"""A local Prometheus process: generated config with static targets, start, reload, stop.

The lab runs one to scrape the simulated data plane (one engine target per Ready pod, plus
the gateway); the integration tests run one per Prometheus version. Targets carry the labels
a Kubernetes scrape would give them (namespace, pod, service, job, …) and can be replaced at
run time: the config file is rewritten and Prometheus reloads it (`--web.enable-lifecycle`).

Prometheus 3.x needs no flag to keep UTF-8/colon names: it negotiates
`escaping=allow-utf-8` by default (and 2.x cannot be told to; see prom.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import LabError, WaitTimeout
from ..prom import Prometheus, PromError
from ..tools import prometheus_version
from .processes import ManagedProcess, ProcessSpec


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape: `address` is host:port; `labels` become target labels."""

    address: str
    job: str = "vllm"
    labels: tuple[tuple[str, str], ...] = ()
    metrics_path: str = "/metrics"

    @classmethod
    def of(cls, address: str, job: str = "vllm", metrics_path: str = "/metrics", **labels: str) -> "ScrapeTarget":
        """Build a target with labels as keyword arguments: `ScrapeTarget.of("127.0.0.1:8000", pod="p-0")`."""
        return cls(address=address, job=job, labels=tuple(sorted(labels.items())), metrics_path=metrics_path)

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def _listen_parts(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"listen must be HOST:PORT, got {listen!r}")
    return host, int(port)


@dataclass
class LocalPrometheus:
    """A Prometheus process on `listen` with a generated config, managed by PID."""

    binary: Path
    data_dir: Path
    listen: str = "127.0.0.1:9090"
    scrape_interval: str = "1s"
    name: str = "prometheus"
    retention: str = "1d"
    # How soon new or changed targets are scraped (hidden flag, default 5s). 3.x honours it;
    # 2.x clamps it to at least 5s, so there a target change takes ~5s to show.
    target_update_interval: str = "250ms"
    extra_args: tuple[str, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)
    _targets: dict[tuple[str, str, str], ScrapeTarget] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)
    _client: Prometheus | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        host, _ = _listen_parts(self.listen)
        from ..sim.host import require_loopback

        require_loopback(host)
        self.binary = Path(self.binary)
        self.data_dir = Path(self.data_dir)

    # -- where things are --------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "prometheus.log"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "prometheus.pid"

    @property
    def version(self) -> str:
        """The binary's version (from `--version`), e.g. '2.42.0+ds' or '3.16.0'."""
        return prometheus_version(self.binary)

    @property
    def client(self) -> Prometheus:
        if self._client is None:
            self._client = Prometheus(self.url)
        return self._client

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    # -- targets -----------------------------------------------------------------------
    def targets(self) -> list[ScrapeTarget]:
        with self._lock:
            return list(self._targets.values())

    def set_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Replace every target; reload when running."""
        with self._lock:
            self._targets = {self._key(t): t for t in targets}
        self._apply()

    def add_target(self, target: ScrapeTarget) -> None:
        """Add (or relabel) one target; reload when running."""
        with self._lock:
            self._targets[self._key(target)] = target
        self._apply()

    def remove_targets(self, match: Callable[[ScrapeTarget], bool] | str) -> int:
        """Remove targets by address (str) or predicate; reload when running; return how many."""
        pred = (lambda t: t.address == match) if isinstance(match, str) else match
        with self._lock:
            gone = [k for k, t in self._targets.items() if pred(t)]
            for key in gone:
                del self._targets[key]
        if gone:
            self._apply()
        return len(gone)

    @staticmethod
    def _key(target: ScrapeTarget) -> tuple[str, str, str]:
        return (target.job, target.address, target.metrics_path)

    def render_config(self) -> str:
        """The prometheus.yml for the current targets (one scrape job per job name and path)."""
        jobs: dict[tuple[str, str], list[ScrapeTarget]] = {}
        for target in sorted(self.targets(), key=lambda t: (t.job, t.address)):
            jobs.setdefault((target.job, target.metrics_path), []).append(target)
        scrape_configs = []
        for (job, path), members in jobs.items():
            job_name = job if path == "/metrics" else f"{job}{path.replace('/', '_')}"
            scrape_configs.append({
                "job_name": job_name,
                "metrics_path": path,
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "static_configs": [{"targets": [t.address], "labels": {"job": job, **t.label_dict}} for t in members],
            })
        config = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.scrape_interval},
            "scrape_configs": scrape_configs,
        }
        if self.external_labels:
            config["global"]["external_labels"] = dict(self.external_labels)
        return yaml.safe_dump(config, sort_keys=False)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".yml.tmp")
        tmp.write_text(self.render_config())
        tmp.replace(self.config_path)

    def _apply(self) -> None:
        self._write_config()
        if self.running():
            self.reload()

    # -- process -----------------------------------------------------------------------
    def argv(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.listen}",
            "--web.enable-lifecycle",
            f"--scrape.discovery-reload-interval={self.target_update_interval}",
            *self.extra_args,
        ]

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

    def start(self, budget: float = 30.0) -> "LocalPrometheus":
        """Write the config, start Prometheus, and wait until it is ready."""
        if self.running():
            return self
        if not self.binary.is_file():
            raise LabError(f"Prometheus binary {self.binary} does not exist — run `make tools` (2.x) or "
                           "`make lab-build` (3.x)")
        self._write_config()
        spec = ProcessSpec(name=self.name, argv=self.argv(), log=self.log_path)
        self._process = ManagedProcess(spec, self.pidfile)
        self._process.start()
        try:
            self.client.wait_ready(budget)
        except WaitTimeout:
            tail = self._process.log_tail(8).replace("\n", " | ")
            alive = "running" if self._process.alive() else f"exited ({self._process.exit_code()})"
            self.stop()
            raise LabError(f"Prometheus {self.binary} on {self.listen} not ready after {budget:.0f}s ({alive}); "
                           f"log {self.log_path}: {tail}") from None
        return self

    def reload(self) -> None:
        """Make the running Prometheus read the config file again."""
        try:
            self.client.reload()
        except PromError as exc:
            raise LabError(f"{exc}; config {self.config_path}") from None

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is not None:
            self._process.stop(timeout)
        if self._client is not None:
            self._client.close()
            self._client = None

    @staticmethod
    def stop_existing(data_dir: Path, timeout: float = 10.0) -> bool:
        """Stop a Prometheus another run started with this `data_dir` (by its PID file)."""
        pidfile = Path(data_dir) / "prometheus.pid"
        if not pidfile.exists():
            return False
        ManagedProcess.from_pidfile(pidfile).stop(timeout)
        return True

    def __enter__(self) -> "LocalPrometheus":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
