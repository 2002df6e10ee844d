"""System and process metrics from psutil, one sample at a time.

CPU percentages are computed from the difference of ``cpu_times()`` between
two samples (this collector's own previous sample, not psutil's shared
``cpu_percent`` state, so several collectors do not disturb each other); the
very first sample reports the average since boot (the process: since it
started).
Cumulative OS counters (disk and network bytes, process CPU seconds) are
reported as totals; the monitor turns them into counters. Anything the
platform cannot tell (load average on some systems, disk I/O in some
containers) is None rather than an error.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psutil

__all__ = ["SystemCollector", "SystemSample"]


@dataclass(frozen=True, slots=True)
class SystemSample:
    """One reading of the machine and this process (None: not available here).

    Attributes:
        cpu_percent: whole-machine CPU busy % since the previous sample.
        memory_percent: RAM in use, %.
        memory_used_bytes: RAM in use.
        memory_available_bytes: RAM available to new processes.
        memory_total_bytes: physical RAM.
        swap_percent: swap in use, %.
        swap_used_bytes: swap in use.
        disk_usage_percent: per watched path, % of the filesystem used.
        disk_free_bytes: per watched path, bytes free.
        disk_read_bytes: bytes read from disks since boot.
        disk_write_bytes: bytes written to disks since boot.
        network_sent_bytes: bytes sent on all interfaces since boot.
        network_received_bytes: bytes received since boot.
        load1: 1-minute load average.
        load5: 5-minute load average.
        load15: 15-minute load average.
        process_cpu_percent: this process's CPU % (100 = one core) since the previous sample.
        process_cpu_seconds: this process's user + system CPU seconds.
        process_resident_memory_bytes: this process's RSS.
        process_threads: this process's threads.
        process_open_fds: this process's open file descriptors (handles on Windows).
    """

    cpu_percent: float | None
    memory_percent: float | None
    memory_used_bytes: float | None
    memory_available_bytes: float | None
    memory_total_bytes: float | None
    swap_percent: float | None
    swap_used_bytes: float | None
    disk_usage_percent: dict[str, float]
    disk_free_bytes: dict[str, float]
    disk_read_bytes: float | None
    disk_write_bytes: float | None
    network_sent_bytes: float | None
    network_received_bytes: float | None
    load1: float | None
    load5: float | None
    load15: float | None
    process_cpu_percent: float | None
    process_cpu_seconds: float | None
    process_resident_memory_bytes: float | None
    process_threads: float | None
    process_open_fds: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _cpu_busy_idle() -> tuple[float, float]:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    # guest time is already included in user time on Linux
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return total - idle, total


class SystemCollector:
    """Samples the machine and this process with psutil.

    Args:
        disk_paths: filesystem paths whose usage is reported (default ``("/",)``;
            on Windows use drive roots).
        now: monotonic clock reading function used for process CPU %.
    """

    def __init__(
        self, disk_paths: Sequence[str] = ("/",), now: Callable[[], float] | None = None
    ) -> None:
        self.disk_paths = tuple(disk_paths)
        self._now = now or time.monotonic
        self._lock = threading.Lock()
        self._process = psutil.Process(os.getpid())
        # the first sample reports averages since boot / since the process started
        self._last_cpu = (0.0, 0.0)
        self._last_proc: tuple[float, float] | None = None
        try:
            age = max(0.0, time.time() - self._process.create_time())
            self._last_proc = (self._now() - age, 0.0)
        except psutil.Error:
            self._last_proc = None

    def _proc_seconds(self) -> float:
        t = self._process.cpu_times()
        return float(t.user + t.system)

    def collect(self) -> SystemSample:
        """Take one sample (thread-safe; a few hundred microseconds)."""
        with self._lock:
            return self._collect()

    def _collect(self) -> SystemSample:
        busy, total = _cpu_busy_idle()
        last_busy, last_total = self._last_cpu
        self._last_cpu = (busy, total)
        dt = total - last_total
        cpu = None
        if dt > 0:
            cpu = max(0.0, min(100.0, 100.0 * (busy - last_busy) / dt))

        mem = _maybe(psutil.virtual_memory)
        swap = _maybe(psutil.swap_memory)
        usage: dict[str, float] = {}
        free: dict[str, float] = {}
        for path in self.disk_paths:
            du = _maybe(psutil.disk_usage, path)
            if du is not None:
                usage[path] = float(du.percent)
                free[path] = float(du.free)
        # nowrap=False: cheaper, and the monitor treats a decrease as a counter reset
        dio = _maybe(psutil.disk_io_counters, False, False)
        nio = _maybe(psutil.net_io_counters, False, False)
        load = _maybe(psutil.getloadavg)

        proc_cpu = proc_seconds = rss = threads = fds = None
        p = self._process
        try:
            with p.oneshot():
                proc_seconds = self._proc_seconds()
                rss = float(p.memory_info().rss)
                threads = float(p.num_threads())
                if hasattr(p, "num_fds"):
                    fds = float(p.num_fds())
                elif hasattr(p, "num_handles"):  # pragma: no cover - Windows
                    fds = float(p.num_handles())
        except psutil.Error:
            pass
        if proc_seconds is not None:
            now = self._now()
            if self._last_proc is not None:
                t0, s0 = self._last_proc
                if now > t0:
                    proc_cpu = max(0.0, 100.0 * (proc_seconds - s0) / (now - t0))
            self._last_proc = (now, proc_seconds)

        return SystemSample(
            cpu_percent=cpu,
            memory_percent=None if mem is None else float(mem.percent),
            memory_used_bytes=None if mem is None else float(mem.total - mem.available),
            memory_available_bytes=None if mem is None else float(mem.available),
            memory_total_bytes=None if mem is None else float(mem.total),
            swap_percent=None if swap is None else float(swap.percent),
            swap_used_bytes=None if swap is None else float(swap.used),
            disk_usage_percent=usage,
            disk_free_bytes=free,
            disk_read_bytes=None if dio is None else float(dio.read_bytes),
            disk_write_bytes=None if dio is None else float(dio.write_bytes),
            network_sent_bytes=None if nio is None else float(nio.bytes_sent),
            network_received_bytes=None if nio is None else float(nio.bytes_recv),
            load1=None if load is None else float(load[0]),
            load5=None if load is None else float(load[1]),
            load15=None if load is None else float(load[2]),
            process_cpu_percent=proc_cpu,
            process_cpu_seconds=proc_seconds,
            process_resident_memory_bytes=rss,
            process_threads=threads,
            process_open_fds=fds,
        )


def _maybe(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (OSError, psutil.Error, AttributeError, NotImplementedError, RuntimeError):
        return None
