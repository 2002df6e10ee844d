"""The original deployment's claims, measured end to end: one gateway, three stacks, real load.

    python benchmarks/service.py [--quick] [--json PATH] [--markdown PATH] [--plots DIR]
    sentia bench service

A gateway (``benchmarks/service/gateway.py``, Starlette on uvicorn, 127.0.0.1)
serves the original deployment's routes in miniature — a catalog read through
a cache (Zipf-distributed ids over SQLite), an order history with an N+1, an
auth check and an analytics call to partner services, a tag invalidation —
over three stacks: ``none`` (plain httpx and direct database calls),
``peers`` (tenacity + aiobreaker + cashews + limits + prometheus_client) and
``sentia`` (the facade and its middleware). Partners
(``benchmarks/service/partner.py``) are separate processes with lognormal
latency; the analytics partner has three instances. A real redis-server is
started for the peers' and sentia's Redis.

Load comes from ``wrk`` with a Lua script (``benchmarks/service/mix.lua``) for
the route mix and the Zipf ids. ``wrk`` keeps a fixed number of connections,
each pacing its requests (``delay()``); it is a closed loop, so under a stall
the offered rate drops (coordinated omission). The fault scenarios therefore
also read every request's end time, duration and status from the gateway
(an outer middleware, the same for every stack), which is what the latency
plots and the recovery times are computed from.

Scenarios, for each stack: steady load (as fast as the gateway goes); partner
outage for 10 s then recovery; partner latency spike (x10 for 10 s); Redis
restarted mid-run; one of three analytics instances killed; the N+1 route
before and after applying the index advice sentia_core verified. For each:
requests per second, p50 / p95 / p99, error rate, cache hit rate and time to
recover after the fault ends.

The run is bounded (about 7 minutes in full, under a minute with ``--quick``,
which runs three scenarios briefly) and stops every process it starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RIG = HERE / "service"
STACKS = ("sentia", "peers", "none")  # sentia first: its verified advice is applied to all
MIX = "products:75,orders:5,auth:10,analytics:10"
PRODUCTS = 10_000
CUSTOMERS = 1_000
ZIPF_S = 0.9
BUCKET = 0.5  # seconds per point of the latency-over-time series

#: The original deployment's claims (ORIGINAL_SPEC.md), and how each is read here.
CLAIMS = [
    ("Cache hit rate 85%+", "steady: products served without a database load"),
    ("P95 under 2 s", "steady: p95 of every request (wrk)"),
    ("1000+ requests per second", "capacity: requests per second, unpaced (wrk)"),
    ("Memory cache < 10 ms", "steady: products route p50, server side"),
    ("Tag invalidation < 100 ms", "steady: POST /admin/invalidate/category:N, client side, median"),
    ("Recovery < 30 s after a fault", "the longest recovery of the fault scenarios"),
    ("99.9% uptime through circuit breakers", "partner outage: share of requests answered 2xx"),
]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    pre: float  # seconds of load before the fault
    fault: float  # seconds the fault lasts (0: it lasts to the end)
    post: float  # seconds of load after the fault ends
    connections: int = 16
    pace_ms: int = 25
    mix: str = MIX
    route: str = ""  # the route the fault hits ("" = every route)

    @property
    def duration(self) -> float:
        return self.pre + self.fault + self.post


def scenarios(quick: bool) -> list[Scenario]:
    """Every scenario but ``capacity`` runs at the same paced load, below saturation."""
    if quick:
        return [
            Scenario("steady", "Steady load", 2.5, 0, 0),
            Scenario("partner_outage", "Partner outage", 1.5, 2, 2.5, route="auth"),
            Scenario(
                "nplus1", "N+1 route", 1.5, 0, 1.5, connections=8, pace_ms=10, mix="orders:1",
                route="customers",
            ),
        ]  # fmt: skip
    return [
        Scenario("capacity", "Capacity (unpaced)", 10, 0, 0, connections=32, pace_ms=0),
        Scenario("steady", "Steady load", 15, 0, 0),
        Scenario("partner_outage", "Partner outage, 10 s", 5, 10, 12, route="auth"),
        Scenario("latency_spike", "Partner latency x10, 10 s", 5, 10, 12, route="auth"),
        Scenario("redis_restart", "Redis restarted", 5, 3, 12),
        Scenario("instance_killed", "One of three instances killed", 5, 0, 20, route="analytics"),
        Scenario(
            "nplus1", "N+1 route, before and after the index advice", 6, 0, 6, connections=8,
            pace_ms=10, mix="orders:1", route="customers",
        ),
    ]  # fmt: skip


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {out[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Processes:
    """Every process the rig starts; all stopped on exit, whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def start(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> Any:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        wait_port(port, proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


class Redis:
    def __init__(self, procs: Processes, workdir: Path) -> None:
        self.procs = procs
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Any = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = self.procs.start(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"],
            self.port,
        )  # fmt: skip

    def kill(self) -> None:
        self.procs.stop(self.proc, signal.SIGKILL)

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(64)


class Partner:
    def __init__(self, procs: Processes, median: float, seed: int) -> None:
        self.procs = procs
        self.port = free_port()
        self.median = median
        self.seed = seed
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None
        self.start()

    def start(self) -> None:
        argv = [sys.executable, str(RIG / "partner.py"), "--port", str(self.port),
                "--median", str(self.median), "--seed", str(self.seed)]  # fmt: skip
        self.proc = self.procs.start(argv, self.port)

    def kill(self) -> None:
        self.procs.stop(self.proc, signal.SIGKILL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def control(self, mode: str, factor: float = 10.0) -> None:
        post(f"{self.url}/_control?mode={mode}&factor={factor}")


def post(url: str, body: object = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def get(url: str, timeout: float = 30.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


# --------------------------------------------------------------------------- data


def build_database(path: Path) -> None:
    """Products, customers' orders and order items; no index on the foreign keys."""
    import random

    rng = random.Random(42)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL, category TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, placed_at TEXT);
        CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER,
                                  product_id INTEGER, quantity INTEGER);
        """
    )
    conn.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)",
        ((i, f"product {i}", round(rng.uniform(1, 500), 2), f"c{i % 40}")
         for i in range(1, PRODUCTS + 1)),
    )  # fmt: skip
    orders = [(i, rng.randint(1, CUSTOMERS), f"2025-09-{1 + i % 28:02d}") for i in range(1, 5001)]
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", orders)
    conn.executemany(
        "INSERT INTO order_items (order_id, product_id, quantity) VALUES (?, ?, ?)",
        (
            (o, rng.randint(1, PRODUCTS), rng.randint(1, 5))
            for o in range(1, 5001)
            for _ in range(4)
        ),
    )
    conn.commit()
    conn.close()


# --------------------------------------------------------------------------- load


def run_wrk(port: int, sc: Scenario, out: Path) -> subprocess.Popen[Any]:
    env = {
        **os.environ,
        "MIX": sc.mix,
        "PRODUCTS": str(PRODUCTS),
        "CUSTOMERS": str(CUSTOMERS),
        "ZIPF_S": str(ZIPF_S),
        "PACE_MS": str(sc.pace_ms),
        "OUT": str(out),
    }
    argv = [
        "wrk", "-t1", f"-c{sc.connections}", f"-d{max(1, math.ceil(sc.duration))}s",
        "--timeout", "5s", "-s", str(RIG / "mix.lua"), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def buckets(
    series: dict[str, list[Any]], start: float, end: float, route: str
) -> list[dict[str, Any]]:
    """The per-request series cut in BUCKET-second points for one route ("" = all)."""
    n = max(1, math.ceil((end - start) / BUCKET))
    groups: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for t, d, s, r in zip(
        series["end"], series["duration"], series["status"], series["route"], strict=True
    ):
        if route and r != route:
            continue
        i = int((t - start) / BUCKET)
        if 0 <= i < n:
            groups[i].append((d, s))
    points = []
    for i, group in enumerate(groups):
        durations = [d for d, _ in group]
        errors = sum(1 for _, s in group if s >= 500)
        points.append(
            {
                "t": round(i * BUCKET, 3),
                "count": len(group),
                "errors": errors,
                "p50_ms": percentile(durations, 0.50) * 1000 if group else None,
                "p99_ms": percentile(durations, 0.99) * 1000 if group else None,
            }
        )
    return points


def recovery_time(
    points: list[dict[str, Any]], fault_end: float, baseline_p99: float
) -> float | None:
    """Seconds from ``fault_end`` until every later point is healthy, or None.

    Healthy: at most 1 % errors and a p99 within twice the pre-fault p99
    (or 20 ms above it, whichever is larger).
    """
    limit = max(2 * baseline_p99, baseline_p99 + 20.0)
    later = [p for p in points if p["t"] >= fault_end - 1e-9]
    for i, p in enumerate(later):
        rest = later[i:]
        if all(
            q["count"] == 0 or (q["errors"] <= 0.01 * q["count"] and (q["p99_ms"] or 0) <= limit)
            for q in rest
        ):
            return round(max(0.0, p["t"] - fault_end), 3)
    return None


@dataclass
class Result:
    stack: str
    scenario: str
    wrk: dict[str, Any]
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    hit_rate: float | None
    recovery_s: float | None
    points: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Gateway:
    def __init__(self, procs: Processes, stack: str, db: Path, redis: Redis,
                 auth: Partner, analytics: list[Partner]) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable, str(RIG / "gateway.py"), "--stack", stack, "--port", str(self.port),
            "--db", str(db), "--redis", redis.url, "--auth", auth.url,
            "--analytics", ",".join(p.url for p in analytics),
        ]  # fmt: skip
        self.proc = procs.start(argv, self.port, env={"PYTHONUNBUFFERED": "1"})


def run_scenario(
    sc: Scenario, stack: str, gw: Gateway, rig: Rig, workdir: Path, advice: list[str]
) -> tuple[Result, list[str]]:
    out = workdir / f"wrk-{stack}-{sc.name}.json"
    stats_before = get(f"{gw.url}/_bench/stats")
    start = time.monotonic()
    load = run_wrk(gw.port, sc, out)
    invalidations: list[float] = []
    applied: list[str] = []
    fault_at = start + sc.pre
    fault_end = fault_at + sc.fault

    def sleep_until(t: float) -> None:
        time.sleep(max(0.0, t - time.monotonic()))

    if sc.name == "steady":
        n = 0
        while time.monotonic() < start + sc.duration - 0.5:
            sleep_until(time.monotonic() + min(2.0, sc.duration / 4))
            t0 = time.perf_counter()
            post(f"{gw.url}/admin/invalidate/category:c{n % 40}")
            invalidations.append((time.perf_counter() - t0) * 1000)
            n += 7
    elif sc.name == "partner_outage":
        sleep_until(fault_at)
        rig.auth.control("outage")
        sleep_until(fault_end)
        rig.auth.control("normal")
    elif sc.name == "latency_spike":
        sleep_until(fault_at)
        rig.auth.control("spike", 10)
        sleep_until(fault_end)
        rig.auth.control("normal")
    elif sc.name == "redis_restart":
        sleep_until(fault_at)
        rig.redis.kill()
        sleep_until(fault_end)
        rig.redis.start()
    elif sc.name == "instance_killed":
        sleep_until(fault_at)
        rig.analytics[0].kill()
    elif sc.name == "nplus1":
        sleep_until(fault_at)
        if stack == "sentia":
            applied = post(f"{gw.url}/_bench/advice")["applied"]
        elif advice:
            applied = post(f"{gw.url}/_bench/apply", {"ddl": advice})["applied"]
    load.wait(sc.duration + 30)
    if not out.exists():
        output = load.stdout.read().decode(errors="replace") if load.stdout else ""
        raise RuntimeError(f"wrk wrote no summary: {output[-2000:]}")
    hung = False
    try:
        stats_after = get(f"{gw.url}/_bench/stats", timeout=10)
        series = get(f"{gw.url}/_bench/series?since={start}", timeout=30)
    except OSError:  # the gateway stopped answering: the stack never recovered
        hung = True
        stats_after = stats_before
        series = {"end": [], "duration": [], "status": [], "route": []}
    summary = json.loads(out.read_text())
    requests = max(1, summary["requests"])
    failed = summary["server_errors"] + summary["socket_errors"] + summary["timeouts"]
    product_requests = sum(1 for r in series["route"] if r == "products")
    loads = stats_after["loads"] - stats_before["loads"]
    hit_rate = None
    if product_requests and stack != "none":
        hit_rate = round(max(0.0, 1 - loads / product_requests), 4)
    end = start + sc.duration
    points = buckets(series, start, end, sc.route)
    recovery = None
    extra: dict[str, Any] = {}
    route_durations = [
        d for d, r, t in zip(series["duration"], series["route"], series["end"], strict=True)
        if (not sc.route or r == sc.route) and t < fault_at
    ]  # fmt: skip
    extra["gateway_hung"] = hung
    if sc.name in ("partner_outage", "latency_spike", "redis_restart", "instance_killed"):
        baseline = percentile(route_durations, 0.99) * 1000 if route_durations else 50.0
        recovery = (
            None
            if hung
            else recovery_time(points, (fault_end if sc.fault else fault_at) - start, baseline)
        )
        extra["baseline_p99_ms"] = round(baseline, 2)
        during = [
            s for s, t in zip(series["status"], series["end"], strict=True)
            if fault_at <= t < (fault_end if sc.fault else end)
        ]  # fmt: skip
        extra["fault_success_rate"] = (
            round(sum(1 for s in during if s < 400) / len(during), 5) if during else None
        )
        extra["fault_window_s"] = [round(sc.pre, 2), round(sc.pre + sc.fault, 2)]
    if sc.name == "steady":
        extra["invalidation_ms"] = [round(v, 2) for v in invalidations]
        products = [
            d for d, r in zip(series["duration"], series["route"], strict=True) if r == "products"
        ]
        extra["products_p50_ms"] = round(percentile(products, 0.5) * 1000, 3)
        extra["products_p99_ms"] = round(percentile(products, 0.99) * 1000, 3)
    if sc.name == "nplus1":
        split = fault_at
        before = [d for d, t in zip(series["duration"], series["end"], strict=True) if t < split]
        after = [
            d for d, t in zip(series["duration"], series["end"], strict=True) if t >= split + 0.5
        ]
        extra["before_p50_ms"] = round(percentile(before, 0.5) * 1000, 3)
        extra["before_p99_ms"] = round(percentile(before, 0.99) * 1000, 3)
        extra["after_p50_ms"] = round(percentile(after, 0.5) * 1000, 3)
        extra["after_p99_ms"] = round(percentile(after, 0.99) * 1000, 3)
        extra["before_rps"] = round(len(before) / max(sc.pre, 1e-9), 1)
        extra["after_rps"] = round(len(after) / max(sc.post - 0.5, 1e-9), 1)
        extra["applied"] = applied
        extra["nplusone_reports"] = stats_after.get("nplusone")
    result = Result(
        stack=stack,
        scenario=sc.name,
        wrk=summary,
        rps=round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        p50_ms=summary["p50_us"] / 1000,
        p95_ms=summary["p95_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        error_rate=round(failed / requests, 5),
        hit_rate=hit_rate,
        recovery_s=recovery,
        points=points,
        extra=extra,
    )
    return result, applied


@dataclass
class Rig:
    procs: Processes
    redis: Redis
    auth: Partner
    analytics: list[Partner]


@contextlib.contextmanager
def rig(workdir: Path) -> Iterator[Rig]:
    procs = Processes()
    try:
        redis = Redis(procs, workdir)
        auth = Partner(procs, 0.005, seed=1)
        analytics = [Partner(procs, 0.010, seed=10 + i) for i in range(3)]
        yield Rig(procs, redis, auth, analytics)
    finally:
        procs.stop_all()


def run(quick: bool, stacks: tuple[str, ...] = STACKS) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("the service benchmark needs wrk (Debian package wrk)")
    results: list[Result] = []
    advice: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sentia-service-") as tmp:
        workdir = Path(tmp)
        template = workdir / "template.db"
        build_database(template)
        with rig(workdir) as r:
            for stack in stacks:
                db = workdir / f"{stack}.db"
                shutil.copy(template, db)
                r.redis.flush()
                for p in r.analytics:
                    if not p.alive():
                        p.start()
                r.auth.control("normal")
                gw = Gateway(r.procs, stack, db, r.redis, r.auth, r.analytics)
                try:
                    # a running service: pools, interpreter and cache warm, as in production
                    warm = Scenario("warm", "", 1.0 if quick else 5.0, 0, 0)
                    run_wrk(gw.port, warm, workdir / "warm.json").wait(30)
                    for sc in scenarios(quick):
                        print(f"  {stack:6} {sc.name} ({sc.duration:.0f} s)", flush=True)
                        result, applied = run_scenario(sc, stack, gw, r, workdir, advice)
                        if stack == "sentia" and sc.name == "nplus1":
                            advice = applied
                        results.append(result)
                        if result.extra.get("gateway_hung"):
                            print(f"  {stack:6} gateway stopped answering: restarted", flush=True)
                            r.procs.stop(gw.proc, signal.SIGKILL)
                            gw = Gateway(r.procs, stack, db, r.redis, r.auth, r.analytics)
                        if not r.redis.proc or r.redis.proc.poll() is not None:
                            r.redis.start()
                        for p in r.analytics:
                            if not p.alive():
                                p.start()
                finally:
                    r.procs.stop(gw.proc)
    return report(results, quick)


def _machine() -> str:
    try:
        import psutil

        memory = psutil.virtual_memory().total / 1024**3
        hw = f"{psutil.cpu_count(logical=True)} cores, {memory:.0f} GiB"
    except Exception:  # pragma: no cover
        hw = "unknown size"
    return f"{platform.system()} {platform.machine()}, {hw}, Python {platform.python_version()}"


def report(results: list[Result], quick: bool) -> dict[str, Any]:
    """The JSON: the shared benchmark shape (sections of medians and ratios) plus detail."""
    sections = []
    by = {(r.stack, r.scenario): r for r in results}
    names = list(dict.fromkeys(r.scenario for r in results))
    for name in names:
        medians: dict[str, float] = {}
        ratios = []
        for stack in STACKS:
            res = by.get((stack, name))
            if res is None:
                continue
            medians[f"{stack} p50 latency"] = max(res.p50_ms, 1e-3)
            medians[f"{stack} p99 latency"] = max(res.p99_ms, 1e-3)
        for peer in ("peers", "none"):
            if (peer, name) in by and ("sentia", name) in by:
                ratios.append(
                    {
                        "label": f"p99 sentia / {peer}",
                        "value": by[("sentia", name)].p99_ms / max(by[(peer, name)].p99_ms, 1e-9),
                        "target": 1.0 if peer == "peers" else None,
                    }
                )
        sections.append({"title": name, "unit": "ms", "medians": medians, "ratios": ratios})
    return {
        "suite": "Service, end to end",
        "quick": quick,
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "sections": sections,
        "results": [r.__dict__ for r in results],
    }


# --------------------------------------------------------------------------- rendering


def _fmt(v: float | None, unit: str = "", digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}{unit}"


def plot(data: dict[str, Any], outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    colors = {"sentia": "#1f77b4", "peers": "#d62728", "none": "#7f7f7f"}
    for name in dict.fromkeys(r["scenario"] for r in data["results"]):
        rows = [r for r in data["results"] if r["scenario"] == name]
        if name in ("capacity", "steady", "nplus1"):
            continue
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        for r in rows:
            ts = [p["t"] for p in r["points"]]
            p99 = [p["p99_ms"] if p["p99_ms"] is not None else math.nan for p in r["points"]]
            err = [100 * p["errors"] / p["count"] if p["count"] else math.nan for p in r["points"]]
            ax1.plot(ts, p99, label=r["stack"], color=colors[r["stack"]], linewidth=1.4)
            ax2.plot(ts, err, label=r["stack"], color=colors[r["stack"]], linewidth=1.4)
        window = rows[0]["extra"].get("fault_window_s")
        if window:
            for ax in (ax1, ax2):
                ax.axvspan(window[0], window[1] if window[1] > window[0] else ts[-1],
                           color="#f4c542", alpha=0.25, label=None)  # fmt: skip
        ax1.set_ylabel("p99 latency (ms)")
        ax1.set_yscale("log")
        ax2.set_ylabel("errors (%)")
        ax2.set_xlabel("seconds into the scenario")
        ax1.legend(loc="upper right", fontsize=8)
        ax1.set_title(f"{name.replace('_', ' ')} — {data['machine']}", fontsize=9)
        fig.tight_layout()
        path = outdir / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path.name)
    return made


def render_markdown(data: dict[str, Any], plots_rel: str | None) -> str:
    results = data["results"]
    by = {(r["stack"], r["scenario"]): r for r in results}
    mode = " (a --quick run: indicative only)" if data["quick"] else ""
    lines = [
        "# Service benchmark: the original deployment's claims, end to end",
        "",
        "<!-- Generated by `python benchmarks/service.py --json benchmarks/results/service.json",
        "     --markdown docs/service-benchmark.md --plots docs/img/service`; do not edit. -->",
        "",
        f"Measured {data['date']} on {data['machine']}{mode}. One uvicorn worker serves the",
        "gateway; `wrk` (one thread), the partners and redis-server share the same two cores,",
        "so absolute figures are this machine's, not a capacity plan. The rig and its settings",
        "are described in `benchmarks/service.py`; each stack gets the same retry, breaker,",
        "timeout, TTL and limit settings.",
        "",
        "## The claims",
        "",
        "| claim | how it is read | sentia | peers | none |",
        "| --- | --- | ---: | ---: | ---: |",
    ]

    def claim_value(claim: str, stack: str) -> str:
        steady = by.get((stack, "steady"))
        if steady is None:
            return "—"
        if claim.startswith("Cache hit"):
            return (
                _fmt(100 * steady["hit_rate"], " %")
                if steady["hit_rate"] is not None
                else "no cache"
            )
        if claim.startswith("P95"):
            return _fmt(steady["p95_ms"], " ms")
        if claim.startswith("1000+"):
            capacity = by.get((stack, "capacity"), steady)
            return _fmt(capacity["rps"], " req/s", 0)
        if claim.startswith("Memory cache"):
            return _fmt(steady["extra"].get("products_p50_ms"), " ms", 2)
        if claim.startswith("Tag invalidation"):
            inv = steady["extra"].get("invalidation_ms") or []
            return _fmt(statistics.median(inv), " ms") if inv and stack != "none" else "—"
        if claim.startswith("Recovery"):
            rec = [
                r["recovery_s"]
                for r in results
                if r["stack"] == stack and "fault_window_s" in r["extra"]
            ]
            if not rec:
                return "—"
            if any(v is None for v in rec):
                return "not within the window"
            return _fmt(max(rec), " s")
        if claim.startswith("99.9%"):
            outage = by.get((stack, "partner_outage"))
            rate = outage["extra"].get("fault_success_rate") if outage else None
            return _fmt(100 * rate, " %", 2) if rate is not None else "—"
        return "—"

    for claim, how in CLAIMS:
        cells = " | ".join(claim_value(claim, s) for s in STACKS)
        lines.append(f"| {claim} | {how} | {cells} |")
    lines += [""]
    for name in dict.fromkeys(r["scenario"] for r in results):
        lines += [f"## {name.replace('_', ' ')}", ""]
        lines += [
            "| stack | req/s | p50 ms | p95 ms | p99 ms | errors | cache hits | recovery |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for stack in STACKS:
            r = by.get((stack, name))
            if r is None:
                continue
            hit = _fmt(100 * r["hit_rate"], " %") if r["hit_rate"] is not None else "—"
            rec = r["recovery_s"]
            rec_s = _fmt(rec, " s") if rec is not None else (
                "not within the window" if "fault_window_s" in r["extra"] else "—"
            )  # fmt: skip
            if r["extra"].get("gateway_hung"):
                rec_s = "never: the gateway stopped answering"
            cells = [
                _fmt(r["rps"], "", 0), _fmt(r["p50_ms"]), _fmt(r["p95_ms"]), _fmt(r["p99_ms"]),
                _fmt(100 * r["error_rate"], " %", 2), hit, rec_s,
            ]  # fmt: skip
            lines.append(f"| {stack} | " + " | ".join(cells) + " |")
        if name == "nplus1":
            lines += [
                "",
                "| stack | before p50 | before p99 | after p50 | after p99 | indexes applied |",
                "| --- | ---: | ---: | ---: | ---: | --- |",
            ]
            for stack in STACKS:
                r = by.get((stack, name))
                if r is None:
                    continue
                e = r["extra"]
                ddl = "; ".join(f"`{d}`" for d in e.get("applied") or []) or "none"
                keys = ("before_p50_ms", "before_p99_ms", "after_p50_ms", "after_p99_ms")
                cells = [_fmt(e[k], " ms", 2) for k in keys]
                lines.append(f"| {stack} | " + " | ".join(cells) + f" | {ddl} |")
        if plots_rel and name not in ("capacity", "steady", "nplus1"):
            lines += ["", f"![{name}]({plots_rel}/{name}.png)"]
        lines.append("")
    lines += [
        "## How to read it",
        "",
        "* Latency percentiles and requests per second are `wrk`'s, over the whole scenario.",
        "  `wrk` is a closed loop (each connection waits for its answer), so during a stall",
        "  fewer requests are offered; the plots and recovery times come from every request's",
        "  server-side end time, duration and status instead.",
        "* Errors are 5xx answers, socket errors and timeouts over all requests. A failed",
        "  dependency is answered 503 by every stack.",
        "* Recovery: seconds from the end of the fault (for a killed instance, from the",
        "  kill) until every later half-second has at most 1 % errors and a p99 within twice",
        "  the pre-fault p99 on the route the fault hits.",
        "* Cache hits: products requests served without a database load.",
        "* A gateway that stops answering the rig (its event loop blocked) is killed and",
        "  started again for the next scenario; its scenario is reported as never recovered.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="three scenarios, briefly (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="render the results page")
    parser.add_argument("--plots", metavar="DIR", help="write latency-over-time PNGs here")
    parser.add_argument("--render-only", action="store_true", help="render --json, run nothing")
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated stacks")
    parser.add_argument("--redis-url", default=None, help="ignored: the rig restarts its own Redis")
    parser.add_argument("--rounds", type=int, default=None, help="ignored (one run per scenario)")
    args = parser.parse_args(argv)
    if args.render_only:
        data = json.loads(Path(args.json).read_text())
    else:
        data = run(args.quick, tuple(s for s in args.stacks.split(",") if s))
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=1, default=str) + "\n")
        for sec in data["sections"]:
            print(f"\n{sec['title']}")
            for k, v in sec["medians"].items():
                print(f"  {k:24} {v:10.2f} ms")
            for ratio in sec["ratios"]:
                print(f"  {ratio['label']:24} {ratio['value']:10.2f}")
        for r in data["results"]:
            print(
                f"{r['scenario']:16} {r['stack']:6} rps={r['rps']:8.0f} p99={r['p99_ms']:8.1f} ms "
                f"err={100 * r['error_rate']:6.2f}% hit={r['hit_rate']} rec={r['recovery_s']}"
            )
    plots_rel = None
    if args.plots:
        plot(data, Path(args.plots))
        if args.markdown:
            plots_rel = os.path.relpath(args.plots, Path(args.markdown).parent)
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(data, plots_rel))


if __name__ == "__main__":
    main()
