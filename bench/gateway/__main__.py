"""Gateway data-plane benchmark: Auterity's web server vs Portkey and LiteLLM, same canned upstream.

    .venv/bin/python -m bench.gateway [--rounds 3] [--duration 10] [--no-litellm] [--no-portkey]
                                      [--profile DIR] [--json FILE]

Sets everything up from scratch on this machine, loopback only, and stops what it started:

1. nginx answering POST /v1/chat/completions with a canned OpenAI chat.completion
   (the fastest upstream there is, so what is measured is the gateway);
2. a fresh PostgreSQL database (`--db-name`, default auterity_bench), migrated, holding one
   provider pointing at nginx, two models, one active policy and an API key (bench/gateway/
   world.py); request logging to that database stays on, as in production;
3. Auterity's web server, `python -m auterity.server` (granian; its worker and thread counts,
   unless the environment overrides them; a checkout from before it, `--app-root`, is served
   by its deploy/gunicorn.conf.py);
4. Portkey gateway (Node, installed outside the repository: `--portkey`), routed to the same
   upstream by its `x-portkey-provider` / `x-portkey-custom-host` headers, and LiteLLM proxy
   (one worker, from a separate venv: `--litellm`) with the same upstream;
5. per round: wrk at concurrency 1 on the upstream directly and on each gateway (added
   latency), then at concurrency 32 on each gateway (throughput).

Prints each run, then a table of medians over the rounds with the machine's load during the
runs (load average and the CPU used by processes this benchmark did not start), and checks
that the request log holds one row per request Auterity answered.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
VENV_BIN = VENV_PYTHON.parent

CANNED_COMPLETION = {
    "id": "chatcmpl-bench0000000000000000000000000",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello, gateway! How can I help you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 16,
        "completion_tokens": 11,
        "total_tokens": 27,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_bench",
}
REQUEST_BODY = json.loads(
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
    '"Say hello to the gateway, please."}],"max_tokens":16}'
)
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
UPSTREAM_KEY = "sk-bench-upstream"
PORTKEY_DIR = Path("/work/peers/portkey")
PORTKEY_SERVER = "node_modules/@portkey-ai/gateway/build/start-server.js"
GATEWAYS = ("auterity", "portkey", "litellm")


# --- processes ---------------------------------------------------------------------------------


class Stack(contextlib.ExitStack):
    """Processes started by this run; each is stopped by its own pid (its process group)."""

    def start(self, name: str, args: list[str], *, log: Path, env=None, cwd=None):
        handle = open(log, "ab")  # noqa: SIM115 -- closed by the stop callback
        proc = subprocess.Popen(
            args,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own group: stopping it stops its workers too
        )
        self.callback(_stop, name, proc, handle)
        return proc


def _stop(name: str, proc: subprocess.Popen, handle) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in 20 s: killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    handle.close()


def wait_ready(name: str, url: str, proc, *, headers=None, timeout=90.0) -> None:
    """Poll `url` with the benchmark's POST until it answers 200 (or the process dies)."""
    data = json.dumps(REQUEST_BODY).encode()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode} while starting")
        request = urllib.request.Request(url, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    json.loads(response.read())
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as exc:
            last = str(exc)
            if isinstance(exc, urllib.error.HTTPError):
                last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        time.sleep(0.5)
    raise SystemExit(f"{name} not ready after {timeout:.0f} s: {last}")


def children(pid: int) -> list[int]:
    """`pid` and its descendants (the web server's workers, nginx's worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(p) for p in fh.read().split())
    return found


# --- load measurement -------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return user + nice + system + irq + softirq + steal


def _proc_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


@dataclass
class LoadWindow:
    """CPU used during a run: the machine's, ours per process group, and everyone else's
    (other engineers' jobs share this machine), in cores (CPU seconds per second)."""

    load1: float
    machine_cores: float = 0.0
    ours_cores: float = 0.0
    others_cores: float = 0.0
    groups_cpu_s: dict = field(default_factory=dict)  # CPU seconds per group during the run


class LoadMeter:
    """Samples /proc around one run. `groups` maps a name to a callable returning the pids of
    that group now (re-read at the end: the web server may have replaced a worker)."""

    def __init__(self, groups: dict):
        self._groups = groups

    def _pids(self) -> dict[str, set[int]]:
        return {name: set(get()) for name, get in self._groups.items()}

    def __enter__(self):
        with open("/proc/loadavg") as fh:
            self.window = LoadWindow(load1=float(fh.read().split()[0]))
        self._t0 = time.monotonic()
        self._busy0 = _busy_ticks()
        self._ticks0 = {pid: _proc_ticks(pid) for pids in self._pids().values() for pid in pids} | {
            os.getpid(): _proc_ticks(os.getpid())
        }
        return self

    def __exit__(self, *exc):
        elapsed = time.monotonic() - self._t0
        busy = (_busy_ticks() - self._busy0) / _TICKS
        per_group = {}
        for name, pids in self._pids().items():
            ticks = sum(_proc_ticks(pid) - self._ticks0.get(pid, 0) for pid in pids)
            per_group[name] = ticks / _TICKS
        per_group["wrk"] = self.wrk_ticks / _TICKS
        me = (_proc_ticks(os.getpid()) - self._ticks0[os.getpid()]) / _TICKS
        ours = sum(per_group.values()) + me
        self.window.groups_cpu_s = {k: round(v, 3) for k, v in per_group.items()}
        self.window.machine_cores = busy / elapsed
        self.window.ours_cores = ours / elapsed
        self.window.others_cores = max(0.0, (busy - ours) / elapsed)
        return False

    wrk_ticks = 0


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Run:
    round: int
    target: str
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    logged: int | None = None  # request-log rows written during the run (Auterity only)
    server_cpu_ms: float = 0.0  # CPU of the server under test per answered request
    db_cpu_ms: float = 0.0  # CPU of its PostgreSQL backends per answered request
    load: LoadWindow = field(default_factory=lambda: LoadWindow(0.0))


def wrk(
    url: str,
    connections: int,
    duration: float,
    *,
    key: str,
    threads: int = 1,
    headers: dict | None = None,
    body: str | None = None,
    timeout: float = 10,
) -> dict:
    """One bounded wrk run; returns its BENCH_JSON summary plus wrk's own CPU ticks. `headers`
    are sent besides the key (Portkey's routing), `body` replaces post.lua's request."""
    env = {
        **os.environ,
        "BENCH_API_KEY": key,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
    }
    if body is not None:
        env["BENCH_BODY"] = body
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        f"{timeout:g}s",
        "-s",
        str(HERE / "post.lua"),
        url,
    ]
    started = os.times()
    try:
        out = subprocess.run(
            args,
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + timeout + 30,
            preexec_fn=raise_nofile,  # 1,000 connections and more
        )
    except subprocess.TimeoutExpired:
        # wrk does not stop while its connections cannot even be established (a server whose
        # accept queue is full): that run answered nothing.
        print(f"  wrk did not stop after {duration + timeout + 30:g} s: killed", flush=True)
        summary = dict.fromkeys(
            ("requests", "non2xx", "connect", "read", "write", "timeout", "max_us"), 0
        )
        summary.update(duration_us=int(duration * 1e6), p50_us=0, p90_us=0, p99_us=0)
        summary.update(mean_us=0.0, hung=True, cpu_ticks=0)
        return summary
    finished = os.times()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    child_seconds = (finished.children_user - started.children_user) + (
        finished.children_system - started.children_system
    )
    summary["cpu_ticks"] = round(child_seconds * _TICKS)
    return summary


def raise_nofile() -> None:
    """Soft open-files limit up to the hard one (thousands of connections), for this process
    and what it starts."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measure(
    round_no, target, url, connections, duration, key, meter_factory, rows=None, headers=None
) -> Run:
    before = rows() if rows else None
    meter = meter_factory()
    with meter:
        summary = wrk(url, connections, duration, key=key, headers=headers)
        meter.wrk_ticks = summary["cpu_ticks"]
    if rows:
        time.sleep(0.5)  # requests still in flight when wrk stopped finish and log
        logged = rows() - before
    seconds = summary["duration_us"] / 1e6
    ok = summary["requests"] - summary["non2xx"]
    run = Run(
        round=round_no,
        target=target,
        connections=connections,
        requests=summary["requests"],
        rps=ok / seconds,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        non2xx=summary["non2xx"],
        socket_errors=summary["connect"] + summary["read"] + summary["write"] + summary["timeout"],
        logged=logged if rows else None,
        server_cpu_ms=1000 * meter.window.groups_cpu_s.get(target, 0.0) / max(ok, 1),
        db_cpu_ms=1000 * meter.window.groups_cpu_s.get("db", 0.0) / max(ok, 1)
        if target == "auterity"
        else 0.0,
        load=meter.window,
    )
    w = run.load
    print(
        f"  round {round_no} {target:<9} c={connections:<3} {run.rps:8.1f} req/s  "
        f"p50 {run.p50_ms:7.3f} ms  p99 {run.p99_ms:7.3f} ms  non-2xx {run.non2xx}  "
        f"errors {run.socket_errors}  CPU/req {run.server_cpu_ms:.2f} ms"
        + (f" + db {run.db_cpu_ms:.2f} ms  logged {run.logged}" if rows else "")
        + f"  | load1 {w.load1:.2f}, CPU cores: machine {w.machine_cores:.2f}, "
        f"ours {w.ours_cores:.2f}, others {w.others_cores:.2f}",
        flush=True,
    )
    return run


# --- setup ----------------------------------------------------------------------------------------


def server_command(app_root: Path) -> list[str]:
    """How `app_root` serves itself in production: `python -m auterity.server`, or gunicorn with
    deploy/gunicorn.conf.py for a checkout from before it (gunicorn must then be installed)."""
    if (app_root / "auterity" / "server.py").exists():
        return [str(VENV_PYTHON), "-m", "auterity.server"]
    gunicorn = VENV_BIN / "gunicorn"
    if not gunicorn.exists():
        raise SystemExit(f"{app_root} is served by gunicorn: {VENV_BIN}/pip install gunicorn")
    return [str(gunicorn), "-c", str(app_root / "deploy" / "gunicorn.conf.py"), "auterity.wsgi"]


def db_recreate(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def db_backend_pids(admin_url: str, name: str) -> list[int]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [name]
        ).fetchall()
    return [row[0] for row in rows]


def db_count(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM request_log").fetchone()[0]


def db_count_rows(db_url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM request_log GROUP BY status").fetchall()
    return dict(rows)


def start_nginx(stack: Stack, prefix: Path, port: int):
    directory = prefix / "nginx"
    directory.mkdir()
    body = json.dumps(CANNED_COMPLETION, separators=(",", ":"))
    conf = (HERE / "nginx.conf.template").read_text().format(prefix=directory, port=port, body=body)
    (directory / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return stack.start(
        "nginx",
        [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", "stderr"],
        log=prefix / "nginx.log",
    )


def portkey_headers(upstream: str) -> dict:
    """Portkey routes each request by its headers: the provider's wire format and its URL; the
    Authorization header (the upstream's key) is passed through."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream}/v1"}


def start_portkey(stack: Stack, prefix: Path, portkey_dir: Path, port: int):
    """Portkey's Node server as its package starts it (`npm run start:node`), without its UI."""
    server = portkey_dir / PORTKEY_SERVER
    if not server.exists():
        raise SystemExit(f"no Portkey gateway at {server}: see bench/README.md (or --no-portkey)")
    return stack.start(
        "portkey",
        [shutil.which("node") or "node", str(server), f"--port={port}", "--headless"],
        log=prefix / "portkey.log",
        env=dict(os.environ),
        cwd=portkey_dir,
    )


def start_litellm(stack: Stack, prefix: Path, litellm_bin: str, port: int, upstream: str):
    config = prefix / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    env = {
        **os.environ,
        # Use the price list shipped in the package instead of fetching one from the internet.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    env.pop("DATABASE_URL", None)  # LiteLLM would try to run Prisma migrations against it
    return stack.start(
        "litellm",
        [
            litellm_bin,
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        log=prefix / "litellm.log",
        env=env,
        cwd=prefix,
    )


# --- report --------------------------------------------------------------------------------------


def _median(values):
    values = list(values)
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[Run]) -> dict:
    def pick(target, conns):
        return [r for r in runs if r.target == target and r.connections == conns]

    table = []
    for target, conns in (
        ("upstream", 1),
        *((name, 1) for name in GATEWAYS),
        *((name, 32) for name in GATEWAYS),
    ):
        selected = pick(target, conns)
        if not selected:
            continue
        table.append(
            {
                "target": target,
                "connections": conns,
                "rounds": len(selected),
                "rps_median": _median(r.rps for r in selected),
                "rps_min": min(r.rps for r in selected),
                "rps_max": max(r.rps for r in selected),
                "p50_ms_median": _median(r.p50_ms for r in selected),
                "p99_ms_median": _median(r.p99_ms for r in selected),
                "server_cpu_ms_median": _median(r.server_cpu_ms for r in selected),
                "db_cpu_ms_median": _median(r.db_cpu_ms for r in selected),
                "non2xx": sum(r.non2xx for r in selected),
                "socket_errors": sum(r.socket_errors for r in selected),
                "load1_median": _median(r.load.load1 for r in selected),
                "others_cores_median": _median(r.load.others_cores for r in selected),
            }
        )
    added = {}  # gateway -> c=1 p50 minus the upstream's, per round
    for name in GATEWAYS:
        for round_no in sorted({r.round for r in runs}):
            up = [r for r in runs if r.round == round_no and r.target == "upstream"]
            gw = [
                r for r in runs if r.round == round_no and r.target == name and r.connections == 1
            ]
            if up and gw:
                added.setdefault(name, []).append(gw[0].p50_ms - up[0].p50_ms)
    gw32 = _median(r.rps for r in pick("auterity", 32))
    ratios = {
        peer: gw32 / _median(r.rps for r in pick(peer, 32))
        for peer in GATEWAYS[1:]
        if pick(peer, 32)
    }
    return {
        "table": table,
        "added_latency_p50_ms_per_round": added.get("auterity", []),
        "added_latency_p50_ms_median": _median(added.get("auterity", [])),
        "added_latency_p50_ms_median_by_gateway": {k: _median(v) for k, v in added.items()},
        "throughput_ratio_c32": ratios.get("litellm"),
        "throughput_ratio_c32_by_peer": ratios,
    }


def print_table(summary: dict) -> None:
    print()
    print(
        f"{'target':<10}{'conc':>5}{'req/s (median)':>16}{'min..max':>14}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'CPU ms/req':>11}{'db ms/req':>10}{'errors':>7}{'load1':>7}"
        f"{'others':>7}"
    )
    for row in summary["table"]:
        span = f"{row['rps_min']:.0f}..{row['rps_max']:.0f}"
        print(
            f"{row['target']:<10}{row['connections']:>5}{row['rps_median']:>16.1f}{span:>14}"
            f"{row['p50_ms_median']:>9.3f}{row['p99_ms_median']:>9.3f}"
            f"{row['server_cpu_ms_median']:>11.2f}{row['db_cpu_ms_median']:>10.2f}"
            f"{row['non2xx'] + row['socket_errors']:>7}{row['load1_median']:>7.2f}"
            f"{row['others_cores_median']:>7.2f}"
        )
    print()
    added = summary["added_latency_p50_ms_per_round"]
    if added:
        print(
            f"added latency at c=1, p50 (Auterity - upstream): median "
            f"{summary['added_latency_p50_ms_median']:.3f} ms "
            f"(rounds: {', '.join(f'{a:.3f}' for a in added)}); target <= 2 ms"
        )
    by_gateway = summary["added_latency_p50_ms_median_by_gateway"]
    if len(by_gateway) > 1:
        print(
            "added latency at c=1, p50, same runs: "
            + ", ".join(f"{name} {value:.3f} ms" for name, value in by_gateway.items())
            + "; target: Auterity <= Portkey"
        )
    targets = {"litellm": "target >= 10x", "portkey": "target >= 1.5x"}
    for peer, ratio in summary["throughput_ratio_c32_by_peer"].items():
        print(f"throughput at c=32, Auterity / {peer}: {ratio:.2f}x; {targets[peer]}")
    print(
        "CPU ms/req: CPU time of the server under test (all its processes) per answered "
        "request; db ms/req: of the PostgreSQL backends serving Auterity.\n"
        "'others' = CPU cores busy with processes this benchmark did not start (median); "
        "the machine has 2."
    )


# --- profile ---------------------------------------------------------------------------------


def profile_gateway(server_pid, url, key, duration, out_dir: Path, py_spy: str) -> None:
    """py-spy every web-server worker while wrk drives c=32; writes collapsed stacks per worker."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = [pid for pid in children(server_pid) if pid != server_pid]
    spies = []
    for pid in workers:
        target = out_dir / f"worker-{pid}.txt"
        spies.append(
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration)),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    # Only the thread holding the GIL: where the workers' CPU goes, not where
                    # their threads wait.
                    "--gil",
                    "--nonblocking",
                    "--output",
                    str(target),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1)
    summary = wrk(url, 32, duration - 2, key=key)
    for spy in spies:
        spy.wait(timeout=duration + 60)
    print(
        f"  profiled run: {summary['requests'] / (summary['duration_us'] / 1e6):.1f} req/s "
        f"(sampling slows the workers); stacks in {out_dir}"
    )
    from bench.gateway.profile_summary import summarise_files

    print(summarise_files(sorted(out_dir.glob("worker-*.txt"))))


# --- main -------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
    parser.add_argument("--port-base", type=int, default=18400)
    parser.add_argument("--db-name", default="auterity_bench")
    parser.add_argument(
        "--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL"
    )
    parser.add_argument("--litellm", default="/work/litellm-venv/bin/litellm")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--portkey", type=Path, default=PORTKEY_DIR, help="where @portkey-ai/gateway is installed"
    )
    parser.add_argument("--no-portkey", action="store_true")
    parser.add_argument(
        "--app-root",
        type=Path,
        default=ROOT,
        help="serve Auterity from this checkout (e.g. a `git worktree` of an older commit, for "
        "before/after figures); served the way that checkout serves itself",
    )
    parser.add_argument(
        "--rate-limited",
        action="store_true",
        help="give the key request limits it never reaches, so each request is counted in the "
        "limits store (the database unless the cache is Redis); by default it has none, like "
        "the LiteLLM side",
    )
    parser.add_argument(
        "--profile", type=Path, help="also py-spy the workers during a c=32 run into DIR"
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/work/tools-venv/bin/py-spy")
    parser.add_argument("--json", type=Path, help="write every run and the summary here")
    parser.add_argument(
        "--hold",
        type=float,
        default=0,
        help="after setup, keep the servers up this many seconds for manual runs, then stop "
        "(prints the URLs and key; runs no rounds)",
    )
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt  # unwinds through the Stack, which stops what was started

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk nginx")
    raise_nofile()
    use_litellm = not args.no_litellm
    use_portkey = not args.no_portkey
    if use_litellm and not Path(args.litellm).exists():
        raise SystemExit(
            f"no LiteLLM at {args.litellm}: python3 -m venv /work/litellm-venv && "
            "/work/litellm-venv/bin/pip install 'litellm[proxy]' (or pass --no-litellm)"
        )

    upstream_port, gateway_port, litellm_port, portkey_port = (
        args.port_base + i for i in (1, 2, 3, 4)
    )
    upstream = f"http://127.0.0.1:{upstream_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    litellm = f"http://127.0.0.1:{litellm_port}"
    portkey = f"http://127.0.0.1:{portkey_port}"
    db_url = f"{args.pg.rstrip('/')}/{args.db_name}"
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    prefix = Path(tempfile.mkdtemp(prefix="auterity-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "DEBUG": "false",
        "CACHE_URL": f"filecache://{prefix / 'cache'}",
        "WEB_BIND": f"127.0.0.1:{gateway_port}",
        "WEB_LOGLEVEL": "warning",
        # for checkouts served by gunicorn (before auterity/server.py)
        "GUNICORN_BIND": f"127.0.0.1:{gateway_port}",
        "GUNICORN_LOGLEVEL": "warning",
        # the server empties this directory on start: never the shared default.
        "PROMETHEUS_MULTIPROC_DIR": str(prefix / "prometheus"),
        "PYTHONPATH": str(args.app_root),
    }
    (prefix / "prometheus").mkdir()
    print(f"work dir {prefix}; logs there; Auterity from {args.app_root}", flush=True)

    runs: list[Run] = []
    with Stack() as stack:
        nginx = start_nginx(stack, prefix, upstream_port)
        wait_ready("nginx", f"{upstream}/v1/chat/completions", nginx, timeout=20)

        print(f"database {args.db_name}: recreate, migrate, add the benchmark world", flush=True)
        db_recreate(admin_url, args.db_name)
        subprocess.run(
            [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v0"],
            cwd=args.app_root,
            env=env,
            check=True,
        )
        key = subprocess.run(
            [
                str(VENV_PYTHON),
                str(HERE / "world.py"),
                upstream,
                *(["--rate-limited"] if args.rate_limited else []),
            ],
            cwd=args.app_root,
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout.strip()

        server = stack.start(
            "web server",
            server_command(args.app_root),
            log=prefix / "server.log",
            env=env,
            cwd=args.app_root,
        )
        auth = {"Authorization": f"Bearer {key}"}
        wait_ready("web server", f"{gateway}/v1/chat/completions", server, headers=auth)
        groups = {
            "upstream": lambda: children(nginx.pid),
            "auterity": lambda: children(server.pid),
            "db": lambda: db_backend_pids(admin_url, args.db_name),
        }

        if use_portkey:
            print("Portkey gateway: starting (one Node process)", flush=True)
            portkey_proc = start_portkey(stack, prefix, args.portkey, portkey_port)
            wait_ready(
                "portkey",
                f"{portkey}/v1/chat/completions",
                portkey_proc,
                headers={"Authorization": f"Bearer {UPSTREAM_KEY}", **portkey_headers(upstream)},
                timeout=60,
            )
            groups["portkey"] = lambda: children(portkey_proc.pid)

        if use_litellm:
            print("LiteLLM proxy: starting (one worker)", flush=True)
            proxy = start_litellm(stack, prefix, args.litellm, litellm_port, upstream)
            wait_ready(
                "litellm",
                f"{litellm}/v1/chat/completions",
                proxy,
                headers={"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
                timeout=180,
            )
            groups["litellm"] = lambda: children(proxy.pid)

        def meter():
            return LoadMeter(groups)

        targets = [
            ("upstream", f"{upstream}/v1/chat/completions", "none", None),
            ("auterity", f"{gateway}/v1/chat/completions", key, None),
        ]
        if use_portkey:
            targets.append(
                (
                    "portkey",
                    f"{portkey}/v1/chat/completions",
                    UPSTREAM_KEY,
                    portkey_headers(upstream),
                )
            )
        if use_litellm:
            targets.append(("litellm", f"{litellm}/v1/chat/completions", LITELLM_MASTER_KEY, None))
        if args.hold:
            print(
                f"holding {args.hold:g} s: upstream {upstream}, Auterity {gateway} (key {key}), "
                f"Portkey {portkey if use_portkey else '-'} (headers {portkey_headers(upstream)}), "
                f"LiteLLM {litellm if use_litellm else '-'} (key {LITELLM_MASTER_KEY}), "
                f"web server pid {server.pid}",
                flush=True,
            )
            time.sleep(args.hold)
            return 0
        print("warm-up", flush=True)
        for name, url, token, extra in targets:
            wrk(url, 32 if name != "upstream" else 1, args.warmup, key=token, headers=extra)

        def rows_of(name):
            return (lambda: db_count(db_url)) if name == "auterity" else None

        for round_no in range(1, args.rounds + 1):
            for conns in (1, 32):
                for name, url, token, extra in targets:
                    if conns == 1 or name != "upstream":
                        runs.append(
                            measure(
                                round_no,
                                name,
                                url,
                                conns,
                                args.duration,
                                token,
                                meter,
                                rows_of(name),
                                extra,
                            )
                        )

        if args.profile:
            profile_gateway(
                server.pid,
                f"{gateway}/v1/chat/completions",
                key,
                max(args.duration, 12),
                args.profile,
                args.py_spy,
            )

        time.sleep(1)  # the last in-flight requests finish and write their rows
        rows = db_count_rows(db_url)
    # everything is stopped here; the database is kept for inspection (dropped on the next run)

    summary = summarise(runs)
    print_table(summary)
    print(f"request_log rows by status at the end: {rows}")
    short = [r for r in runs if r.logged is not None and r.logged < r.requests]
    extra = [r for r in runs if r.logged is not None and r.logged > r.requests + r.connections]
    print(
        "request log: every measured Auterity run logged between the requests wrk counted and "
        "that plus the requests in flight when wrk stopped"
        if not short and not extra
        else f"request log MISMATCH: fewer rows than answers in {len(short)} runs, "
        f"more than answers + in-flight in {len(extra)} runs"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": [asdict(r) for r in runs], "summary": summary, "request_log": rows},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
