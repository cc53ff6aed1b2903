"""The engine's OpenAI-compatible HTTP API (what `vllm serve` answers), as a Starlette app.

Routes: `GET /health`, `GET /version`, `GET /v1/models`, `POST /v1/completions`,
`POST /v1/chat/completions` (streaming SSE ending in `data: [DONE]`, or one JSON body),
`GET /metrics` (format negotiated from the Accept header by prometheus_client, as vLLM
does), and `GET /sim/state` (the simulator's own scheduler view; not part of vLLM).

With an API key (`--api-key`, or `VLLM_API_KEY` in the environment, as vLLM reads them) every
route but vLLM's public ones (`/health`, `/ping`, `/load`, `/version`, `/metrics`) and the
simulator's `/sim/state` answers 401 `{"error": "Unauthorized"}` unless the request carries
`Authorization: Bearer <key>` — vLLM's authentication middleware, rewritten here.

On SIGTERM the engine follows `sim.shutdown` (docs/termination.md): with vLLM ≥ 0.18's
`--shutdown-timeout 0` a request in flight ends with the tokens it has and `finish_reason: "abort"`
(a stream gets a last chunk saying so, then `data: [DONE]`); during the shutdown new requests are
answered at once the same way, with no text, while `/health` stays 200.

Errors use vLLM's shape `{"error": {"message", "type", "param", "code"}}` with `code` the
HTTP status: unknown model 404 `NotFoundError`; malformed JSON, bad fields and prompts
longer than `max_model_len` 400 `BadRequestError`. Differences from vLLM: one prompt per
request (no batched prompts), `n` must be 1, no gzip on /metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .engine import Engine, Sequence
from .shutdown import EngineShutdown, TrackResponses
from .tokens import count_chat_tokens, count_prompt_tokens, message_text, output_text, token_text

SIM_VERSION = "0.0.0+vllm-stack-e2e.sim"
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 405: "MethodNotAllowedError",
                500: "InternalServerError", 503: "ServiceUnavailableError"}


class ApiError(Exception):
    """A request the engine refuses, with the HTTP status vLLM would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    """vLLM's error body for `status`."""
    body = {"error": {"message": message, "type": _ERROR_TYPES.get(status, "Error"), "param": None, "code": status}}
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True)
class GenerationRequest:
    """What the engine needs from a completions or chat request."""

    kind: str  # "completion" | "chat"
    model: str
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError(400)."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _int_field(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{name}' must be an integer, got {value!r}")
    if value < minimum:
        raise ApiError(400, f"'{name}' must be at least {minimum}, got {value}")
    return value


def _prompt_tokens(body: dict[str, Any]) -> int:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return count_prompt_tokens(prompt)
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return count_prompt_tokens(prompt)
    if prompt is None:
        raise ApiError(400, "'prompt' is required")
    if isinstance(prompt, list):
        raise ApiError(400, "batched prompts are not supported by the simulator: send one prompt per request")
    raise ApiError(400, f"'prompt' must be a string or a list of token ids, got {type(prompt).__name__}")


def _chat_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(400, "each message must be an object with a 'role' string")
        try:
            message_text(message.get("content"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    return count_chat_tokens(messages)


def parse_generation(body: dict[str, Any], kind: str, engine: Engine) -> GenerationRequest:
    """Validate a completions/chat body against the engine, as vLLM would."""
    cfg = engine.config
    model = body.get("model")
    if model is None:
        model = cfg.model_name  # vLLM serves the only model when none is named
    if not isinstance(model, str):
        raise ApiError(400, f"'model' must be a string, got {model!r}")
    if model not in cfg.names:
        raise ApiError(404, f"The model `{model}` does not exist.")
    n = _int_field(body, "n", 1)
    if n not in (None, 1):
        raise ApiError(400, f"'n' must be 1 in the simulator, got {n}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, f"'stream' must be a boolean, got {stream!r}")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object")
    prompt_tokens = _prompt_tokens(body) if kind == "completion" else _chat_tokens(body)
    if prompt_tokens < 1:
        raise ApiError(400, "The prompt cannot be empty.")
    max_tokens = _int_field(body, "max_tokens", 1)
    if kind == "chat":
        max_tokens = _int_field(body, "max_completion_tokens", 1) or max_tokens
    if max_tokens is None:
        max_tokens = min(cfg.default_max_tokens, max(cfg.max_model_len - prompt_tokens, 1))
    if prompt_tokens + max_tokens > cfg.max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {cfg.max_model_len} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} in the "
            "completion). Please reduce the length of the prompt or the completion.",
        )
    return GenerationRequest(kind, model, prompt_tokens, max_tokens, stream, bool(options.get("include_usage")))


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _generate_whole(request: Request, engine: Engine, seq: Sequence) -> bool:
    """Run `seq` to the end; False if the client disconnected first (then the request is aborted)."""

    async def drain() -> None:
        async for _ in engine.tokens(seq):
            pass

    work = asyncio.ensure_future(drain())
    watch = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            engine.abort(seq)
    return work.done() and not work.cancelled()


class _Chunks:
    """Pre-rendered SSE chunk templates for one streamed request (JSON only for the token text)."""

    def __init__(self, gen: GenerationRequest, rid: str, created: int) -> None:
        model = json.dumps(gen.model)
        if gen.kind == "completion":
            self.head = f'data: {{"id":"{rid}","object":"text_completion","created":{created},"model":{model},' \
                        '"choices":[{"index":0,"text":'
            self.tail = ',"logprobs":null,"finish_reason":%s,"stop_reason":null}],"usage":null}\n\n'
            self.first = ""
        else:
            self.head = f'data: {{"id":"{rid}","object":"chat.completion.chunk","created":{created},"model":{model},' \
                        '"choices":[{"index":0,"delta":{"content":'
            self.tail = '},"logprobs":null,"finish_reason":%s}]}\n\n'
            self.first = (f'data: {{"id":"{rid}","object":"chat.completion.chunk","created":{created},"model":{model},'
                          '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
                          '"finish_reason":null}]}\n\n')
        obj = "text_completion" if gen.kind == "completion" else "chat.completion.chunk"
        self.usage_head = f'data: {{"id":"{rid}","object":"{obj}","created":{created},"model":{model},"choices":[],"usage":'

    def token(self, index: int, last: bool) -> str:
        return self.head + json.dumps(token_text(index)) + (self.tail % ('"length"' if last else "null"))

    def finish(self, reason: str) -> str:
        """A last chunk with no text that only carries the finish reason (an aborted request's)."""
        return self.head + '""' + (self.tail % json.dumps(reason))

    def usage(self, prompt_tokens: int, completion_tokens: int) -> str:
        return self.usage_head + json.dumps(_usage(prompt_tokens, completion_tokens), separators=(",", ":")) + "}\n\n"


async def _stream(engine: Engine, seq: Sequence, gen: GenerationRequest, rid: str, created: int) -> AsyncIterator[str]:
    chunks = _Chunks(gen, rid, created)
    sent = 0
    try:
        async for new in engine.tokens(seq):
            parts = [chunks.first] if sent == 0 and chunks.first else []
            for _ in range(new):
                sent += 1
                parts.append(chunks.token(sent - 1, sent == gen.max_tokens))
            yield "".join(parts)
        if seq.finish_reason == "abort":  # ended by the engine's shutdown: say so, then [DONE]
            yield (chunks.first if sent == 0 else "") + chunks.finish("abort")
        if gen.include_usage:
            yield chunks.usage(gen.prompt_tokens, sent)
        yield "data: [DONE]\n\n"
    finally:
        engine.abort(seq)  # no-op when finished; frees the slot when the client went away


def _whole_body(gen: GenerationRequest, seq: Sequence, rid: str, created: int) -> dict[str, Any]:
    text = output_text(seq.generated)
    usage = _usage(gen.prompt_tokens, seq.generated)
    if gen.kind == "completion":
        choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None,
                                  "finish_reason": seq.finish_reason, "stop_reason": None}
        return {"id": rid, "object": "text_completion", "created": created, "model": gen.model,
                "choices": [choice], "usage": usage}
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
              "finish_reason": seq.finish_reason, "stop_reason": None}
    return {"id": rid, "object": "chat.completion", "created": created, "model": gen.model,
            "choices": [choice], "usage": usage}


PUBLIC_PATHS = ("/health", "/ping", "/load", "/version", "/metrics", "/sim/state")


class RequireApiKey:
    """ASGI middleware: a request outside PUBLIC_PATHS needs `Authorization: Bearer <one of the keys>`."""

    def __init__(self, app: Any, keys: tuple[str, ...]) -> None:
        self.app = app
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    def _allowed(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        if scope.get("method") == "OPTIONS" or any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS):
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        digest = hashlib.sha256(token.encode()).digest()
        return any(hmac.compare_digest(digest, known) for known in self._digests)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self._allowed(scope):
            await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def engine_app(engine: Engine, api_keys: tuple[str, ...] = (), shutdown: EngineShutdown | None = None) -> Starlette:
    """The HTTP face of one engine; with `api_keys`, vLLM's API-key check in front of it. `shutdown`
    is the engine's SIGTERM handling (`sim.shutdown`; one that never begins when not given)."""
    shutdown = shutdown if shutdown is not None else EngineShutdown(engine)

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    async def version(_: Request) -> Response:
        return JSONResponse({"version": SIM_VERSION})

    async def models(_: Request) -> Response:
        cfg = engine.config
        created = int(engine.started_at)
        data = [{"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": cfg.model,
                 "parent": None, "max_model_len": cfg.max_model_len} for name in cfg.names]
        return JSONResponse({"object": "list", "data": data})

    async def generate(request: Request, kind: str) -> Response:
        try:
            gen = parse_generation(await read_json_object(request), kind, engine)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        prefix = "cmpl" if kind == "completion" else "chatcmpl"
        rid = f"{prefix}-{uuid.uuid4().hex}"
        created = int(time.time())
        if shutdown.refusing:  # vLLM ≥ 0.18 shutting down: answered at once, finish_reason abort, no text
            seq = engine.add_aborted(gen.prompt_tokens, gen.max_tokens, rid)
        else:
            seq = engine.add_request(gen.prompt_tokens, gen.max_tokens, rid)
        if gen.stream:
            return StreamingResponse(_stream(engine, seq, gen, rid, created), media_type="text/event-stream")
        if not await _generate_whole(request, engine, seq):
            return error_response(400, "client disconnected before the completion finished")
        return JSONResponse(_whole_body(gen, seq, rid, created))

    async def completions(request: Request) -> Response:
        return await generate(request, "completion")

    async def chat(request: Request) -> Response:
        return await generate(request, "chat")

    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        engine.last_scrape_accept = accept
        engine.refresh_gauges()
        encoder, content_type = choose_encoder(accept)
        return Response(encoder(engine.metrics.exposition), headers={"Content-Type": content_type})

    async def state(_: Request) -> Response:
        return JSONResponse({**engine.stats(), "shutdown": shutdown.state()})

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    async def server_error(_: Request, exc: Exception) -> Response:
        return error_response(500, f"simulator error: {type(exc).__name__}: {exc}")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/sim/state", state, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.add_middleware(TrackResponses, shutdown=shutdown)
    if api_keys:
        app.add_middleware(RequireApiKey, keys=tuple(api_keys))
    return app
