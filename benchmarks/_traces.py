"""Access traces for the hit-ratio benchmark, and Belady's optimum over them.

Synthetic traces are generated here from a seed (Zipf, Zipf with one-off
scans, a loop). Real-world traces are read from ``benchmarks/traces/`` (not
in git; ``python benchmarks/_fetch_traces.py --caffeine PATH`` puts them there
from a clone of the Caffeine repository, whose simulator ships them): the
cache2k traces (web07, web12, orm-busy; CC BY 4.0, headissue GmbH / Jens
Wilke) and the LIRS traces (sprite, multi2; from the LIRS authors, no licence
stated, so only fetched, never committed).
"""

from __future__ import annotations

import bisect
import gzip
import heapq
import lzma
import random
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TRACE_DIR", "Trace", "belady", "real_traces", "synthetic_traces"]

TRACE_DIR = Path(__file__).resolve().parent / "traces"


@dataclass(frozen=True)
class Trace:
    name: str
    keys: list[str]
    capacity: int
    source: str


def zipf(n: int, universe: int, s: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    cumulative: list[float] = []
    total = 0.0
    for k in range(1, universe + 1):
        total += 1.0 / (k**s)
        cumulative.append(total)
    return [f"z:{bisect.bisect_left(cumulative, rng.random() * total)}" for _ in range(n)]


def zipf_with_scans(n: int, universe: int, s: float, seed: int, scan: int, every: int) -> list[str]:
    """Zipf requests, and every ``every`` requests a scan of ``scan`` keys never seen again."""
    base = zipf(n, universe, s, seed)
    out: list[str] = []
    scans = 0
    for i, key in enumerate(base):
        if i and i % every == 0:
            out.extend(f"scan:{scans}:{j}" for j in range(scan))
            scans += 1
        out.append(key)
    return out


def loop(n: int, length: int) -> list[str]:
    return [f"l:{i % length}" for i in range(n)]


def synthetic_traces(quick: bool) -> list[Trace]:
    n = 30_000 if quick else 300_000
    out = [
        Trace(
            f"Zipf {s} (100,000 keys)",
            zipf(n, 100_000, s, seed=42),
            1_000,
            f"{n:,} requests, seed 42",
        )
        for s in (0.6, 0.8, 1.0)
    ]
    out.append(
        Trace(
            "Zipf 0.8 + scans",
            zipf_with_scans(n, 100_000, 0.8, seed=43, scan=2_000, every=10_000),
            1_000,
            f"{n:,} Zipf requests, a one-off scan of 2,000 keys every 10,000",
        )
    )
    out.append(
        Trace(
            "loop of 1,200 keys",
            loop(n // 2, 1_200),
            1_000,
            f"{n // 2:,} requests cycling over 1,200 keys",
        )
    )
    return out


def _cache2k(path: Path, limit: int) -> list[str]:
    with lzma.open(path) as fh:
        raw = fh.read(4 * limit)
    count = len(raw) // 4
    return [str(k) for k in struct.unpack(f">{count}i", raw[: 4 * count])]


def _lirs(path: Path, limit: int) -> list[str]:
    with gzip.open(path, "rt") as fh:
        keys = [line for line in fh.read().split() if line != "*"]
    return keys[:limit]


#: (name, file, reader, capacity, request limit (full, quick), source)
REAL = [
    ("cache2k web07", "web07.trace.xz", _cache2k, 2_000, (80_000, 20_000), "cache2k, CC BY 4.0"),
    ("cache2k web12", "web12.trace.xz", _cache2k, 2_000, (100_000, 20_000), "cache2k, CC BY 4.0"),
    (
        "cache2k orm-busy",
        "orm-busy.trace.xz",
        _cache2k,
        5_000,
        (500_000, 50_000),
        "cache2k, CC BY 4.0; the first requests",
    ),
    ("LIRS sprite", "sprite.trace.gz", _lirs, 1_000, (140_000, 20_000), "LIRS traces"),
    ("LIRS multi2", "multi2.trace.gz", _lirs, 1_000, (30_000, 10_000), "LIRS traces"),
]


def real_traces(quick: bool, directory: Path = TRACE_DIR) -> tuple[list[Trace], list[str]]:
    """The real-world traces found in ``directory``, and the names of those missing."""
    found: list[Trace] = []
    missing: list[str] = []
    for name, filename, reader, capacity, limits, source in REAL:
        path = directory / filename
        if not path.exists():
            missing.append(name)
            continue
        limit = limits[1] if quick else limits[0]
        keys = reader(path, limit)
        found.append(Trace(name, keys, capacity, f"{source}; {len(keys):,} requests"))
    return found, missing


def belady(keys: list[str], capacity: int) -> float:
    """The hit ratio of Belady's MIN: evict the key whose next use is farthest
    (or keep the missed key out if its own next use is farther still)."""
    n = len(keys)
    never = n + 1
    next_use = [never] * n
    last: dict[str, int] = {}
    for i in range(n - 1, -1, -1):
        k = keys[i]
        next_use[i] = last.get(k, never)
        last[k] = i
    cached: dict[str, int] = {}  # key -> its next use
    heap: list[tuple[int, str]] = []  # (-next use, key), lazily cleaned
    hits = 0
    for i, key in enumerate(keys):
        nxt = next_use[i]
        if key in cached:
            hits += 1
        elif len(cached) >= capacity:
            while cached.get(heap[0][1]) != -heap[0][0]:
                heapq.heappop(heap)  # stale: the key was used (or left) since
            if -heap[0][0] <= nxt:
                continue  # used later than anything held: not worth a place
            del cached[heapq.heappop(heap)[1]]
        cached[key] = nxt
        heapq.heappush(heap, (-nxt, key))
    return hits / n
