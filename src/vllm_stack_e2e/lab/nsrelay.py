"""TCP relays between the machine's loopback and a network namespace's loopback.

The lab runs KEDA inside its own network namespace, because two of KEDA's servers (the
metrics adapter's metrics port, the admission webhooks' port) take a port but no bind
address and would otherwise listen on every interface of the machine. Inside the
namespace there is only a loopback; this relay connects the two worlds, address for
address:

- `--out A:P`: listen on A:P inside the namespace, connect to A:P on the machine
  (KEDA → kube-apiserver, KEDA → Prometheus);
- `--in A:P`: listen on A:P on the machine, connect to A:P inside the namespace
  (kube-apiserver → KEDA's metrics API and webhooks).

A socket belongs to the network namespace it was created in, so the relay creates each
socket after entering the right namespace with setns(2) and then serves it from one
asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def netns(path: str | None) -> Iterator[None]:
    """Run the block in network namespace `path` (this thread only); None means stay."""
    if path is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns(back): {os.strerror(err)}")
    finally:
        os.close(own)
        os.close(target)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; at its end pass the half-close on (the other direction may still talk)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        with contextlib.suppress(Exception):
            writer.close()


async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
    """Copy both directions until both ends are done, then close both."""
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        for end in (writer, up_writer):
            with contextlib.suppress(Exception):
                end.close()


async def _serve(listen_ns: str | None, connect_ns: str | None, addr: str) -> asyncio.base_events.Server:
    host, port = _split(addr)
    with netns(listen_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with netns(connect_ns):
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, (host, port)), timeout=5)
        except (OSError, asyncio.TimeoutError):
            upstream.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        await splice(reader, writer, up_reader, up_writer)

    return await asyncio.start_server(handle, sock=sock)


async def run(namespace: str, inbound: list[str], outbound: list[str]) -> None:
    servers = [await _serve(None, namespace, a) for a in inbound]
    servers += [await _serve(namespace, None, a) for a in outbound]
    print(f"relaying in={inbound} out={outbound} netns={namespace}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="path of the namespace, e.g. /run/netns/NAME")
    parser.add_argument("--in", dest="inbound", action="append", default=[], metavar="ADDR:PORT")
    parser.add_argument("--out", dest="outbound", action="append", default=[], metavar="ADDR:PORT")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.netns, args.inbound, args.outbound))
    except OSError as exc:
        print(f"nsrelay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
