"""ServiceRegistry: choose cost, call overhead, discovery latency, failure detection.

Run: ``python benchmarks/registry.py`` (``--quick`` for a smoke run, ``--json PATH``,
``--redis-url URL`` to use a running Redis instead of starting one).

Sections:

1. ``choose`` among 10 instances, per strategy, against ``random.choice`` on a
   list (the floor: what a hand-rolled client or py-eureka-client's random
   choice costs, with no health, ejection, zone or weight handling).
   Targets (ours; the issue sets none): the O(1) strategies within 5x the
   floor, least_outstanding (a scan of all 10, O(n)) within 15x.
2. ``call(service, fn)`` overhead over calling ``fn(instance)`` directly,
   against the usual hand-rolled alternative: ``random.choice`` plus a
   per-instance pybreaker breaker plus a retry loop. Target: at most the
   hand-rolled cost (sentia does more: stats, latency, outlier detection).
3. the same for ``acall`` against a hand-rolled async loop with a
   ``circuitbreaker`` breaker per instance.
4. discovery latency through a real redis-server: a registry in another
   process registers an instance; how long until this process's registry
   sees it (pub/sub). Reported in ms, beside the polling baseline (Eureka's
   client re-fetches every 30 s: 15 s on average).
5. failure detection: the other process is killed (SIGKILL, no deregister);
   how long until this process no longer lists its instance (ttl + one sweep).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import circuitbreaker
import pybreaker
from _harness import LocalRedis, Suite, parse_args

from sentia_core.registry import Instance, MemoryBackend, ServiceRegistry

N_INSTANCES = 10


# --- the other process ------------------------------------------------------------------


def peer_main(argv: list[str]) -> int:
    """``--peer URL TTL HEARTBEAT``: register on command, print timestamps, idle until killed.

    Reads commands from stdin: ``reg NAME`` registers an instance of service
    NAME and prints ``registered <wall time>``; EOF stops cleanly.
    """
    url, ttl, heartbeat = argv[0], float(argv[1]), float(argv[2])
    reg = ServiceRegistry(
        redis=url, ttl=ttl, heartbeat_interval=heartbeat, name="bench-peer"
    ).start()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, name = line.strip().partition(" ")
        if cmd == "reg":
            t0 = time.time()  # latency counts from the call to register()
            reg.register(name, "127.0.0.1:9")
            print(f"registered {t0:.6f}", flush=True)
    reg.close()
    return 0


class Peer:
    def __init__(self, url: str, ttl: float, heartbeat: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--peer", url, str(ttl), str(heartbeat)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.readline()  # "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer process exited")
        return line.strip()

    def register(self, service: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"reg {service}\n")
        self.proc.stdin.flush()
        return float(self.readline().split()[1])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- sections ---------------------------------------------------------------------------------


def make_memory_registry(**kw: Any) -> ServiceRegistry:
    """Ten instances, kept alive by the background thread as in a real service."""
    reg = ServiceRegistry(backend=MemoryBackend(), rng=random.Random(1), **kw).start()
    for k in range(N_INSTANCES):
        reg.register("svc", f"10.0.0.{k}:80", weight=1 + k % 3, instance_id=f"i{k}")
    return reg


def bench_choose(suite: Suite) -> None:
    reg = make_memory_registry()
    instances = reg.instances("svc")
    rnd = random.Random(1)
    choice = rnd.choice
    cases: dict[str, Any] = {"random.choice (floor)": lambda: choice(instances)}
    for strategy in (
        "weighted_round_robin",
        "round_robin",
        "random",
        "least_outstanding",
        "power_of_two",
    ):
        cases[f"sentia {strategy}"] = (
            lambda s=strategy: reg.choose("svc", s)  # type: ignore[misc]
        )
    medians = suite.compare("choose among 10 instances", cases, number=50_000)
    floor = medians["random.choice (floor)"]
    for name, value in medians.items():
        if name.startswith("sentia"):
            strategy = name.split()[1]
            target = 15 if strategy == "least_outstanding" else 5
            suite.ratio(f"{strategy} / random.choice", value, floor, target=target)
    reg.stop()


def _hand_rolled(instances: list[Instance]) -> Any:
    """What people write today: random choice, a breaker per instance, retry elsewhere.

    Sync uses pybreaker; async uses circuitbreaker (pybreaker's async support
    needs Tornado).
    """
    breakers = {i.id: pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60) for i in instances}
    abreakers = {
        i.id: circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)
        for i in instances
    }
    choice = random.Random(2).choice

    def call(fn: Any, retries: int = 2) -> Any:
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(retries + 1):
            pool = [i for i in instances if i.id not in tried] if tried else instances
            if not pool:
                break
            inst = choice(pool)
            try:
                return breakers[inst.id].call(fn, inst)
            except pybreaker.CircuitBreakerError as exc:
                last = exc
            except Exception as exc:
                last = exc
            tried.add(inst.id)
        assert last is not None
        raise last

    async def acall(fn: Any, retries: int = 2) -> Any:
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(retries + 1):
            pool = [i for i in instances if i.id not in tried] if tried else instances
            if not pool:
                break
            inst = choice(pool)
            try:
                return await abreakers[inst.id].call_async(fn, inst)
            except circuitbreaker.CircuitBreakerError as exc:
                last = exc
            except Exception as exc:
                last = exc
            tried.add(inst.id)
        assert last is not None
        raise last

    return call, acall


def bench_call(suite: Suite) -> None:
    reg = make_memory_registry()  # the defaults: weighted round robin, a CircuitBreaker each
    instances = reg.instances("svc")
    one = instances[0]
    hand_call, hand_acall = _hand_rolled(instances)

    def fn(inst: Instance) -> str:
        return inst.address

    medians = suite.compare(
        "call(service, fn): sync, success",
        {
            "direct fn(instance)": lambda: fn(one),
            "sentia call": lambda: reg.call("svc", fn),
            "hand-rolled choice+pybreaker+retry": lambda: hand_call(fn),
        },
        number=20_000,
    )
    direct = medians["direct fn(instance)"]
    ours = medians["sentia call"] - direct
    theirs = medians["hand-rolled choice+pybreaker+retry"] - direct
    suite.note("call overhead sentia (ns)", round(ours))
    suite.note("call overhead hand-rolled pybreaker (ns)", round(theirs))
    suite.ratio("overhead sentia / hand-rolled", ours, theirs, target=1.0)

    async def afn(inst: Instance) -> str:
        return inst.address

    amedians = suite.compare_async(
        "acall(service, fn): async, success",
        {
            "direct await fn(instance)": lambda: afn(one),
            "sentia acall": lambda: reg.acall("svc", afn),
            "hand-rolled choice+circuitbreaker+retry": lambda: hand_acall(afn),
        },
        number=20_000,
    )
    adirect = amedians["direct await fn(instance)"]
    aours = amedians["sentia acall"] - adirect
    atheirs = amedians["hand-rolled choice+circuitbreaker+retry"] - adirect
    suite.note("acall overhead sentia (ns)", round(aours))
    suite.note("acall overhead hand-rolled circuitbreaker (ns)", round(atheirs))
    suite.ratio("overhead sentia / hand-rolled", aours, atheirs, target=1.0)
    reg.stop()


def bench_failover(suite: Suite) -> None:
    """One of three instances dies under load from 8 threads: failures seen by callers."""
    reg = ServiceRegistry(backend=MemoryBackend(), strategy="power_of_two").start()
    for k in range(3):
        reg.register("svc", f"10.0.0.{k}:80", instance_id=f"i{k}")
    dead: set[str] = set()
    counter = {"n": 0}
    lock = threading.Lock()
    errors = []
    per_thread = 200 if suite.quick else 2000

    def fn(inst: Instance) -> str:
        with lock:
            counter["n"] += 1
            if counter["n"] == per_thread:
                dead.add("i1")
        if inst.id in dead:
            raise ConnectionResetError
        return inst.id

    def worker() -> None:
        for _ in range(per_thread):
            try:
                reg.call("svc", fn)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = reg.stats().services["svc"].per_instance["i1"]
    suite.note("failover: calls / failures seen by callers", f"{8 * per_thread} / {len(errors)}")
    suite.note("failover: attempts that hit the dead instance", s.failures + s.rejections)
    reg.stop()


def bench_discovery(suite: Suite, url: str) -> None:
    reps = 3 if suite.quick else 30
    seen: dict[str, float] = {}
    arrived = threading.Condition()

    with ServiceRegistry(redis=url, name="bench-watcher", refresh_interval=3600) as watcher:
        peer = Peer(url, ttl=30.0, heartbeat=10.0)
        try:
            latencies = []
            for k in range(reps):
                service = f"disc-{os.getpid()}-{k}"

                def on_change(found: tuple[Instance, ...], service: str = service) -> None:
                    if found:
                        with arrived:
                            seen.setdefault(service, time.time())
                            arrived.notify_all()

                stop = watcher.watch(service, on_change)
                t0 = peer.register(service)
                with arrived:
                    arrived.wait_for(lambda s=service: s in seen, timeout=10)  # type: ignore[misc]
                stop()
                if service in seen:
                    latencies.append((seen[service] - t0) * 1000)
        finally:
            peer.close()
    latencies.sort()
    suite.note("discovery via Redis pub/sub, median (ms)", round(statistics.median(latencies), 2))
    suite.note(
        "discovery via Redis pub/sub, max (ms)",
        round(latencies[-1], 2),
    )
    suite.note("discovery samples", len(latencies))
    suite.note("discovery by 30 s polling (Eureka client default), mean (ms)", 15_000)


def _detect_once(url: str, ttl: float, sweep: float, service: str) -> float:
    """Kill a peer holding an instance of ``service``; ms until a watcher drops it."""
    present = threading.Event()
    gone = threading.Event()

    def on_change(found: tuple[Instance, ...]) -> None:
        if found:
            present.set()
        elif present.is_set():
            gone.set()

    with ServiceRegistry(
        redis=url, name="bench-detector", sweep_interval=sweep, refresh_interval=3600
    ) as watcher:
        peer = Peer(url, ttl=ttl, heartbeat=ttl / 4)
        try:
            watcher.watch(service, on_change)
            peer.register(service)
            present.wait(10)
            time.sleep(ttl / 2)  # a heartbeat or two: a lease in mid-life, not a fresh one
            t0 = time.time()
            peer.kill()
            gone.wait(ttl * 4 + 5)
            return (time.time() - t0) * 1000
        finally:
            peer.close()


def bench_failure_detection(suite: Suite, url: str) -> None:
    ttl = 1.0 if suite.quick else 2.0
    reps = 1 if suite.quick else 3
    sweep = 0.1
    results = [round(_detect_once(url, ttl, sweep, f"kill-{os.getpid()}-{k}")) for k in range(reps)]
    suite.note(f"failure detection after SIGKILL, ttl={ttl:g}s sweep={sweep:g}s (ms)", results)
    suite.note("failure detection bound: ttl + one sweep (ms)", round((ttl + sweep) * 1000))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        sys.exit(peer_main(sys.argv[2:]))
    args = parse_args(__doc__ or "registry benchmark")
    suite = Suite.from_args("registry", args)
    bench_choose(suite)
    bench_call(suite)
    bench_failover(suite)
    with LocalRedis(args.redis_url) as redis:
        if redis.url is None:
            suite.note("redis sections", "skipped: no redis-server binary and no --redis-url")
        else:
            bench_discovery(suite, redis.url)
            bench_failure_detection(suite, redis.url)
    suite.finish(args)


if __name__ == "__main__":
    main()
