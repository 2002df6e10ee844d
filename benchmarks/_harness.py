"""Side-by-side timing shared by every benchmark script.

Theory: each case is a zero-argument callable (or coroutine function) doing
one operation. A *round* times every case once for ``number`` operations, in
an order that rotates each round, so the cases alternate in the same process
and drift (turbo, GC, other load) falls on all of them alike. The reported
figure is the median over rounds of nanoseconds per operation. Ratios are
sentia/peer: below 1.0 means sentia_core is faster.

A script builds a :class:`Suite`, adds sections with :meth:`Suite.compare`
(or :meth:`Suite.compare_async`), records derived figures with
:meth:`Suite.note`, and ends with :meth:`Suite.finish`, which prints the
tables and writes ``--json PATH`` when asked.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LocalRedis", "Suite", "parse_args"]


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="run every case briefly")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON to PATH")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per section")
    parser.add_argument(
        "--redis-url", default=None, help="Redis for the Redis cases (default: start one)"
    )
    return parser.parse_args(argv)


def _time_sync(fn: Callable[[], object], number: int) -> float:
    rng = range(number)
    start = time.perf_counter_ns()
    for _ in rng:
        fn()
    return (time.perf_counter_ns() - start) / number


async def _time_async(fn: Callable[[], Awaitable[object]], number: int) -> float:
    rng = range(number)
    start = time.perf_counter_ns()
    for _ in rng:
        await fn()
    return (time.perf_counter_ns() - start) / number


@dataclass
class Section:
    title: str
    unit: str
    medians: dict[str, float]
    ratios: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class Suite:
    """Collects sections and prints them; ``quick`` shortens every section."""

    name: str
    quick: bool = False
    rounds: int | None = None
    sections: list[Section] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, name: str, args: argparse.Namespace) -> Suite:
        return cls(name=name, quick=bool(args.quick), rounds=args.rounds)

    def _plan(self, number: int, rounds: int) -> tuple[int, int]:
        if self.quick:
            return max(1, number // 50), 3
        return number, self.rounds or rounds

    def compare(
        self,
        title: str,
        cases: dict[str, Callable[[], object]],
        *,
        number: int = 20_000,
        rounds: int = 15,
        warmup: bool = True,
    ) -> dict[str, float]:
        """Time sync cases alternately; returns median ns/op per case."""
        number, rounds = self._plan(number, rounds)
        names = list(cases)
        if warmup:
            for name in names:
                _time_sync(cases[name], max(1, number // 10))
        samples: dict[str, list[float]] = {n: [] for n in names}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    samples[name].append(_time_sync(cases[name], number))
        finally:
            if gc_was:
                gc.enable()
        return self._record(title, samples)

    def compare_async(
        self,
        title: str,
        cases: dict[str, Callable[[], Awaitable[object]]],
        *,
        number: int = 20_000,
        rounds: int = 15,
    ) -> dict[str, float]:
        """Time coroutine cases alternately in one event loop; median ns/op."""
        number, rounds = self._plan(number, rounds)
        names = list(cases)

        async def run() -> dict[str, list[float]]:
            for name in names:
                await _time_async(cases[name], max(1, number // 10))
            samples: dict[str, list[float]] = {n: [] for n in names}
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    samples[name].append(await _time_async(cases[name], number))
            return samples

        return self._record(title, asyncio.run(run()))

    def _record(self, title: str, samples: dict[str, list[float]]) -> dict[str, float]:
        medians = {n: statistics.median(s) for n, s in samples.items()}
        self.sections.append(Section(title=title, unit="ns/op", medians=medians))
        return medians

    def ratio(
        self, label: str, sentia: float, peer: float, *, target: float | None = None
    ) -> float:
        """Record sentia/peer for the last section (with an optional target)."""
        value = sentia / peer if peer else float("inf")
        self.sections[-1].ratios.append((label, "" if target is None else f"{target:g}", value))
        return value

    def note(self, key: str, value: Any) -> None:
        """Record a derived figure (hit ratio, memory, delay...) for the report."""
        self.notes[key] = value

    def finish(self, args: argparse.Namespace) -> None:
        out = sys.stdout
        out.write(
            f"\n# {self.name}  ({platform.python_implementation()} "
            f"{platform.python_version()}, {platform.machine()}, "
            f"{'quick' if self.quick else 'full'})\n"
        )
        for sec in self.sections:
            out.write(f"\n## {sec.title}\n")
            width = max(len(n) for n in sec.medians)
            for name, med in sec.medians.items():
                out.write(f"  {name:<{width}}  {med:12.1f} {sec.unit}\n")
            for label, target, value in sec.ratios:
                t = f"  (target <= {target})" if target else ""
                verdict = ""
                if target:
                    verdict = "  MET" if value <= float(target) else "  MISSED"
                out.write(f"  ratio {label}: {value:.3f}{t}{verdict}\n")
        if self.notes:
            out.write("\n## figures\n")
            for k, v in self.notes.items():
                out.write(f"  {k}: {v}\n")
        if args.json:
            payload = {
                "suite": self.name,
                "quick": self.quick,
                "date": time.strftime("%Y-%m-%d"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "platform": platform.platform(),
                "sections": [
                    {
                        "title": s.title,
                        "unit": s.unit,
                        "medians": s.medians,
                        "ratios": [
                            {"label": lbl, "target": tgt or None, "value": val}
                            for lbl, tgt, val in s.ratios
                        ],
                    }
                    for s in self.sections
                ],
                "notes": self.notes,
            }
            with open(args.json, "w") as fh:
                json.dump(payload, fh, indent=2, default=str)


class LocalRedis:
    """A redis-server on a free loopback port for the Redis cases, or a given URL.

    ``url`` is None when no URL was given and no redis-server binary exists;
    scripts then skip their Redis cases and say so.
    """

    def __init__(self, url: str | None = None) -> None:
        import shutil
        import socket
        import subprocess
        import tempfile

        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None
        self.url: str | None = url
        if url is not None:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            return
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._dir = tempfile.mkdtemp(prefix="sentia-bench-redis-")
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{port}/0"

    def __enter__(self) -> LocalRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        import shutil

        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
