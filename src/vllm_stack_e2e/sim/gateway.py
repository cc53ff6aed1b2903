"""A router-like gateway in front of simulated engines, standing in for the production-stack
router (`vllm-router-service`).

What it shares with the real router (read from its source, written here):
- Model knowledge: with Kubernetes discovery a model is known only once a Ready engine pod was
  discovered serving it, by asking that pod's `/v1/models` (with `Authorization: Bearer
  $VLLM_API_KEY` when the variable is set). `/v1/models` lists the models of the engines in
  rotation now — nothing at zero. A model seen once stays known for the process's life: HTTP 503
  "temporarily unavailable" while it has no engine, 404 "not found" for a model never seen (also
  after a restart while the model sits at zero). With static discovery the static models are known
  from the start.
- `vllm:num_incoming_requests_total{model}` counted for every request that names a model, *before*
  an engine is chosen — also for the 503s and 404s.
- Routing: `roundrobin` cycles through the model's engines in URL order, one counter per engine
  set; `session` sends a session (the `--session-key` header, else that key in the JSON body) to one
  engine on a consistent-hash ring, and a request without one to the engine with the fewest
  requests in the last minute. Other logics route round-robin, said in the log.
- OpenAI routes proxied with streaming passed through, client headers (`Authorization` too)
  forwarded; errors as `{"error": "<message>"}`. Proxying as docs/termination.md reads the router
  (0.1.12): no upstream timeout at all (a stalled engine holds the client's request open); a failure
  before the engine's response headers is retried on another of the model's engines only
  `--max-instance-failover-reroute-attempts` times (default 0), then HTTP 500; an engine's own
  response, 5xx included, passes through as it is; once headers are sent, an engine that breaks
  mid-body makes the gateway close the client's connection — the body is cut, with no error event
  and no retry. On its own SIGTERM it stops accepting and waits without limit for open streams
  (`sim.cli`). `/metrics` in the Prometheus text format whatever
  the Accept header says, with `vllm:healthy_pods_total{server}`, `vllm:num_requests_running{server}`
  and `vllm:num_requests_waiting{server}` declared but never set — so `sum(vllm:num_requests_waiting)`
  still reads only the engines.

The simulator's own addition: `vllm_sim:gateway_requests_total{outcome}` counts what became of each
request the gateway answered (`OUTCOMES`), so the harness can tell completed answers from aborted,
cut and failed ones. The real router has no such counter (docs/metrics.md).

What replaces the router's own pod watch: whoever knows the pods (the lab's data plane) tells the
gateway which Ready pods its selector matches — `POST /admin/engines {"name": POD, "url": URL}`
(the gateway then asks the pod's `/v1/models`, as the router does) and `DELETE /admin/engines
{"name": POD}`. Python callers and tests may also add an engine with its model given
(`add_engine(url, model)`), which is what static discovery does.
"""

from __future__ import annotations

import bisect
import collections
import contextvars
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..load import ClientPool
from .routerflags import MODELLED_ROUTING, ROUTING_LOGICS

log = logging.getLogger("vllm_stack_e2e.sim.gateway")
ROUTING = MODELLED_ROUTING
_HOP_BY_HOP = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length",
               "upgrade", "te", "trailer", "accept-encoding"}
_STRIP_FROM_RESPONSE = {"content-length", "content-encoding", "transfer-encoding", "connection", "date", "server"}
# The router sets no upstream timeout at all (aiohttp's ClientTimeout(total=None)): a stalled engine
# holds the client's request open (docs/termination.md, "Proxying").
_ENGINE_TIMEOUT = httpx.Timeout(None)
_DISCOVERY_TIMEOUT = 10.0  # the router's health-check timeout for /v1/models
QPS_WINDOW = 60.0  # seconds of request history behind "fewest requests" (the router's stats window)
RING_REPLICAS = 64  # virtual nodes per engine on the session ring

# What became of a request, for vllm_sim:gateway_requests_total{outcome}; the simulator's own counter.
OUTCOMES = {
    "completed": "the engine's answer relayed whole (status below 500), not ended as an abort",
    "aborted": "the engine's answer relayed whole, ending with finish_reason \"abort\" (a vLLM ≥ 0.18 shutdown)",
    "cut": "the engine broke after its response headers; the client's connection was closed mid-body",
    "error_5xx": "the client got a 5xx: the engine's own, passed through, or the gateway's 500 once every "
                 "attempt failed before the engine's headers",
    "no_backend": "no engine for the model: 503 for a model seen before, 404 for one never seen",
    "bad_request": "refused by the gateway before routing (400: body not JSON, no model) or a 4xx from the engine",
    "client_gone": "the client went away before the answer was complete",
}
_ABORT_MARK = re.compile(rb'"finish_reason"\s*:\s*"abort"')
_CUTTING: contextvars.ContextVar[bool] = contextvars.ContextVar("gateway_cutting", default=False)


class UpstreamBroke(Exception):
    """The engine's connection broke after its response headers: the client's is closed in turn."""


class AbortScan:
    """Watches a relayed body for `"finish_reason":"abort"`, across chunk boundaries."""

    _KEEP = 64  # bytes of the previous chunk kept, longer than any spelling of the mark

    def __init__(self) -> None:
        self.aborted = False
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if self.aborted:
            return
        window = self._tail + chunk
        if _ABORT_MARK.search(window):
            self.aborted = True
        self._tail = window[-self._KEEP:]


class _Outcome:
    """One request's outcome, counted once."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self.value: str | None = None

    def record(self, outcome: str) -> None:
        if self.value is None:
            self.value = outcome
            self._counter.labels(outcome=outcome).inc()


class _DropOwnCutNotice(logging.Filter):
    """uvicorn logs "ASGI callable returned without completing response." when the gateway closes a
    client's connection on purpose (UpstreamBroke); the gateway has logged why already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CUTTING.get()


_DROP_OWN_CUT_NOTICE = _DropOwnCutNotice()


class _CloseOnUpstreamBreak:
    """ASGI wrapper: when the relay raises UpstreamBroke, return without completing the response, so
    the server closes the client's connection without the body's terminating chunk — a cut body, no
    error event (docs/termination.md, "Mid-stream")."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except UpstreamBroke:
            _CUTTING.set(True)  # same task as the server's notice that follows


@dataclass
class Backend:
    """One engine the gateway may route to."""

    url: str
    models: tuple[str, ...]
    name: str = ""
    added_at: float = field(default_factory=time.time)
    inflight: int = 0
    requests: int = 0
    recent: collections.deque[float] = field(default_factory=collections.deque, repr=False)
    pool: ClientPool = field(default_factory=lambda: ClientPool(None, _ENGINE_TIMEOUT), repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or self.url

    def qps(self, now: float) -> float:
        while self.recent and self.recent[0] < now - QPS_WINDOW:
            self.recent.popleft()
        return len(self.recent) / QPS_WINDOW

    def as_dict(self) -> dict[str, Any]:
        """The public view (for /admin/engines)."""
        return {"name": self.name, "url": self.url, "models": list(self.models), "inflight": self.inflight,
                "requests": self.requests, "added_at": self.added_at}


class HashRing:
    """A consistent-hash ring of engine URLs: a key keeps its engine while that engine stays, and
    only the keys of an engine that leaves (or a share for one that joins) move."""

    def __init__(self) -> None:
        self._points: list[tuple[int, str]] = []
        self._nodes: frozenset[str] = frozenset()

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")

    def update(self, nodes: Iterable[str]) -> None:
        nodes = frozenset(nodes)
        if nodes != self._nodes:
            self._nodes = nodes
            self._points = sorted((self._hash(f"{node}#{i}"), node) for node in nodes for i in range(RING_REPLICAS))

    def get(self, key: str) -> str:
        if not self._points:
            raise LookupError("empty ring")
        index = bisect.bisect(self._points, (self._hash(key), "")) % len(self._points)
        return self._points[index][1]


class Gateway:
    """Routes OpenAI requests to engines by model; counts and answers like the production-stack router."""

    def __init__(self, models: Iterable[str] = (), *, routing: str = "roundrobin", session_key: str | None = None,
                 api_key: str | None = None, registry: CollectorRegistry | None = None,
                 reroute_attempts: int = 0) -> None:
        if routing not in ROUTING_LOGICS:
            raise ValueError(f"routing must be one of {', '.join(ROUTING_LOGICS)}, got {routing!r}")
        if routing == "session" and not session_key:
            raise ValueError("Session key must be provided when using session routing logic")
        if routing not in ROUTING:
            log.warning("routing logic %s is not modelled by the simulator: routing round-robin", routing)
        self.routing = routing if routing in ROUTING else "roundrobin"
        self.session_key = session_key
        self.reroute_attempts = max(0, int(reroute_attempts))  # --max-instance-failover-reroute-attempts
        self.api_key = api_key if api_key is not None else (os.environ.get("VLLM_API_KEY") or None)
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._told: list[str] = list(dict.fromkeys(models))  # static models: known from the start
        self._seen: set[str] = set(self._told)
        self._backends: dict[str, Backend] = {}  # by name (a pod's, or the URL)
        self._next: dict[tuple[str, ...], int] = {}  # round-robin position per engine set
        self._ring = HashRing()
        self._retired: list[Backend] = []  # removed, with streams possibly still in flight
        self.incoming = Counter("vllm:num_incoming_requests",
                                "Incoming requests that named a model, counted before an engine is chosen.",
                                ["model"], registry=self.registry)
        self.healthy = Gauge("vllm:healthy_pods_total", "Engines the gateway can route to.", ["server"],
                             registry=self.registry)
        self.running = Gauge("vllm:num_requests_running", "Requests in flight per engine, as the gateway sees them.",
                             ["server"], registry=self.registry)
        # Declared and never set, like the router's: present in HELP/TYPE, no samples.
        Gauge("vllm:num_requests_waiting", "Declared by the router; never set.", ["server"], registry=self.registry)
        # The simulator's own (not the router's): what became of each request, by outcome.
        self.outcomes = Counter("vllm_sim:gateway_requests",
                                "Requests the simulator's gateway answered, by outcome (simulator only; the "
                                "production-stack router has no such counter).", ["outcome"], registry=self.registry)
        for outcome in OUTCOMES:
            self.outcomes.labels(outcome=outcome)
        self.app = _CloseOnUpstreamBreak(self._build_app())
        logging.getLogger("uvicorn.error").addFilter(_DROP_OWN_CUT_NOTICE)

    # -- engines -----------------------------------------------------------------------
    def add_engine(self, url: str, model: str | Iterable[str] | None = None, name: str | None = None) -> Backend:
        """Route `model` (default: the first static model) to the engine at `url`; idempotent."""
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"engine url must start with http:// — got {url!r}")
        models = (model,) if isinstance(model, str) else tuple(model or ())
        if not models and self._told:
            models = (self._told[0],)
        if not models:
            raise ValueError(f"no model given for engine {url} and the gateway knows none — pass model=")
        name = name or url
        existing = self._backends.get(name)
        if existing is not None and existing.models == models and existing.url == url:
            return existing
        backend = Backend(url=url, models=models, name=name)
        if existing is not None:
            self._retired.append(existing)
        self._backends[name] = backend
        self._seen.update(models)
        log.info("engine %s at %s serving %s", name, url, ", ".join(models))
        return backend

    async def discover(self, name: str, url: str) -> Backend | None:
        """What the router does for a Ready pod: ask its /v1/models and put it in rotation for
        those models; an engine that does not answer, or serves nothing, is (taken) out of rotation."""
        url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            async with httpx.AsyncClient(timeout=_DISCOVERY_TIMEOUT) as client:
                reply = await client.get(url + "/v1/models", headers=headers)
            reply.raise_for_status()
            models = tuple(str(m["id"]) for m in reply.json()["data"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.error("Failed to get model names from %s/v1/models: %s", url, exc)
            models = ()
        if not models:
            self.remove_engine(name)
            return None
        return self.add_engine(url, models, name=name)

    def remove_engine(self, name_or_url: str) -> bool:
        """Stop routing to an engine (by name or URL); False if it was not there. In-flight requests finish."""
        key = name_or_url if name_or_url in self._backends else name_or_url.rstrip("/")
        backend = self._backends.pop(key, None)
        if backend is None:
            backend = next((b for b in self._backends.values() if b.url == key), None)
            if backend is not None:
                del self._backends[backend.name]
        if backend is not None:
            self._retired.append(backend)  # its connections close once its streams are done
            log.info("engine %s out of rotation", backend.name)
        return backend is not None

    def engines(self) -> list[Backend]:
        return list(self._backends.values())

    def models(self) -> list[str]:
        """Models listed by /v1/models: those the engines in rotation serve (and static ones)."""
        return list(dict.fromkeys([m for b in self._backends.values() for m in b.models] + self._told))

    def known(self, model: str) -> bool:
        """Seen at any time in this process's life (the router's `has_ever_seen_model`)."""
        return model in self._seen

    def outcome_counts(self) -> dict[str, float]:
        """vllm_sim:gateway_requests_total by outcome, for tests and the harness in-process."""
        counts = dict.fromkeys(OUTCOMES, 0.0)
        for metric in self.outcomes.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["outcome"]] = sample.value
        return counts

    def _choose(self, model: str, session: str | None, exclude: frozenset[str] = frozenset()) -> Backend | None:
        candidates = {b.url: b for b in self._backends.values() if model in b.models and b.url not in exclude}
        if not candidates:
            return None
        if self.routing == "session":
            if session is None:
                now = time.time()
                return min(candidates.values(), key=lambda b: (b.qps(now), b.url))
            self._ring.update(candidates)
            return candidates[self._ring.get(session)]
        key = tuple(sorted(candidates))
        turn = self._next.get(key, 0)
        self._next[key] = turn + 1
        return candidates[key[turn % len(key)]]

    def _session(self, request: Request, body: dict[str, Any]) -> str | None:
        if not self.session_key:
            return None
        value = request.headers.get(self.session_key)
        if value is None and body.get(self.session_key) is not None:
            value = str(body[self.session_key])
        return value

    # -- HTTP --------------------------------------------------------------------------
    async def _reap(self) -> None:
        """Close the connections of removed engines that have no stream left."""
        idle = [b for b in self._retired if b.inflight == 0]
        self._retired = [b for b in self._retired if b.inflight > 0]
        for backend in idle:
            await backend.pool.aclose()

    async def aclose(self) -> None:
        backends = list(self._backends.values()) + self._retired
        self._retired = []
        for backend in backends:
            await backend.pool.aclose()

    def _attempts(self, model: str, session: str | None) -> Iterator[Backend]:
        """The engines a request tries, in order: the routing logic's choice, then — only after a failure
        before the engine's response headers — another engine of the model not tried yet, up to
        `reroute_attempts` more (the router's --max-instance-failover-reroute-attempts)."""
        tried: set[str] = set()
        for _ in range(1 + self.reroute_attempts):
            backend = self._choose(model, session, frozenset(tried))
            if backend is None:
                return
            tried.add(backend.url)
            yield backend

    async def _proxy(self, request: Request, path: str) -> Response:
        """Route one OpenAI request (docs/termination.md, "The production-stack router (0.1.12)")."""
        if self._retired:
            await self._reap()
        outcome = _Outcome(self.outcomes)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            outcome.record("bad_request")
            return JSONResponse({"error": "Invalid request: body is not JSON."}, status_code=400)
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str):
            outcome.record("bad_request")
            return JSONResponse({"error": "Invalid request: missing 'model' in request body."}, status_code=400)
        self.incoming.labels(model=model).inc()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        failures: list[str] = []
        for backend in self._attempts(model, self._session(request, body)):
            client = await backend.pool.acquire()
            backend.inflight += 1
            backend.requests += 1
            backend.recent.append(time.time())
            upstream = client.build_request("POST", backend.url + path, content=raw, headers=headers)
            try:
                reply = await client.send(upstream, stream=True)
            except httpx.HTTPError as exc:  # before the engine's headers: another engine may be tried
                backend.pool.release(client)
                backend.inflight -= 1
                failures.append(f"{backend.url}: {type(exc).__name__}: {exc}")
                log.warning("engine %s failed before its response headers (%s: %s); attempt %d of %d", backend.name,
                            type(exc).__name__, exc, len(failures), 1 + self.reroute_attempts)
                continue
            except BaseException:
                backend.pool.release(client)
                backend.inflight -= 1
                raise
            return self._relay(backend, client, reply, outcome)
        if not failures:  # no engine serves the model now
            outcome.record("no_backend")
            if self.known(model):
                return JSONResponse({"error": f"Model '{model}' is temporarily unavailable. Please try again later."},
                                    status_code=503)
            return JSONResponse({"error": f"Model '{model}' not found. Available models can be listed at /v1/models."},
                                status_code=404)
        outcome.record("error_5xx")
        return JSONResponse({"error": f"every attempt failed before the engine answered ({len(failures)} of "
                                      f"{1 + self.reroute_attempts} allowed): " + "; ".join(failures)},
                            status_code=500)

    def _relay(self, backend: Backend, client: httpx.AsyncClient, reply: httpx.Response, outcome: _Outcome) -> Response:
        """Pass the engine's response through as it comes, status and body as they are (an engine's 5xx
        too). If the engine breaks mid-body, the client's connection is closed: the body is cut, with no
        error event and no retry."""
        done = False
        scan = AbortScan()

        async def cleanup() -> None:
            nonlocal done
            if done:
                return
            done = True
            outcome.record("client_gone")  # a no-op when the relay recorded how it ended
            with anyio.CancelScope(shield=True):  # close upstream even when the client hung up
                await reply.aclose()
            backend.pool.release(client)
            backend.inflight -= 1

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.aiter_raw():
                    scan.feed(chunk)
                    yield chunk
            except httpx.HTTPError as exc:
                outcome.record("cut")
                log.warning("engine %s broke mid-response (%s: %s): closing the client's connection", backend.name,
                            type(exc).__name__, exc)
                raise UpstreamBroke(f"engine {backend.url} broke mid-response") from exc
            else:
                status = reply.status_code
                outcome.record("error_5xx" if status >= 500 else "bad_request" if status >= 400
                               else "aborted" if scan.aborted else "completed")
            finally:
                await cleanup()

        out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _STRIP_FROM_RESPONSE}
        # The background task also cleans up when the client left before the body was streamed.
        return StreamingResponse(relay(), status_code=reply.status_code, headers=out_headers,
                                 background=BackgroundTask(cleanup))

    def _build_app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            return await self._proxy(request, "/v1/completions")

        async def chat(request: Request) -> Response:
            return await self._proxy(request, "/v1/chat/completions")

        async def models(_: Request) -> Response:
            now = int(time.time())
            data = [{"id": m, "object": "model", "created": now, "owned_by": "vllm", "root": None}
                    for m in self.models()]
            return JSONResponse({"object": "list", "data": data})

        async def health(_: Request) -> Response:
            return JSONResponse({"status": "healthy"})

        async def metrics(_: Request) -> Response:
            self.healthy.clear()
            self.running.clear()
            for backend in self._backends.values():
                self.healthy.labels(server=backend.url).set(1)
                self.running.labels(server=backend.url).set(backend.inflight)
            return Response(generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def list_engines(_: Request) -> Response:
            return JSONResponse({"engines": [b.as_dict() for b in self.engines()], "models": self.models()})

        async def admin_body(request: Request) -> dict[str, Any]:
            raw = await request.body()
            if not raw:
                return dict(request.query_params)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise HTTPException(400, "body is not JSON: expected {\"url\": …, \"model\": …}") from None
            if not isinstance(body, dict):
                raise HTTPException(400, "body must be a JSON object: {\"url\": …, \"model\": …}")
            return body

        async def add_engine(request: Request) -> Response:
            body = await admin_body(request)
            url, model, name = body.get("url"), body.get("model"), body.get("name")
            if not isinstance(url, str) or any(v is not None and not isinstance(v, str) for v in (model, name)):
                return JSONResponse({"error": "expected {\"url\": \"http://127.0.0.1:8001\", \"model\": \"…\"} "
                                              "or {\"name\": POD, \"url\": …} (the gateway asks /v1/models)"},
                                    status_code=400)
            if not url.startswith(("http://", "https://")):
                return JSONResponse({"error": f"engine url must start with http:// — got {url!r}"}, status_code=400)
            existed = (name or url.rstrip("/")) in self._backends
            if model is None:
                found = await self.discover(name or url, url)
                if found is None:
                    return JSONResponse({"error": f"engine {url} lists no model at /v1/models: not in rotation"},
                                        status_code=409)
                return JSONResponse(found.as_dict(), status_code=200 if existed else 201)
            try:
                backend = self.add_engine(url, model, name=name)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(backend.as_dict(), status_code=200 if existed else 201)

        async def delete_engine(request: Request) -> Response:
            body = await admin_body(request)
            key = body.get("name", body.get("url"))
            if not isinstance(key, str):
                return JSONResponse({"error": "expected {\"name\": POD} or {\"url\": \"http://127.0.0.1:8001\"}"},
                                    status_code=400)
            if not self.remove_engine(key):
                return JSONResponse({"error": f"no engine {key} in the gateway"}, status_code=404)
            return JSONResponse({"removed": key.rstrip("/")})

        async def http_error(_: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

        async def server_error(_: Request, exc: Exception) -> Response:
            return JSONResponse({"error": f"gateway error: {type(exc).__name__}: {exc}"}, status_code=500)

        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        routes = [
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/admin/engines", list_engines, methods=["GET"]),
            Route("/admin/engines", add_engine, methods=["POST"]),
            Route("/admin/engines", delete_engine, methods=["DELETE"]),
        ]
        return Starlette(routes=routes, lifespan=asynccontextmanager(lifespan),
                         exception_handlers={HTTPException: http_error, Exception: server_error})
