"""The ``sentia`` command (also ``python -m sentia_core``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentia",
        description="sentia_core: resilience and performance toolkit for Python services.",
    )
    parser.add_argument("--version", action="version", version=f"sentia_core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a short simulated service and print a report")
    demo.add_argument("--duration", type=float, default=3.0, help="seconds to run (default 3)")
    demo.add_argument("--redis", metavar="URL", default=None, help="run against Redis at URL")
    from .sql._cli import add_sql_parser

    add_sql_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(duration=args.duration, redis_url=args.redis, out=sys.stdout)
    if args.command == "sql":
        from .sql._cli import run_sql

        return run_sql(args, out=sys.stdout, err=sys.stderr)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover
