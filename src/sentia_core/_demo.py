"""``sentia demo``: a short simulated service on the embedded default, with a report.

It grows with the components; each section drives one of them against a
simulated dependency on this machine (no network) and prints what happened.
"""

from __future__ import annotations

from typing import TextIO

from ._version import __version__

__all__ = ["run_demo"]


def run_demo(*, duration: float, redis_url: str | None, out: TextIO) -> int:
    """Run the demo for about ``duration`` seconds; returns the exit code."""
    mode = f"Redis at {redis_url}" if redis_url else "embedded (in-process)"
    out.write(f"sentia_core {__version__} demo, mode: {mode}\n")
    return 0
