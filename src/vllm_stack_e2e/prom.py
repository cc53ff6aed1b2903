"""The Prometheus HTTP API client: the one module that speaks HTTP to Prometheus.

Instant and range queries, target health, series and label lookups, build info, the
lifecycle endpoints (`/-/ready`, `/-/reload`), named waits with budgets, and detection of
the form in which Prometheus stores a metric whose name has colons.

Why the form matters (docs/metrics.md): vLLM exposes `vllm:num_requests_waiting` through
prometheus_client, which negotiates from the scraper's Accept header. Prometheus 3.x offers
`escaping=allow-utf-8` and gets — and stores — the colon names; Prometheus 2.x offers plain
OpenMetrics and gets `vllm_num_requests_waiting`. A `vllm:` query against a 2.x then
returns nothing, and KEDA reads nothing as 0. `Prometheus.name_form` and `Prometheus.adapt`
find this out and say so in one line.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from . import waits
from .errors import HarnessError


class PromError(HarnessError):
    """Prometheus answered with an error, or could not be reached."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with no labels)."""

    labels: dict[str, str]
    value: float
    timestamp: float

    @property
    def name(self) -> str | None:
        return self.labels.get("__name__")


@dataclass(frozen=True)
class Target:
    """An active scrape target as Prometheus reports it."""

    scrape_url: str
    health: str  # up | down | unknown
    last_error: str
    labels: dict[str, str]
    scrape_pool: str
    last_scrape: str = ""
    last_scrape_duration: float = 0.0
    scrape_interval: float = 0.0  # seconds (0 when Prometheus does not say)

    @property
    def up(self) -> bool:
        return self.health == "up"


@dataclass(frozen=True)
class Series:
    """One element of a range query's matrix: a label set and its (timestamp, value) points at
    the steps where PromQL saw it (a stale or absent series has no point there)."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(text: str) -> float:
    """A Prometheus duration ("30s", "1m30s", "500ms") in seconds; 0.0 for anything else."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return 0.0
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class NameForm:
    """How Prometheus stores a metric whose exposed name has colons."""

    metric: str  # the name as asked, e.g. vllm:num_requests_waiting
    colons: bool  # series stored under the colon name
    underscores: bool  # series stored under the escaped name (colons → underscores)
    prometheus_version: str = ""
    explanation: str | None = None  # one line when the asked form is not (only) the stored one

    @property
    def escaped(self) -> str:
        return underscore_name(self.metric)

    @property
    def stored(self) -> str | None:
        """The name to query: the colon name when stored, else the escaped one, else None."""
        if self.colons:
            return self.metric
        if self.underscores:
            return self.escaped
        return None


# A metric name with a colon, not inside a label matcher's string or a duration/subquery.
_COLON_NAME = re.compile(r"(?<![\w:.\"'])([A-Za-z_][A-Za-z0-9_]*:[A-Za-z0-9_:]*)")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")


def underscore_name(metric: str) -> str:
    """The name prometheus_client exposes for `metric` without UTF-8 escaping: ':' → '_'."""
    return metric.replace(":", "_")


def colon_names(promql: str) -> list[str]:
    """Metric names with colons in a PromQL expression, in order of appearance, once each."""
    names: list[str] = []
    for part in _STRING.split(promql):
        for match in _COLON_NAME.finditer(part):
            name = match.group(1)
            if name not in names and not re.fullmatch(r"[0-9smhdwy:]+", name):
                names.append(name)
    return names


def rewrite_names(promql: str, mapping: dict[str, str]) -> str:
    """`promql` with metric names replaced per `mapping`, leaving quoted strings alone."""
    if not mapping:
        return promql
    out: list[str] = []
    pos = 0
    for string in _STRING.finditer(promql):
        out.append(_COLON_NAME.sub(lambda m: mapping.get(m.group(1), m.group(1)), promql[pos:string.start()]))
        out.append(string.group(0))
        pos = string.end()
    out.append(_COLON_NAME.sub(lambda m: mapping.get(m.group(1), m.group(1)), promql[pos:]))
    return "".join(out)


def _float(raw: str) -> float:
    return float(raw)  # Prometheus sends "NaN", "+Inf", "-Inf", which float() reads


class Prometheus:
    """A Prometheus server's HTTP API at `base_url` (e.g. http://127.0.0.1:9090)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._owns_client = client is None
        self._version: str | None = None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def move_to(self, base_url: str) -> None:
        """The same server at a new address (a renewed port-forward): waits already holding this
        object follow it instead of failing on a closed client."""
        self.base_url = base_url.rstrip("/")

    def __enter__(self) -> "Prometheus":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Prometheus({self.base_url!r})"

    # -- transport ---------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, self.base_url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise PromError(f"Prometheus at {self.base_url} unreachable ({method} {path}): "
                            f"{type(exc).__name__}: {exc} — is it running and listening there?") from exc

    def _api(self, path: str, params: Any = None, method: str = "GET") -> Any:
        if method == "POST":
            resp = self._request("POST", path, data=params)
        else:
            resp = self._request("GET", path, params=params)
        try:
            body = resp.json()
        except ValueError:
            raise PromError(f"Prometheus at {self.base_url} answered {path} with HTTP {resp.status_code} "
                            f"and no JSON: {resp.text[:200]!r}") from None
        if body.get("status") != "success":
            query = params.get("query") if isinstance(params, dict) else None
            what = f" for `{query}`" if query else ""
            raise PromError(f"Prometheus at {self.base_url} rejected {path}{what}: "
                            f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body.get("data")

    # -- lifecycle ---------------------------------------------------------------------
    def ready(self) -> bool:
        """True when `/-/ready` answers 200 (TSDB loaded, serving queries)."""
        try:
            return self._client.get(self.base_url + "/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def reload(self) -> None:
        """Apply the config file again (`POST /-/reload`; needs --web.enable-lifecycle)."""
        resp = self._request("POST", "/-/reload")
        if resp.status_code != 200:
            raise PromError(f"Prometheus at {self.base_url} refused to reload its config: HTTP {resp.status_code} "
                            f"{resp.text.strip()[:300]} — check the generated config and --web.enable-lifecycle")

    def buildinfo(self) -> dict[str, str]:
        return dict(self._api("/api/v1/status/buildinfo"))

    def version(self) -> str:
        """Prometheus's version, e.g. '2.42.0' or '3.6.0' (cached)."""
        if self._version is None:
            self._version = str(self.buildinfo().get("version", "unknown"))
        return self._version

    def major_version(self) -> int:
        match = re.match(r"(\d+)", self.version())
        return int(match.group(1)) if match else 0

    # -- queries -----------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Instant query; a scalar result comes back as one Sample without labels."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        data = self._api("/api/v1/query", params, method="POST")
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [Sample(dict(r["metric"]), _float(r["value"][1]), float(r["value"][0])) for r in result]
        if kind == "scalar":
            return [Sample({}, _float(result[1]), float(result[0]))]
        if kind == "matrix":
            raise PromError(f"`{promql}` is a range vector; wrap it in a function (sum(rate(...)))")
        raise PromError(f"`{promql}` returned a {kind}, not a number")

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Range query: the instant query evaluated every `step` seconds from `start` to `end`."""
        data = self._api("/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step},
                         method="POST")
        if data["resultType"] != "matrix":
            raise PromError(f"`{promql}` over a range returned a {data['resultType']}, not a matrix")
        return [Series(dict(r["metric"]), [(float(t), _float(v)) for t, v in r["values"]]) for r in data["result"]]

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """The query's one value; None when the result is empty.

        Raises PromError on more than one element, as KEDA's Prometheus scaler does."""
        samples = self.query(promql, at)
        if not samples:
            return None
        if len(samples) > 1:
            shown = ", ".join(str(s.labels) for s in samples[:3])
            raise PromError(f"`{promql}` returned {len(samples)} series ({shown}…), not one — "
                            "aggregate it, e.g. sum(...)")
        return samples[0].value

    def series(self, match: str | Iterable[str], start: float | None = None, end: float | None = None) -> list[dict[str, str]]:
        """Label sets of the series matching `match` (selectors) in [start, end]."""
        matches = [match] if isinstance(match, str) else list(match)
        params: dict[str, Any] = {"match[]": matches}
        if start is not None:
            params["start"] = start
        if end is not None:
            params["end"] = end
        return [dict(s) for s in self._api("/api/v1/series", params, method="POST")]

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params = {"match[]": match} if match else None
        return list(self._api(f"/api/v1/label/{label}/values", params))

    def metric_names(self, match: str | None = None) -> list[str]:
        """Stored metric names (optionally of series matching a selector)."""
        return self.label_values("__name__", match)

    def targets(self) -> list[Target]:
        """Active scrape targets with their health and last error."""
        data = self._api("/api/v1/targets", {"state": "active"})
        return [
            Target(scrape_url=t.get("scrapeUrl", ""), health=t.get("health", "unknown"),
                   last_error=t.get("lastError", ""), labels=dict(t.get("labels", {})),
                   scrape_pool=t.get("scrapePool", ""), last_scrape=t.get("lastScrape", ""),
                   last_scrape_duration=float(t.get("lastScrapeDuration", 0.0)),
                   scrape_interval=duration_seconds(str(t.get("scrapeInterval", ""))))
            for t in data.get("activeTargets", [])
        ]

    # -- name forms --------------------------------------------------------------------
    def name_form(self, metric: str, lookback: float = 600.0) -> NameForm:
        """Which form(s) of `metric` Prometheus holds series for in the last `lookback` seconds."""
        escaped = underscore_name(metric)
        now = time.time()
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", metric):
            raise ValueError(f"{metric!r} is not a classic metric name ([A-Za-z_:][A-Za-z0-9_:]*)")
        selector = f'{{__name__=~"{metric}|{escaped}"}}'
        found = {s.get("__name__") for s in self.series(selector, start=now - lookback, end=now)}
        colons, underscores = metric in found, escaped in found and escaped != metric
        version = self._safe_version()
        explanation = None
        if not colons and underscores:
            explanation = (
                f"Prometheus {version} at {self.base_url} stores `{escaped}`, not `{metric}`: it scrapes "
                "OpenMetrics without `escaping=allow-utf-8`, so prometheus_client escapes ':' to '_' — "
                f"query `{escaped}`, or use Prometheus ≥3.0 (which stores `{metric}`)"
            )
        elif colons and underscores:
            explanation = (f"Prometheus {version} at {self.base_url} stores both `{metric}` and `{escaped}` "
                           "(scrapers or targets differ in name escaping) — a query on one form misses the other")
        elif not colons and not underscores and ":" in metric:
            explanation = (f"Prometheus {version} at {self.base_url} has no series named `{metric}` or `{escaped}` "
                           f"in the last {lookback:.0f}s — is the target scraped (see targets())?")
        return NameForm(metric, colons, underscores, version, explanation)

    def adapt(self, promql: str) -> tuple[str, list[str]]:
        """`promql` with each colon name replaced by the form Prometheus stores, and the
        explanations of every replacement (empty when the query was already right)."""
        mapping: dict[str, str] = {}
        notes: list[str] = []
        for name in colon_names(promql):
            form = self.name_form(name)
            if form.stored and form.stored != name:
                mapping[name] = form.stored
            if form.explanation and form.stored != name:
                notes.append(form.explanation)
        return rewrite_names(promql, mapping), notes

    def explain(self, promql: str) -> str | None:
        """One line saying why `promql` reads a name Prometheus does not store, or None."""
        _, notes = self.adapt(promql)
        return notes[0] if notes else None

    def _safe_version(self) -> str:
        try:
            return self.version()
        except PromError:
            return "(version unknown)"

    # -- waits (through the one wait engine, vllm_stack_e2e.waits) ------------------------
    def wait_ready(self, budget: float = 30.0, interval: float = 0.2) -> None:
        """Wait until `/-/ready` answers 200; WaitTimeout otherwise."""
        seen = waits.until(waits.polling(self.ready, interval), bool, budget, f"Prometheus at {self.base_url} ready",
                           show=lambda ok: "ready" if ok else "/-/ready not 200", hint="check its log")
        seen.expect()

    def reach_value(self, promql: str, predicate: Callable[[float | None], bool], budget: float,
                    description: str, interval: float = 0.5) -> waits.Seen[float | None]:
        """Poll `scalar(promql)` until `predicate(value)` holds: the observation. When it is not
        reached and the query's names are not the ones this Prometheus stores, the hint says why."""
        seen = waits.until(waits.polling(lambda: self.scalar(promql), interval), predicate, budget, description,
                           show=_show)
        seen.shown = f"`{promql}` on {self.base_url}: {seen.shown} ({len(seen.history)} polls)"
        if not seen.reached:
            try:
                seen.hint = self.explain(promql) or ""
            except PromError:
                pass
        return seen

    def wait_for_value(self, promql: str, predicate: Callable[[float | None], bool], budget: float,
                       description: str, interval: float = 0.5) -> float | None:
        """`reach_value` for a value the caller needs to act: WaitTimeout naming the last value seen."""
        return self.reach_value(promql, predicate, budget, description, interval).expect()

    def wait_targets_up(self, count: int, budget: float, job: str | None = None, interval: float = 0.5) -> list[Target]:
        """Wait until at least `count` active targets (of `job`) are up; return those."""
        def probe() -> list[Target]:
            return [t for t in self.targets() if job is None or t.labels.get("job") == job]

        def show(targets: list[Target]) -> str:
            return "; ".join(f"{t.scrape_url} {t.health} {t.last_error!r}" for t in targets) or "none"

        which = f" of job {job}" if job else ""
        seen = waits.until(waits.polling(probe, interval), lambda ts: sum(t.up for t in ts) >= count, budget,
                           f"{count} target(s){which} up on {self.base_url}", show=show,
                           hint="check the targets' /metrics and the scrape config")
        return [t for t in seen.expect() if t.up]

    def probe(self, promql: str, default: float = 0.0) -> Callable[[], float]:
        """A callable returning `scalar(promql)` (`default` when empty) — for load.drive_queue."""

        def read() -> float:
            value = self.scalar(promql)
            return default if value is None or math.isnan(value) else value

        return read


def _show(value: float | None) -> str:
    return "the query matched no series" if value is None else f"{value:g}"
