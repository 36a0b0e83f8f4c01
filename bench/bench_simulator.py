"""The provider simulator alone as a slow upstream: how many concurrent slow calls and streams
one process holds on this machine before it falls behind.

    .venv/bin/python -m bench.bench_simulator            # 500/1,000/2,000 x 1 s, 1,000 streams
    .venv/bin/python -m bench.bench_simulator --concurrency 2000 --duration 30

It starts `python -m simulator --latency 1000` (one process) on a loopback port, then per
concurrency C runs wrk (C connections, a short warm-up, then --duration seconds) with a small
chat completion, and after that C = --streams streaming requests of --stream-events events
spread over --stream-duration ms (set through PUT /_sim/latency). Per run it prints
requests/s next to the ideal rate C / call time, the mean/p50/p99/max call time, errors, and
the simulator's CPU use and RSS. A slow upstream must add nothing to the calls' own time:
mean and p99 close to the call time, no errors. (wrk counts only calls finished within the
run, so requests/s sits below the ideal by about one call per connection per run.)

Needs wrk (apt-get install wrk). The machine is shared: read the load average it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "simulator_load.lua"
_TICKS = os.sysconf("SC_CLK_TCK")


def _body(stream_events: int | None) -> str:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello to the gateway, please."}],
        "max_tokens": 16,
    }
    if stream_events is not None:
        # An OpenAI stream is a role chunk, one chunk per token, a finish chunk and [DONE].
        body.update(stream=True, max_tokens=stream_events - 3)
    return json.dumps(body, separators=(",", ":"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _control(base: str, method: str, path: str, body=None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wrk(url: str, connections: int, duration: float, body: str) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--timeout", "30s"]
    args += ["-s", str(LUA), url]
    out = subprocess.run(
        args,
        env={**os.environ, "BENCH_BODY": body},
        capture_output=True,
        text=True,
        timeout=duration + 60,
        preexec_fn=_raise_nofile,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    return json.loads(line.removeprefix("BENCH_JSON "))


def measure(pid, url, connections, call_s, args, body) -> dict:
    wrk(url, connections, args.warmup, body)
    cpu0, load0 = _cpu_seconds(pid), os.getloadavg()[0]
    summary = wrk(url, connections, args.duration, body)
    cpu = _cpu_seconds(pid) - cpu0
    seconds = summary["duration_us"] / 1e6
    rate = summary["requests"] / seconds
    ideal = connections / call_s
    errors = sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "connections": connections,
        "call_s": call_s,
        "requests": summary["requests"],
        "rps": round(rate, 1),
        "ideal_rps": round(ideal, 1),
        "mean_s": round(summary["mean_us"] / 1e6, 4),
        "p50_s": summary["p50_us"] / 1e6,
        "p99_s": summary["p99_us"] / 1e6,
        "max_s": summary["max_us"] / 1e6,
        "non2xx": summary["non2xx"],
        "socket_errors": errors,
        "server_cpu_pct": round(100 * cpu / seconds, 1),
        "server_rss_mib": round(_rss_mib(pid), 1),
        "load_before": load0,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18411)
    parser.add_argument("--concurrency", default="500,1000,2000")
    parser.add_argument("--latency", type=int, default=1000, help="ms per non-streamed call")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams; 0: none")
    parser.add_argument("--stream-duration", type=int, default=2000, help="ms per stream")
    parser.add_argument("--stream-events", type=int, default=20)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument(
        "--command",
        help="serve with this command instead (A/B runs); {port} and {latency} are filled in",
    )
    args = parser.parse_args(argv)

    base = f"http://127.0.0.1:{args.port}"
    url = f"{base}/bench/v1/chat/completions"
    command = [sys.executable, "-m", "simulator", "--port", str(args.port)]
    command += ["--latency", str(args.latency)]
    if args.command:
        command = shlex.split(args.command.format(port=args.port, latency=args.latency))
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-simulator-{args.port}.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    rows = []
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _control(base, "GET", "/_sim/health")
                break
            if proc.poll() is not None:
                raise SystemExit(f"the simulator exited with {proc.returncode}")
            time.sleep(0.1)
        print(
            f"simulator pid {proc.pid}: {' '.join(command[1:])}; {os.cpu_count()} CPUs; log {log}"
        )
        for connections in (int(c) for c in args.concurrency.split(",") if c):
            row = measure(proc.pid, url, connections, args.latency / 1000, args, _body(None))
            rows.append({"kind": "chat", **row})
            _print(rows[-1])
        if args.streams:
            _control(base, "PUT", "/_sim/latency", {"stream_duration_ms": args.stream_duration})
            body = _body(args.stream_events)
            row = measure(proc.pid, url, args.streams, args.stream_duration / 1000, args, body)
            rows.append({"kind": f"stream of {args.stream_events} events", **row})
            _print(rows[-1])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _print(row: dict) -> None:
    print(
        f"{row['kind']:>20} c={row['connections']:>5} x {row['call_s']:g} s: "
        f"{row['rps']:>7.1f} req/s (ideal {row['ideal_rps']:.0f}), "
        f"mean {row['mean_s']:.3f} s p50 {row['p50_s']:.3f} s p99 {row['p99_s']:.3f} s "
        f"max {row['max_s']:.3f} s, "
        f"non-2xx {row['non2xx']}, socket errors {row['socket_errors']}, "
        f"simulator CPU {row['server_cpu_pct']} % RSS {row['server_rss_mib']} MiB, "
        f"load before {row['load_before']:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
