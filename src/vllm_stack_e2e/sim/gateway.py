"""A router-like gateway in front of simulated engines, standing in for the production-stack
router (`vllm-router-service`).

What it shares with the real router: the OpenAI routes proxied to an engine serving the
requested model, with streaming passed through; `vllm:num_incoming_requests_total{model}`
counted for every request that names a model, *before* an engine is chosen (so it counts
while the model is scaled to zero); HTTP 503 for a model that is known but has no engine
now, 404 for a model never known; errors as `{"error": "<message>"}`; `/metrics` in the
Prometheus text format whatever the Accept header says (the router calls `generate_latest`
directly), with per-server gauges `vllm:healthy_pods_total{server}` and
`vllm:num_requests_running{server}` (its own in-flight count), and
`vllm:num_requests_waiting{server}` declared but never set, as in the router — so
`sum(vllm:num_requests_waiting)` still reads only the engines.

What replaces the router's Kubernetes discovery: engines are added and removed at run time,
by Python (`add_engine` / `remove_engine`) or over HTTP (`GET/POST/DELETE /admin/engines`,
body `{"url": "http://127.0.0.1:8001", "model": "…"}`). A model is known once named with
`--model`/`models=` or served by an engine that was ever added.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Iterable
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

ROUTING = ("round-robin", "least-loaded")
_HOP_BY_HOP = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length",
               "upgrade", "te", "trailer", "accept-encoding"}
_STRIP_FROM_RESPONSE = {"content-length", "content-encoding", "transfer-encoding", "connection", "date", "server"}
_ENGINE_TIMEOUT = httpx.Timeout(None, connect=5.0)  # streams last as long as the engine needs


@dataclass
class Backend:
    """One engine the gateway may route to."""

    url: str
    model: str
    added_at: float = field(default_factory=time.time)
    inflight: int = 0
    requests: int = 0
    pool: ClientPool = field(default_factory=lambda: ClientPool(None, _ENGINE_TIMEOUT), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The public view (for /admin/engines)."""
        return {"url": self.url, "model": self.model, "inflight": self.inflight, "requests": self.requests,
                "added_at": self.added_at}


class Gateway:
    """Routes OpenAI requests to engines by model; counts them like the production-stack router."""

    def __init__(self, models: Iterable[str] = (), *, routing: str = "round-robin",
                 registry: CollectorRegistry | None = None) -> None:
        if routing not in ROUTING:
            raise ValueError(f"routing must be one of {', '.join(ROUTING)}, got {routing!r}")
        self.routing = routing
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._told: list[str] = list(dict.fromkeys(models))
        self._seen: set[str] = set(self._told)
        self._backends: dict[str, Backend] = {}
        self._rr = itertools.count()
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
        self.app = self._build_app()

    # -- engines -----------------------------------------------------------------------
    def add_engine(self, url: str, model: str | None = None) -> Backend:
        """Route `model` (default: the first known model) to the engine at `url`; idempotent."""
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"engine url must start with http:// — got {url!r}")
        model = model or (self._told[0] if self._told else None)
        if not model:
            raise ValueError(f"no model given for engine {url} and the gateway knows none — pass model=")
        existing = self._backends.get(url)
        if existing is not None and existing.model == model:
            return existing
        backend = Backend(url=url, model=model)
        if existing is not None:
            self._retired.append(existing)
        self._backends[url] = backend
        self._seen.add(model)
        return backend

    def remove_engine(self, url: str) -> bool:
        """Stop routing to `url`; False if it was not there. In-flight requests finish."""
        backend = self._backends.pop(url.rstrip("/"), None)
        if backend is not None:
            self._retired.append(backend)  # its connections close once its streams are done
        return backend is not None

    def engines(self) -> list[Backend]:
        return list(self._backends.values())

    def models(self) -> list[str]:
        """Models listed by /v1/models: the engines' models, then the ones named at start."""
        return list(dict.fromkeys([b.model for b in self._backends.values()] + self._told))

    def _choose(self, model: str) -> Backend | None:
        candidates = [b for b in self._backends.values() if b.model == model]
        if not candidates:
            return None
        turn = next(self._rr)
        if self.routing == "least-loaded":
            low = min(b.inflight for b in candidates)
            candidates = [b for b in candidates if b.inflight == low]
        return candidates[turn % len(candidates)]

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

    async def _proxy(self, request: Request, path: str) -> Response:
        if self._retired:
            await self._reap()
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "Invalid request: body is not JSON."}, status_code=400)
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str):
            return JSONResponse({"error": "Invalid request: missing 'model' in request body."}, status_code=400)
        self.incoming.labels(model=model).inc()
        backend = self._choose(model)
        if backend is None:
            if model in self._seen:
                return JSONResponse({"error": f"Model '{model}' is temporarily unavailable. Please try again later."},
                                    status_code=503)
            return JSONResponse({"error": f"Model '{model}' not found. Available models can be listed at /v1/models."},
                                status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        pool = backend.pool
        client = await pool.acquire()
        upstream = client.build_request("POST", backend.url + path, content=raw, headers=headers)
        backend.inflight += 1
        backend.requests += 1
        done = False

        async def cleanup(reply: httpx.Response | None = None) -> None:
            nonlocal done
            if done:
                return
            done = True
            if reply is not None:
                with anyio.CancelScope(shield=True):  # close upstream even when the client hung up
                    await reply.aclose()
            pool.release(client)
            backend.inflight -= 1

        try:
            reply = await client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            await cleanup()
            return JSONResponse({"error": f"engine {backend.url} unreachable: {type(exc).__name__}: {exc}"},
                                status_code=502)
        except BaseException:
            await cleanup()
            raise

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the engine went away mid-stream: end the response
            finally:
                await cleanup(reply)

        out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _STRIP_FROM_RESPONSE}
        # The background task also cleans up when the client left before the body was streamed.
        return StreamingResponse(relay(), status_code=reply.status_code, headers=out_headers,
                                 background=BackgroundTask(cleanup, reply))

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
            url, model = body.get("url"), body.get("model")
            if not isinstance(url, str) or (model is not None and not isinstance(model, str)):
                return JSONResponse({"error": "expected {\"url\": \"http://127.0.0.1:8001\", \"model\": \"…\"}"},
                                    status_code=400)
            existed = url.rstrip("/") in self._backends
            try:
                backend = self.add_engine(url, model)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(backend.as_dict(), status_code=200 if existed else 201)

        async def delete_engine(request: Request) -> Response:
            body = await admin_body(request)
            url = body.get("url")
            if not isinstance(url, str):
                return JSONResponse({"error": "expected {\"url\": \"http://127.0.0.1:8001\"}"}, status_code=400)
            if not self.remove_engine(url):
                return JSONResponse({"error": f"no engine {url} in the gateway"}, status_code=404)
            return JSONResponse({"removed": url.rstrip("/")})

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
