"""A streamed request read over a plain socket with h11, so a test can tell apart what an HTTP client
library blurs: a body that ended properly, a connection closed mid-body (a cut), and a read that
gets nothing (a stall). Every read has a budget."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import h11


class Stalled(Exception):
    """Nothing came within the read's budget; the connection is still open."""


class Cut(Exception):
    """The connection closed before the body's end (no terminating chunk)."""


class SseStream:
    """One `POST` with a JSON body whose answer is read event by event (`data:` payloads)."""

    def __init__(self, host: str, port: int, path: str, body: dict[str, Any], *, connect_timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.conn = h11.Connection(h11.CLIENT)
        payload = json.dumps(body).encode()
        head = h11.Request(method="POST", target=path,
                           headers=[("host", f"{host}:{port}"), ("content-type", "application/json"),
                                    ("content-length", str(len(payload))), ("connection", "close")])
        self.sock.sendall(self.conn.send(head) + self.conn.send(h11.Data(data=payload))
                          + self.conn.send(h11.EndOfMessage()))
        self.status: int | None = None
        self.payloads: list[str] = []  # every `data:` payload read so far
        self.ended = False  # the body ended properly
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SseStream":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------
    def _h11_event(self, deadline: float) -> Any:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise Cut(f"connection closed mid-body: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Stalled("nothing received within the read's budget")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise Stalled("nothing received within the read's budget") from None
            except ConnectionResetError:
                data = b""
            self.conn.receive_data(data)

    def next_payload(self, timeout: float) -> str | None:
        """The next `data:` payload; None once the body ended properly. Raises Stalled when nothing
        comes within `timeout` seconds, Cut when the connection closes mid-body."""
        deadline = time.monotonic() + timeout
        while True:
            if b"\n\n" in self._buffer:
                block, self._buffer = self._buffer.split(b"\n\n", 1)
                for line in block.decode().splitlines():
                    if line.startswith("data: "):
                        self.payloads.append(line[len("data: "):])
                        return self.payloads[-1]
                continue
            if self.ended:
                return None
            event = self._h11_event(deadline)
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif isinstance(event, h11.Data):
                self._buffer += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.ended = True
            elif isinstance(event, h11.ConnectionClosed):
                raise Cut("connection closed before the body's end")

    def read_tokens(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Read until `count` chunks carrying text arrived (within `timeout` in all); returns them."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while len(got) < count:
            payload = self.next_payload(max(deadline - time.monotonic(), 0.0))
            if payload is None:
                raise AssertionError(f"the body ended after {len(got)} token chunks, wanted {count}: {self.payloads}")
            chunk = _json(payload)
            if chunk and text_of(chunk):
                got.append(chunk)
        return got

    def read_to_end(self, timeout: float) -> list[str]:
        """Read everything up to the proper end of the body (Stalled/Cut propagate); returns the payloads read."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            payload = self.next_payload(max(deadline - time.monotonic(), 0.0))
            if payload is None:
                return seen
            seen.append(payload)


def _json(payload: str) -> dict[str, Any] | None:
    if payload == "[DONE]":
        return None
    return json.loads(payload)


def chunks(payloads: list[str]) -> list[dict[str, Any]]:
    """The JSON chunks among `payloads` (without `[DONE]`)."""
    return [chunk for chunk in map(_json, payloads) if chunk is not None]


def text_of(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return choices[0].get("text") or (choices[0].get("delta") or {}).get("content") or ""


def finish_reasons(payloads: list[str]) -> list[str]:
    """Every non-null finish_reason the chunks carried, in order."""
    return [choice["finish_reason"] for chunk in chunks(payloads) for choice in chunk.get("choices") or []
            if choice.get("finish_reason")]
