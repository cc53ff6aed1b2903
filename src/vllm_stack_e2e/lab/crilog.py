"""Run a command and write its output as a CRI container log, the format `kubectl logs`
reads through KWOK's Logs resource: `<RFC3339Nano time> <stdout|stderr> F <line>`.

    python -m vllm_stack_e2e.lab.crilog --out FILE -- ARGV...

SIGTERM/SIGINT are passed on to the command; the exit code is the command's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import subprocess
import sys
import threading
from typing import IO


def cri_line(stream: str, text: str, now: dt.datetime | None = None) -> str:
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} {stream} F {text.rstrip(chr(10))}\n"


def _copy(src: IO[bytes], stream: str, out: IO[str], lock: threading.Lock) -> None:
    for raw in iter(src.readline, b""):
        with lock:
            out.write(cri_line(stream, raw.decode(errors="replace")))
            out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    with open(args.out, "a", encoding="utf-8") as out:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda s, _f: child.send_signal(s))
        lock = threading.Lock()
        threads = [threading.Thread(target=_copy, args=(child.stdout, "stdout", out, lock), daemon=True),
                   threading.Thread(target=_copy, args=(child.stderr, "stderr", out, lock), daemon=True)]
        for thread in threads:
            thread.start()
        code = child.wait()
        for thread in threads:
            thread.join(timeout=2)
    return code


if __name__ == "__main__":
    sys.exit(main())
