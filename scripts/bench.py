#!/usr/bin/env python3
"""`make bench`: how fast the load generator is, and how many streams one simulated engine
carries with honest token timing. Every measurement is bounded (about 10 s each).

(a) Requests/s of the load generator (pinned to CPU 0) against a zero-latency engine
    (pinned to CPU 1), next to `wrk` on the same core and endpoint as the ceiling.
(b) The engine's capacity on one core: the most concurrent streaming requests for which
    the inter-token gaps stay within 5 % of the configured latency on average, measured
    at the client (end to end) and inside the engine (its timers).
(c) For each GPU engine preset (docs/engines.md): whether one engine at the preset's decode
    step holds the streams the page's load puts on it (what it runs at once + the queue).

    .venv/bin/python scripts/bench.py [--seconds 10] [--itl 0.05] [--json reports/bench.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vllm_stack_e2e.lab.processes import ManagedProcess, ProcessSpec
from vllm_stack_e2e.net import free_port
from vllm_stack_e2e.sim import presets
from vllm_stack_e2e.sim.host import engine_argv, wait_http_ok
from vllm_stack_e2e.steps import step6_scale_up

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLIENT_CPU, SERVER_CPU = 0, 1
ERROR_BUDGET = 0.05
PAGE_THRESHOLD = 5  # the page's trigger threshold: the queue step 6 holds above it


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") else argv


@dataclass
class Row:
    what: str
    value: str
    notes: str


def start_engine(work: Path, name: str, sim: dict[str, object], max_num_seqs: int) -> tuple[ManagedProcess, str]:
    port = free_port(HOST)
    # A step's budget of one token per sequence: every stream decodes each step (vLLM also
    # refuses a budget below max_num_seqs).
    argv = pinned(SERVER_CPU, engine_argv("bench", HOST, port, max_num_seqs=max_num_seqs, sim=sim,
                                          extra=["--max-num-batched-tokens", str(max_num_seqs)]))
    proc = ManagedProcess(ProcessSpec(name=name, argv=argv, log=work / f"{name}.log"), work / f"{name}.pid")
    proc.start()
    url = f"http://{HOST}:{port}"
    wait_http_ok(url + "/health", 15, name)
    return proc, url


# -- (a) load generator vs wrk ------------------------------------------------------------
def run_generator(url: str, seconds: float, concurrency: int, stream: bool, work: Path) -> float:
    out = work / f"gen-{'stream' if stream else 'plain'}.json"
    argv = pinned(CLIENT_CPU, [sys.executable, str(REPO / "scripts/load_generator.py"), "--openai_api_base",
                               url + "/v1", "--model", "bench", "--num-requests", "10000000", "--concurrency",
                               str(concurrency), "--duration", str(seconds), "--max-tokens", "1", "--prompt-len", "4",
                               "--stream" if stream else "--no-stream", "--json", str(out)])
    subprocess.run(argv, check=False, capture_output=True, timeout=seconds + 60)
    result = json.loads(out.read_text())
    return float(result["throughput_rps"])


def run_wrk(url: str, seconds: float, concurrency: int, work: Path) -> float | None:
    if not shutil.which("wrk"):
        return None
    script = work / "post.lua"
    body = json.dumps({"model": "bench", "prompt": "Hi Hi Hi Hi", "max_tokens": 1})
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [[{body}]]\n")
    argv = pinned(CLIENT_CPU, ["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "-s", str(script),
                               url + "/v1/completions"])
    out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=seconds + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"warning: wrk saw {non2xx.group(1)} non-2xx responses", file=sys.stderr)
    return float(match.group(1)) if match else None


# -- (b) engine capacity ------------------------------------------------------------------
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


@dataclass
class Level:
    streams: int
    driver: str  # wrk (C, drains fast) or httpx (the load generator's client, parses every chunk)
    requests: int
    errors: int
    engine_error: float  # mean |gap - itl| / itl, from the engine's timers
    client_error: float | None  # the same at the client, per token (httpx driver only)
    stretch_p99: float | None  # p99 request duration / ideal - 1 (wrk driver only)
    tokens_per_s: float
    engine_cpu: float  # share of one core the engine used

    @property
    def ok(self) -> bool:
        worst = max(x for x in (self.engine_error, self.client_error, self.stretch_p99) if x is not None)
        return self.requests > 0 and self.errors == 0 and worst < ERROR_BUDGET


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _engine_window(url: str, pid: int):  # type: ignore[no-untyped-def]
    """Snapshot the engine's timing counters and CPU; the returned function reads the deltas."""
    before, cpu0, t0 = httpx.get(url + "/sim/state").json(), _cpu_seconds(pid), time.monotonic()

    def close(itl: float) -> tuple[float, int, float]:
        after = httpx.get(url + "/sim/state").json()
        gaps = after["itl_gaps"] - before["itl_gaps"]
        error = (after["itl_abs_deviation"] - before["itl_abs_deviation"]) / max(gaps, 1) / itl
        return error, gaps, (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)

    return close, t0


def wrk_level(url: str, pid: int, streams: int, itl: float, seconds: float, work: Path) -> Level:
    max_tokens = max(int(4.0 / itl), 10)
    script = work / "stream.lua"
    body = json.dumps({"model": "bench", "prompt": "Hi", "max_tokens": max_tokens, "stream": True})
    # Each connection's first request starts at a random point of the first second, so the
    # streams' token clocks are out of phase (as real clients are), not all firing together.
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [[{body}]]\nlocal started = 0\n"
                      f"function delay()\n  started = started + 1\n"
                      f"  if started <= {streams} then return math.random(0, 1000) end\n  return 0\nend\n")
    close, t0 = _engine_window(url, pid)
    argv = pinned(CLIENT_CPU, ["wrk", "-t1", f"-c{streams}", f"-d{int(seconds)}s", "--timeout", "60s", "--latency",
                               "-s", str(script), url + "/v1/completions"])
    out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=seconds + 90).stdout
    engine_error, gaps, cpu = close(itl)
    elapsed = time.monotonic() - t0
    done = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    ideal = (max_tokens - 1) * itl
    stretch = _seconds(p99.group(1)) / ideal - 1 if p99 else None
    return Level(streams, "wrk", int(done.group(1)) if done else 0, errors, engine_error, None, stretch,
                 (gaps + streams) / elapsed, cpu)


async def _stream(client: httpx.AsyncClient, url: str, max_tokens: int, delay: float, gaps: list[float]) -> bool:
    await asyncio.sleep(delay)
    body = {"model": "bench", "prompt": "Hi", "max_tokens": max_tokens, "stream": True}
    last: float | None = None
    seen = 0
    async with client.stream("POST", url + "/v1/completions", json=body) as resp:
        if resp.status_code != 200:
            return False
        async for line in resp.aiter_lines():
            if not line.startswith('data: {"id"'):
                continue
            now = time.perf_counter()
            json.loads(line[6:])  # parse like the load generator does
            if last is not None:
                gaps.append(now - last)
            last = now
            seen += 1
    return seen == max_tokens


async def _httpx_level(url: str, pid: int, streams: int, itl: float, seconds: float) -> Level:
    from vllm_stack_e2e.load import ClientPool

    max_tokens = max(int(seconds / itl), 10)
    gaps: list[float] = []
    close, t0 = _engine_window(url, pid)
    async with ClientPool(streams, httpx.Timeout(seconds * 4 + 30)) as pool:
        spread = min(1.0, itl * 20)  # stagger starts so token clocks are out of phase

        async def one(i: int) -> bool:
            async with pool.lease() as client:
                return await _stream(client, url, max_tokens, spread * i / streams, gaps)

        results = await asyncio.gather(*(one(i) for i in range(streams)), return_exceptions=True)
    engine_error, n_gaps, cpu = close(itl)
    client_error = sum(abs(g - itl) for g in gaps) / max(len(gaps), 1) / itl
    errors = sum(1 for r in results if r is not True)
    return Level(streams, "httpx", streams, errors, engine_error, client_error, None,
                 (n_gaps + streams) / (time.monotonic() - t0), cpu)


def capacity(work: Path, itl: float, seconds: float, levels: list[int], driver: str) -> list[Level]:
    proc, url = start_engine(work, f"engine-capacity-{driver}", {"inter-token-latency": itl,
                                                                 "prefill-tokens-per-s": 1e9,
                                                                 "kv-cache-tokens": 10**8}, max_num_seqs=100000)
    measured: list[Level] = []
    try:
        for streams in levels:
            if driver == "wrk":
                level = wrk_level(url, proc.pid or 0, streams, itl, seconds, work)
            else:
                level = asyncio.run(_httpx_level(url, proc.pid or 0, streams, itl, seconds))
            measured.append(level)
            detail = (f"client error {level.client_error:6.2%}" if level.client_error is not None
                      else f"p99 duration +{level.stretch_p99:6.2%}" if level.stretch_p99 is not None else "")
            print(f"  {driver:>5} {streams:>5} streams: engine error {level.engine_error:6.2%}, {detail}, "
                  f"{level.tokens_per_s:7.0f} tokens/s, engine CPU {level.engine_cpu:4.0%}, errors {level.errors}"
                  f"{'' if level.ok else '  <- over budget'}", flush=True)
            if not level.ok:
                break
    finally:
        proc.stop()
    return measured


def _best(measured: list[Level]) -> Level | None:
    passing = [lv for lv in measured if lv.ok]
    return passing[-1] if passing else None


def measure_ab(args: argparse.Namespace, work: Path, rows: list[Row]) -> tuple[list[Level], list[Level]]:
    """(a) the load generator's requests/s, (b) the streams one engine carries at --itl."""
    print(f"(a) requests/s against a zero-latency engine on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}, "
          f"{args.concurrency} connections, {args.seconds:.0f} s each", flush=True)
    proc, url = start_engine(work, "engine-zero", {"inter-token-latency": 0, "prefill-tokens-per-s": 1e12,
                                                   "kv-cache-tokens": 10**8}, max_num_seqs=4096)
    try:
        plain = run_generator(url, args.seconds, args.concurrency, False, work)
        streamed = run_generator(url, args.seconds, args.concurrency, True, work)
        ceiling = run_wrk(url, args.seconds, args.concurrency, work)
    finally:
        proc.stop()
    rows.append(Row("load generator, non-streaming", f"{plain:.0f} req/s",
                    f"1 core, c={args.concurrency}, max_tokens 1"))
    rows.append(Row("load generator, streaming", f"{streamed:.0f} req/s", "same, SSE parsed per chunk"))
    if ceiling:
        rows.append(Row("wrk (ceiling)", f"{ceiling:.0f} req/s", f"1 core, c={args.concurrency}, same request"))
        rows.append(Row("generator / wrk", f"{plain / ceiling:.0%}", "non-streaming"))
    else:
        rows.append(Row("wrk (ceiling)", "n/a", "wrk not installed: apt-get install -y wrk"))
    levels = [int(x) for x in args.levels.split(",")]
    print(f"(b) streams one engine carries on CPU {SERVER_CPU} at ITL {args.itl * 1000:.0f} ms "
          f"(error budget {ERROR_BUDGET:.0%}), {args.seconds:.0f} s per level", flush=True)
    engine_levels = capacity(work, args.itl, args.seconds, levels, "wrk") if shutil.which("wrk") else []
    client_levels = capacity(work, args.itl, args.seconds, [lv for lv in levels if lv <= 800], "httpx")
    return engine_levels, client_levels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measurement (default 10)")
    p.add_argument("--itl", type=float, default=0.05, help="inter-token latency for the capacity test (default 0.05)")
    p.add_argument("--concurrency", type=int, default=32, help="connections for (a) (default 32)")
    p.add_argument("--levels", default="100,200,400,600,800,1200,1600",
                   help="stream counts tried for (b), in order, until one is over budget")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--presets-only", action="store_true", help="measure only (c), the engine presets")
    args = p.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("note: fewer than 2 CPUs — client and server share a core", file=sys.stderr)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CLIENT_CPU})  # this process is the client of (b)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vllm-bench-") as tmp:
        work = Path(tmp)
        engine_levels, client_levels = [], []
        if not args.presets_only:
            engine_levels, client_levels = measure_ab(args, work, rows)
        # (c) Each GPU preset's own timing at the streams the page's load puts on one engine (what it
        # runs at once, plus the queue step 6 drives): can the lab rehearse it honestly?
        preset_levels = []
        for preset in (pr for pr in presets.PRESETS.values() if pr.gpu is not None):
            need = preset.running_at_most(step6_scale_up.REQUEST_TOKENS) + 2 * PAGE_THRESHOLD
            print(f"(c) {preset.name}: {need} streams at ITL {preset.inter_token_latency * 1000:.0f} ms", flush=True)
            preset_levels.append((preset, need, capacity(work, preset.inter_token_latency, args.seconds, [need], "httpx")))
    for preset, need, measured in preset_levels:
        level = measured[0] if measured else None
        if level is None:
            rows.append(Row(f"preset {preset.name}", f"{need} streams", "not measured"))
            continue
        engine_ok = level.engine_error < ERROR_BUDGET
        client_ok = level.client_error is not None and level.client_error < ERROR_BUDGET
        verdict = ("holds" if engine_ok and client_ok else
                   "engine holds, the load generator's client does not" if engine_ok else "engine does NOT hold")
        rows.append(Row(f"preset {preset.name}", f"{need} streams",
                        f"{verdict} at ITL {preset.inter_token_latency * 1000:.0f} ms, every stream decoding "
                        f"(the worst case): engine error {level.engine_error:.1%}, client error "
                        f"{(level.client_error or 0):.1%}, {level.tokens_per_s:.0f} tokens/s"
                        + ("" if engine_ok and client_ok else
                           " — the lab cannot rehearse this preset's decode timing as clients see it"
                           + ("; the engine's own steps (and so its queue) keep their timing" if engine_ok else ""))))
    for name, measured, how in () if args.presets_only else (
        ("engine capacity, 1 core", engine_levels, "wrk holds the streams; engine timer error and p99 duration"),
        ("streams the generator follows", client_levels, "httpx client on 1 core; per-token error at the client"),
    ):
        best = _best(measured)
        over = "" if not measured or measured[-1].ok else f"; {measured[-1].streams} over budget"
        if best is None:
            rows.append(Row(name, "n/a" if not measured else f"< {measured[0].streams} streams", how + over))
            continue
        worst = max(x for x in (best.engine_error, best.client_error, best.stretch_p99) if x is not None)
        rows.append(Row(name, f"{best.streams} streams",
                        f"ITL {args.itl * 1000:.0f} ms, worst error {worst:.1%}, {best.tokens_per_s:.0f} tokens/s, "
                        f"engine CPU {best.engine_cpu:.0%}; {how}{over}"))
    width = max(len(r.what) for r in rows)
    print()
    print(f"| {'measurement':<{width}} | {'result':>14} | notes")
    print(f"|{'-' * (width + 2)}|{'-' * 16}|------")
    for r in rows:
        print(f"| {r.what:<{width}} | {r.value:>14} | {r.notes}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": [r.__dict__ for r in rows],
                                         "levels": [lv.__dict__ for lv in engine_levels + client_levels]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
