"""The engine's OpenAI API over real HTTP (uvicorn in a thread): shapes, streaming, errors."""

import json

import httpx
import pytest

from vllm_stack_e2e.sim.api import engine_app
from vllm_stack_e2e.sim.engine import Engine, EngineConfig
from vllm_stack_e2e.sim.host import serve, wait_until


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="org/model-a", served_model_names=("model-a", "alias"), max_num_seqs=4,
                               max_model_len=512, kv_cache_tokens=4096, prefill_tokens_per_s=1e6,
                               inter_token_latency=0.002, default_max_tokens=16))


@pytest.fixture(scope="module")
def client(engine):
    with serve(engine_app(engine)) as handle, httpx.Client(base_url=handle.url, timeout=10) as c:
        yield c


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_health_version_and_models(client):
    assert client.get("/health").status_code == 200
    assert "version" in client.get("/version").json()
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["model-a", "alias"]
    assert models["data"][0]["root"] == "org/model-a" and models["data"][0]["max_model_len"] == 512


def test_completion_honours_max_tokens_and_fills_usage(client):
    body = client.post("/v1/completions", json={"model": "model-a", "prompt": "Hi " * 10, "max_tokens": 5}).json()
    assert body["object"] == "text_completion" and body["model"] == "model-a"
    assert body["choices"][0]["finish_reason"] == "length"
    assert len(body["choices"][0]["text"].split()) == 5
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_completion_defaults_to_16_tokens_and_the_served_model(client):
    body = client.post("/v1/completions", json={"prompt": "Hi"}).json()
    assert body["usage"]["completion_tokens"] == 16 and body["model"] == "model-a"


def test_streamed_completion_sends_one_chunk_per_token_then_usage_then_done(client):
    request = {"model": "alias", "prompt": "Hi there", "max_tokens": 4, "stream": True,
               "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    tokens, usage = chunks[:-1], chunks[-1]
    assert len(tokens) == 4 and all(c["object"] == "text_completion" for c in tokens)
    assert [c["choices"][0]["finish_reason"] for c in tokens] == [None, None, None, "length"]
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_streamed_chat_starts_with_the_assistant_role(client):
    request = {"model": "model-a", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        chunks = [json.loads(e) for e in sse_events(response) if e != "[DONE]"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:]] and len(chunks) == 4
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_chat_completion_answers_with_a_message(client):
    body = client.post("/v1/chat/completions", json={
        "model": "model-a", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 2}).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("path, payload, status, fragment", [
    ("/v1/completions", {"model": "nope", "prompt": "Hi"}, 404, "does not exist"),
    ("/v1/completions", b"{not json", 400, "not valid JSON"),
    ("/v1/completions", [1, 2], 400, "JSON object"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": -1}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": "x"}, 400, "max_tokens"),
    ("/v1/completions", {"model": "model-a"}, 400, "'prompt' is required"),
    ("/v1/completions", {"prompt": ["a", "b"]}, 400, "batched prompts"),
    ("/v1/completions", {"prompt": "Hi " * 600}, 400, "maximum context length is 512"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": 600}, 400, "maximum context length is 512"),
    ("/v1/completions", {"prompt": "", "max_tokens": 1}, 400, "cannot be empty"),
    ("/v1/chat/completions", {"messages": "Hi"}, 400, "'messages'"),
    ("/v1/chat/completions", {"messages": [{"content": "Hi"}]}, 400, "'role'"),
])
def test_bad_requests_get_vllm_shaped_errors(client, path, payload, status, fragment):
    if isinstance(payload, bytes):
        response = client.post(path, content=payload, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert error["type"] == {400: "BadRequestError", 404: "NotFoundError"}[status]
    assert fragment in error["message"]


def test_unknown_routes_and_methods_get_json_not_a_crash(client):
    assert client.get("/v2/nothing").status_code == 404
    assert client.get("/v2/nothing").json() == {"detail": "Not Found"}
    assert client.get("/v1/completions").status_code == 405


def test_a_client_that_goes_away_frees_its_slot(client, engine):
    before = engine.aborted_requests
    request = {"prompt": "Hi", "max_tokens": 400, "stream": True}
    with client.stream("POST", "/v1/completions", json=request) as response:
        next(response.iter_lines())
    wait_until(lambda: engine.aborted_requests > before and engine.num_running == 0, 5,
               "engine aborting the abandoned stream")
    assert engine.num_running == 0


def test_the_harness_installs_no_command_named_vllm() -> None:
    """A test tool must never take over the name of the tool it tests: installing the harness on a
    machine with vLLM must leave the real `vllm` alone. The simulator's command is `vllm-sim`."""
    import tomllib

    from vllm_stack_e2e.config import REPO_ROOT

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "vllm" not in scripts and scripts.get("vllm-sim") == "vllm_stack_e2e.sim.cli:main", scripts
