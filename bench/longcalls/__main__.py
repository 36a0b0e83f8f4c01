"""Long calls: Auterity vs Portkey vs LiteLLM in front of a slow upstream, same run.

    .venv/bin/python -m bench.longcalls [--duration 10] [--phases calls500,calls1000,streams,idle]
                                        [--no-portkey] [--no-litellm] [--json FILE]

An AI gateway's load is long-lived calls: a completion takes seconds and a stream holds its
connection all along. Issue 13's load shapes, set up from scratch on loopback ports
18421-18425 and stopped at the end:

1. upstream: the provider simulator (`python -m simulator --latency 1000`: every answer after
   1 s; one asyncio process, measured alone by bench/bench_simulator.py);
2. a fresh PostgreSQL database (`--db-name`) with bench/gateway/world.py's provider (pointing
   at the simulator), policy and key; request logging on, as in production;
3. Auterity's web server, `python -m auterity.server` with its defaults; Portkey gateway 1.15.2
   (Node) and LiteLLM proxy (one worker), both on the same upstream (bench/README.md says how to
   install them, outside the repository);
4. phases, each run on the upstream alone and on every gateway in turn, so the ratios come
   from the same minutes:
   - calls500, calls1000: wrk with 500 / 1,000 connections of non-streamed 1 s calls:
     requests/s, p50/p99, errors (wrk's timeout: --timeout);
   - streams: 1,000 concurrent streams of 20 events over 2 s (the simulator's profile is
     switched to that, first event at once): time to the first event, whole duration, how
     many completed with [DONE] (bench/longcalls/client.py);
   - idle: a 32-connection load of 1 s calls without, then with, 10,000 idle TCP connections
     held open (connected, nothing sent) by another process; /healthz (or the peer's health
     route) timed five times while they are open; how many of them the server closed.

Per run: the server's CPU per answered request and its processes' RSS near the end (all its
processes, from /proc), the load average and the CPU other processes used meanwhile (the
machine is shared: read the figures beside it), and for Auterity the request-log rows written
(one per answer). Timings, never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.gateway.__main__ import (
    HERE as GATEWAY_DIR,
)
from bench.gateway.__main__ import (
    LITELLM_MASTER_KEY,
    PORTKEY_DIR,
    UPSTREAM_KEY,
    VENV_PYTHON,
    LoadMeter,
    LoadWindow,
    Stack,
    children,
    db_backend_pids,
    db_count,
    db_count_rows,
    db_recreate,
    portkey_headers,
    raise_nofile,
    server_command,
    start_litellm,
    start_portkey,
    wait_ready,
    wrk,
)

ROOT = Path(__file__).resolve().parent.parent.parent
PHASES = ("calls500", "calls1000", "streams", "idle")
CALL_BODY = (
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
    '"Say hello to the gateway, please."}],"max_tokens":16}'
)


def stream_body(events: int) -> str:
    # An OpenAI stream is a role chunk, one chunk per token, a finish chunk and [DONE].
    return CALL_BODY.replace('"max_tokens":16}', f'"max_tokens":{events - 3},"stream":true}}')


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT
    path: str  # the chat completions path
    key: str
    headers: dict
    health: str  # path of its health route
    pids: object = None  # callable: the server's pids now

    @property
    def url(self) -> str:
        return self.base + self.path


@dataclass
class Row:
    phase: str
    target: str
    connections: int
    requests: int
    rps: float
    p50_s: float | None
    p99_s: float | None
    errors: int
    ideal_rps: float = 0.0  # connections / call time: every connection always busy
    error_detail: dict = field(default_factory=dict)
    first_event_p50_s: float | None = None
    first_event_p99_s: float | None = None
    server_cpu_ms: float = 0.0
    rss_mib_total: float = 0.0
    rss_mib_max_process: float = 0.0
    logged: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)
    load: LoadWindow = field(default_factory=lambda: LoadWindow(0.0))


def rss_mib(pids) -> tuple[float, float]:
    sizes = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return (round(sum(sizes), 1), round(max(sizes), 1)) if sizes else (0.0, 0.0)


def sim_latency(sim: str, **fields) -> None:
    request = urllib.request.Request(
        f"{sim}/_sim/latency", data=json.dumps(fields).encode(), method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def timed_get(url: str, timeout: float) -> float | None:
    """Seconds until a 200 from `url`, or None (error or no answer within `timeout`)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return time.monotonic() - t0 if response.status == 200 else None
    except (OSError, urllib.error.URLError, TimeoutError):
        return None


class Runner:
    def __init__(self, args, groups, sim_base, db_url):
        self.args = args
        self.groups = groups
        self.sim = sim_base
        self.db_url = db_url
        self.rows: list[Row] = []

    def meter(self):
        return LoadMeter(self.groups)

    def _finish(self, row: Row, meter, ok: int, rss_at) -> Row:
        cpu_s = meter.window.groups_cpu_s.get(row.target, 0.0)
        row.server_cpu_ms = 1000 * cpu_s / ok if ok else None
        row.load = meter.window
        row.rss_mib_total, row.rss_mib_max_process = rss_at
        self.rows.append(row)
        w = row.load

        def s(value):
            return "-" if value is None else f"{value:.3f} s"

        print(
            f"  {row.phase:<9} {row.target:<9} c={row.connections:<5} {row.rps:7.1f}/s "
            f"({100 * row.rps / row.ideal_rps:.0f} % of {row.ideal_rps:.0f})  "
            f"p50 {s(row.p50_s)}  p99 {s(row.p99_s)}  "
            + (
                f"first event p50 {s(row.first_event_p50_s)} p99 {s(row.first_event_p99_s)}  "
                if row.first_event_p50_s is not None
                else ""
            )
            + f"errors {row.errors} {row.error_detail or ''}  CPU/answer "
            f"{'-' if row.server_cpu_ms is None else f'{row.server_cpu_ms:.2f} ms'}  "
            f"RSS {row.rss_mib_total:.0f} MiB "
            f"(largest process {row.rss_mib_max_process:.0f})"
            + (f"  logged {row.logged}" if row.logged is not None else "")
            + (f"  {row.note}" if row.note else "")
            + f"  | load1 {w.load1:.2f}, cores: machine {w.machine_cores:.2f}, "
            f"ours {w.ours_cores:.2f}, others {w.others_cores:.2f}",
            flush=True,
        )
        return row

    def _rows_before(self, target):
        return db_count(self.db_url) if target.name == "auterity" else None

    def _rows_after(self, target, before):
        if before is None:
            return None
        time.sleep(1.0)  # the last answers' rows (the writer gathers for ~50 ms)
        return db_count(self.db_url) - before

    def calls(self, phase: str, target: Target, connections: int, duration: float) -> Row:
        before = self._rows_before(target)
        meter = self.meter()
        rss_box = {}
        with meter:
            proc = _sample_rss_later(target, duration * 0.8, rss_box)
            summary = wrk(
                target.url,
                connections,
                duration,
                key=target.key,
                threads=2,
                headers=target.headers,
                body=CALL_BODY,
                timeout=self.args.timeout,
            )
            proc.join()
            meter.wrk_ticks = summary["cpu_ticks"]
        logged = self._rows_after(target, before)
        seconds = summary["duration_us"] / 1e6
        ok = summary["requests"] - summary["non2xx"]
        detail = {
            k: summary[k] for k in ("non2xx", "connect", "read", "write", "timeout") if summary[k]
        }
        if summary.get("hung"):
            detail["wrk hung (no connection established)"] = connections
        row = Row(
            phase=phase,
            target=target.name,
            connections=connections,
            requests=summary["requests"],
            rps=ok / seconds,
            ideal_rps=connections / (self.args.latency / 1000),
            # wrk's percentiles cover answered requests only: read them beside the rate
            p50_s=summary["p50_us"] / 1e6 if ok else None,
            p99_s=summary["p99_us"] / 1e6 if ok else None,
            errors=sum(detail.values()),
            error_detail=detail,
            logged=logged,
        )
        return self._finish(row, meter, ok, rss_box.get("rss", (0.0, 0.0)))

    def streams(self, target: Target, connections: int, duration: float) -> Row:
        before = self._rows_before(target)
        meter = self.meter()
        rss_box = {}
        command = [
            str(VENV_PYTHON),
            "-m",
            "bench.longcalls.client",
            "streams",
            target.url,
            "--concurrency",
            str(connections),
            "--duration",
            f"{duration:g}",
            "--timeout",
            f"{self.args.timeout:g}",
            "--body",
            stream_body(self.args.stream_events),
            "--header",
            f"Authorization: Bearer {target.key}",
            *(x for k, v in target.headers.items() for x in ("--header", f"{k}: {v}")),
        ]
        with meter:
            started = os.times()
            sampler = _sample_rss_later(target, duration * 0.8, rss_box)
            out = subprocess.run(
                command,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=duration + self.args.timeout + 120,
            )
            sampler.join()
            finished = os.times()
            meter.wrk_ticks = round(
                (
                    finished.children_user
                    - started.children_user
                    + finished.children_system
                    - started.children_system
                )
                * os.sysconf("SC_CLK_TCK")
            )
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"the stream client printed no summary:\n{out.stdout}\n{out.stderr}")
        summary = json.loads(line.removeprefix("BENCH_JSON "))
        logged = self._rows_after(target, before)
        failures = summary["failures"]
        row = Row(
            phase="streams",
            target=target.name,
            connections=connections,
            requests=summary["started"],
            rps=summary["streams_per_s"],
            ideal_rps=connections / (self.args.stream_duration / 1000),
            p50_s=summary["total_p50_s"],
            p99_s=summary["total_p99_s"],
            errors=sum(failures.values()),
            error_detail=failures,
            first_event_p50_s=summary["first_event_p50_s"],
            first_event_p99_s=summary["first_event_p99_s"],
            logged=logged,
            note=f"{summary['completed']}/{summary['started']} completed with [DONE]",
            extra=summary,
        )
        return self._finish(row, meter, summary["completed"], rss_box.get("rss", (0.0, 0.0)))

    def idle(self, target: Target, duration: float) -> list[Row]:
        """32 connections of 1 s calls without, then with, --idle-connections idle ones."""
        rows = [self.calls("idle:off", target, 32, duration)]
        host_port = target.base.removeprefix("http://")
        flood = subprocess.Popen(
            [
                str(VENV_PYTHON),
                "-m",
                "bench.longcalls.client",
                "idle",
                host_port,
                "--count",
                str(self.args.idle_connections),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            ready = _read_marker(flood, "IDLE_READY", timeout=180)
            health = [
                timed_get(target.base + target.health, self.args.health_timeout) for _ in range(5)
            ]
            with_idle = self.calls("idle:on", target, 32, duration)
            health_after = timed_get(target.base + target.health, self.args.health_timeout)
            flood.stdin.close()
            done = _read_marker(flood, "IDLE_DONE", timeout=60)
        finally:
            if flood.poll() is None:
                try:
                    flood.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(flood.pid, signal.SIGKILL)
                    flood.wait()
        answered = [h for h in health if h is not None]
        with_idle.extra = {
            "idle_opened": ready.get("opened"),
            "idle_connect_failed": ready.get("failed"),
            "idle_closed_by_server": done.get("closed_by_server"),
            "health_s": health,
            "health_after_load_s": health_after,
        }
        with_idle.note = (
            f"idle: {ready.get('opened')} open ({ready.get('failed')} connects failed), "
            f"{done.get('closed_by_server')} closed by the server by the end; "
            f"{target.health}: {len(answered)}/5 answered"
            + (
                f" (median {sorted(answered)[len(answered) // 2] * 1000:.1f} ms)"
                if answered
                else f" (none within {self.args.health_timeout:g} s)"
            )
            + f", after the load {'-' if health_after is None else f'{health_after * 1000:.1f} ms'}"
        )
        print(f"    {with_idle.note}", flush=True)
        rows.append(with_idle)
        return rows


def settle(target: Target, limit: float = 90.0) -> float:
    """Wait until the target's processes are idle (under 0.1 core for a second): a server may
    still be working through requests whose clients left (LiteLLM after 1,000 calls), which
    would be charged to the next run. Returns the seconds waited."""
    from bench.gateway.__main__ import _TICKS, _proc_ticks

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        pids = target.pids()
        before = sum(_proc_ticks(pid) for pid in pids)
        time.sleep(1.0)
        if (sum(_proc_ticks(pid) for pid in pids) - before) / _TICKS < 0.1:
            break
    return time.monotonic() - t0


def _sample_rss_later(target: Target, delay: float, box: dict):
    """RSS of the target's processes `delay` seconds from now (near the end of the run)."""
    import threading

    def sample():
        time.sleep(delay)
        box["rss"] = rss_mib(target.pids())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def _read_marker(proc: subprocess.Popen, marker: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(marker + " "):
            return json.loads(line.split(" ", 1)[1])
    return {}


def print_summary(rows: list[Row], phases) -> None:
    print()
    print(
        f"{'phase':<10}{'target':<10}{'conns':>6}{'answers/s':>10}{'% ideal':>8}{'p50 s':>8}"
        f"{'p99 s':>8}"
        f"{'1st ev p50':>11}{'1st ev p99':>11}{'errors':>8}{'CPU ms/ans':>11}{'RSS MiB':>8}"
        f"{'load1':>6}{'others':>7}"
    )

    def f(value, width, fmt=".3f"):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    for r in rows:
        print(
            f"{r.phase:<10}{r.target:<10}{r.connections:>6}{r.rps:>10.1f}"
            f"{100 * r.rps / r.ideal_rps:>8.0f}{f(r.p50_s, 8)}"
            f"{f(r.p99_s, 8)}{f(r.first_event_p50_s, 11)}{f(r.first_event_p99_s, 11)}"
            f"{r.errors:>8}{f(r.server_cpu_ms, 11, '.2f')}{r.rss_mib_total:>8.0f}"
            f"{r.load.load1:>6.2f}"
            f"{r.load.others_cores:>7.2f}"
        )
    print()

    def pick(phase, target):
        return next((r for r in rows if r.phase == phase and r.target == target), None)

    for phase in ("calls500", "calls1000", "streams"):
        up, gw = pick(phase, "upstream"), pick(phase, "auterity")
        if not (up and gw):
            continue
        parts = [f"Auterity / upstream {gw.rps / up.rps:.2f}"]
        for peer in ("portkey", "litellm"):
            other = pick(phase, peer)
            if other and other.rps:
                parts.append(f"Auterity / {peer} {gw.rps / other.rps:.2f}")
        if phase == "streams" and gw.p99_s and up.p99_s:
            parts.append(f"p99 duration vs upstream's {gw.p99_s / up.p99_s:.2f}x")
        print(f"{phase}: " + ", ".join(parts))
    for target in ("upstream", "auterity", "portkey", "litellm"):
        base, flood = pick("idle:off", target), pick("idle:on", target)
        if base and flood and base.p99_s:
            with_idle = (
                f"{flood.p99_s:.3f} s with the idle connections ({flood.p99_s / base.p99_s:.2f}x)"
                if flood.p99_s
                else "no answer with the idle connections"
            )
            print(
                f"idle {target}: 32-client p99 {base.p99_s:.3f} s without, {with_idle}, "
                f"errors {flood.errors}; {flood.note}"
            )
    print(
        "answers/s: answers (2xx; streams completed with [DONE]) per second of the run; % ideal: "
        "of connections / call time; p50/p99 (wrk): of the answered requests only; CPU "
        "ms/ans: the server's CPU per answer; RSS: all the server's processes near the end of "
        "the run; 'others': CPU cores used by processes this benchmark did not start (of 2)."
    )


def markdown(rows: list[Row]) -> str:
    """The summary as bench/README.md's table: one column per target."""
    names = [
        n
        for n in ("upstream", "auterity", "portkey", "litellm")
        if any(r.target == n for r in rows)
    ]

    def pick(phase, target):
        return next((r for r in rows if r.phase == phase and r.target == target), None)

    def sec(value):
        return "-" if value is None else f"{value:.2f} s"

    def line(label, phase, fmt):
        cells = []
        for name in names:
            row = pick(phase, name)
            cells.append("" if row is None else fmt(row))
        return f"| {label} | " + " | ".join(cells) + " |"

    def rate(row):
        return f"{row.rps:,.1f} ({100 * row.rps / row.ideal_rps:.0f} %)"

    out = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for phase, label in (("calls500", "500 x 1 s calls"), ("calls1000", "1,000 x 1 s calls")):
        if any(r.phase == phase for r in rows):
            out.append(line(f"{label}: answers/s (share of ideal)", phase, rate))
            out.append(
                line(
                    "p50 / p99 of the answered calls, errors",
                    phase,
                    lambda r: f"{sec(r.p50_s)} / {sec(r.p99_s)}, {r.errors}",
                )
            )
            out.append(
                line(
                    "CPU per answer, RSS",
                    phase,
                    lambda r: (
                        f"{'-' if r.server_cpu_ms is None else f'{r.server_cpu_ms:.2f} ms'}, "
                        f"{r.rss_mib_total:.0f} MiB"
                    ),
                )
            )
            out.append(
                line("others' CPU (cores of 2)", phase, lambda r: f"{r.load.others_cores:.2f}")
            )
    if any(r.phase == "streams" for r in rows):
        out.append(line("1,000 x 2 s streams: completed/s (share of ideal)", "streams", rate))
        out.append(
            line("completed with [DONE] / started", "streams", lambda r: r.note.split(" ")[0])
        )
        out.append(
            line(
                "first event p50 / p99",
                "streams",
                lambda r: f"{sec(r.first_event_p50_s)} / {sec(r.first_event_p99_s)}",
            )
        )
        out.append(
            line("duration p50 / p99", "streams", lambda r: f"{sec(r.p50_s)} / {sec(r.p99_s)}")
        )
        out.append(
            line(
                "RSS (largest process)",
                "streams",
                lambda r: f"{r.rss_mib_total:.0f} MiB ({r.rss_mib_max_process:.0f})",
            )
        )
        out.append(
            line("others' CPU (cores of 2)", "streams", lambda r: f"{r.load.others_cores:.2f}")
        )
    if any(r.phase == "idle:on" for r in rows):
        out.append(
            line(
                "32 x 1 s calls, p99 without / with the idle connections",
                "idle:on",
                lambda r: (
                    f"{sec(pick('idle:off', r.target).p99_s)} / "
                    + (sec(r.p99_s) if r.p99_s else f"no answer ({r.errors} errors)")
                ),
            )
        )
        out.append(
            line(
                "idle connections open / closed by the server",
                "idle:on",
                lambda r: f"{r.extra.get('idle_opened')} / {r.extra.get('idle_closed_by_server')}",
            )
        )
        out.append(
            line(
                "health route answered while open (of 5)",
                "idle:on",
                lambda r: str(sum(h is not None for h in r.extra.get("health_s", []))),
            )
        )
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--targets", default="upstream,auterity,portkey,litellm")
    parser.add_argument("--latency", type=int, default=1000, help="the upstream's ms per call")
    parser.add_argument("--stream-duration", type=int, default=2000, help="ms per stream")
    parser.add_argument("--stream-events", type=int, default=20)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams")
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--health-timeout", type=float, default=10.0)
    parser.add_argument("--port-base", type=int, default=18420)
    parser.add_argument("--db-name", default="auterity_bench_longcalls")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--litellm", default="/work/litellm-venv/bin/litellm")
    parser.add_argument("--portkey", type=Path, default=PORTKEY_DIR)
    parser.add_argument("--app-root", type=Path, default=ROOT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    wanted = [t for t in args.targets.split(",") if t]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {PHASES}")

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    raise_nofile()  # the servers started below inherit it: 10,000 connections and more

    ports = {name: args.port_base + i for i, name in enumerate(("sim", "auterity", "portkey"), 1)}
    ports["litellm"] = args.port_base + 4
    sim = f"http://127.0.0.1:{ports['sim']}"
    upstream = f"{sim}/bench"  # the simulator serves any provider name under its own prefix
    db_url = f"{args.pg.rstrip('/')}/{args.db_name}"
    admin_url = f"{args.pg.rstrip('/')}/postgres"
    prefix = Path(tempfile.mkdtemp(prefix="auterity-longcalls-"))
    (prefix / "prometheus").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "DEBUG": "false",
        "CACHE_URL": f"filecache://{prefix / 'cache'}",
        "WEB_BIND": f"127.0.0.1:{ports['auterity']}",
        "WEB_LOGLEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": str(prefix / "prometheus"),
        "PYTHONPATH": str(args.app_root),
    }
    print(f"work dir {prefix}; logs there; Auterity from {args.app_root}", flush=True)
    with Stack() as stack:
        simulator = stack.start(
            "simulator",
            [
                str(VENV_PYTHON),
                "-m",
                "simulator",
                "--port",
                str(ports["sim"]),
                "--latency",
                str(args.latency),
            ],
            log=prefix / "simulator.log",
            cwd=ROOT,
        )
        auth_up = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
        wait_ready("simulator", f"{upstream}/v1/chat/completions", simulator, headers=auth_up)
        targets = [
            Target(
                "upstream",
                sim,
                "/bench/v1/chat/completions",
                UPSTREAM_KEY,
                {},
                "/_sim/health",
                lambda: children(simulator.pid),
            )
        ]
        groups = {"upstream": lambda: children(simulator.pid)}

        if "auterity" in wanted:
            print(
                f"database {args.db_name}: recreate, migrate, add the benchmark world", flush=True
            )
            db_recreate(admin_url, args.db_name)
            subprocess.run(
                [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v0"],
                cwd=args.app_root,
                env=env,
                check=True,
            )
            key = subprocess.run(
                [str(VENV_PYTHON), str(GATEWAY_DIR / "world.py"), upstream],
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
            base = f"http://127.0.0.1:{ports['auterity']}"
            wait_ready(
                "web server",
                f"{base}/v1/chat/completions",
                server,
                headers={"Authorization": f"Bearer {key}"},
            )
            targets.append(
                Target(
                    "auterity",
                    base,
                    "/v1/chat/completions",
                    key,
                    {},
                    "/healthz",
                    lambda: children(server.pid),
                )
            )
            groups["auterity"] = targets[-1].pids
            groups["db"] = lambda: db_backend_pids(admin_url, args.db_name)
        if "portkey" in wanted:
            print("Portkey gateway: starting (one Node process)", flush=True)
            portkey = start_portkey(stack, prefix, args.portkey, ports["portkey"])
            base = f"http://127.0.0.1:{ports['portkey']}"
            wait_ready(
                "portkey",
                f"{base}/v1/chat/completions",
                portkey,
                headers={**auth_up, **portkey_headers(upstream)},
                timeout=60,
            )
            targets.append(
                Target(
                    "portkey",
                    base,
                    "/v1/chat/completions",
                    UPSTREAM_KEY,
                    portkey_headers(upstream),
                    "/",
                    lambda: children(portkey.pid),
                )
            )
            groups["portkey"] = targets[-1].pids
        if "litellm" in wanted:
            print("LiteLLM proxy: starting (one worker)", flush=True)
            litellm = start_litellm(stack, prefix, args.litellm, ports["litellm"], upstream)
            base = f"http://127.0.0.1:{ports['litellm']}"
            wait_ready(
                "litellm",
                f"{base}/v1/chat/completions",
                litellm,
                headers={"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
                timeout=180,
            )
            targets.append(
                Target(
                    "litellm",
                    base,
                    "/v1/chat/completions",
                    LITELLM_MASTER_KEY,
                    {},
                    "/health/liveliness",
                    lambda: children(litellm.pid),
                )
            )
            groups["litellm"] = targets[-1].pids
        targets = [t for t in targets if t.name in wanted]

        runner = Runner(args, groups, sim, db_url)
        if args.warmup:
            print("warm-up", flush=True)
            for target in targets:
                wrk(
                    target.url,
                    100,
                    args.warmup,
                    key=target.key,
                    headers=target.headers,
                    body=CALL_BODY,
                    timeout=args.timeout,
                )
            for target in targets:
                settle(target)
        for phase in phases:
            print(f"phase {phase}", flush=True)
            if phase == "streams":
                sim_latency(sim, stream_duration_ms=args.stream_duration)
            else:
                sim_latency(sim, latency_ms=args.latency)
            for target in targets:
                if phase.startswith("calls"):
                    runner.calls(phase, target, int(phase.removeprefix("calls")), args.duration)
                elif phase == "streams":
                    runner.streams(target, args.streams, args.duration)
                else:
                    runner.idle(target, args.duration)
                waited = settle(target)
                if waited > 5:
                    print(f"    ({target.name} busy for {waited:.0f} s after the run)", flush=True)
        request_log = db_count_rows(db_url) if "auterity" in wanted else {}

    print_summary(runner.rows, phases)
    print()
    print(markdown(runner.rows))
    if request_log:
        print(f"request_log rows by status at the end: {request_log}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"rows": [asdict(r) for r in runner.rows], "request_log": request_log},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
