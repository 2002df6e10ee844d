"""The ``sentia`` command (also ``python -m sentia_core``).

    sentia demo [--duration S] [--redis URL]    a simulated service and a report
    sentia sql analyze FILE [...]               top shapes, slow queries, index advice
    sentia health [--config FILE]               every component's health as JSON
    sentia serve [--config FILE]                /metrics, /metrics.json and /health
    sentia bench [--quick] [--json DIR] [NAME]  the side-by-side benchmarks
    sentia redis-acl [--namespace NAME]         the least-privilege Redis ACL line

Bad input ends with a one-line error on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import SentiaError

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
    health = sub.add_parser("health", help="check every component and print the report as JSON")
    health.add_argument("--config", metavar="FILE", help="TOML configuration (default: SENTIA_*)")
    serve = sub.add_parser("serve", help="serve /metrics, /metrics.json and /health")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration (default: SENTIA_*)")
    serve.add_argument("--host", default=None, help="bind address (default: monitor.http_host)")
    serve.add_argument("--port", type=int, default=None, help="port (default: monitor.http_port)")
    serve.add_argument(
        "--for", dest="run_for", type=float, default=None, metavar="SECONDS",
        help="stop after SECONDS (default: until interrupted)",
    )  # fmt: skip
    bench = sub.add_parser("bench", help="run the side-by-side benchmarks")
    bench.add_argument("--quick", action="store_true", help="run every case briefly")
    bench.add_argument("--json", metavar="DIR", default=None, help="write DIR/<name>.json")
    bench.add_argument("only", nargs="*", help="benchmark names (default: all)")
    acl = sub.add_parser("redis-acl", help="print the least-privilege Redis ACL (ACL SETUSER)")
    acl.add_argument("--namespace", default="sentia", help="the application's namespace setting")
    acl.add_argument("--user", default="sentia", help="the Redis user name (default sentia)")
    acl.add_argument(
        "--password-env", metavar="VAR", default=None,
        help="read the password from $VAR and write only its SHA-256 (default: a placeholder)",
    )  # fmt: skip
    acl.add_argument(
        "--component", action="append", default=None, metavar="NAME",
        help="only this component (breaker, cache, limiter, registry); repeatable",
    )  # fmt: skip
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
    try:
        return _run(args)
    except SentiaError as exc:
        print(f"sentia: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        if args.duration <= 0:
            from .errors import ConfigError

            raise ConfigError("--duration", args.duration, "must be greater than 0")
        return run_demo(duration=args.duration, redis_url=args.redis, out=sys.stdout)
    if args.command == "sql":
        from .sql._cli import run_sql

        return run_sql(args, out=sys.stdout, err=sys.stderr)
    if args.command == "health":
        return _health(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "redis-acl":
        return _redis_acl(args)
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects others


def _app(config: str | None) -> Any:
    from ._facade import Sentia

    return Sentia.from_config(config) if config else Sentia.from_env()


def _health(args: argparse.Namespace) -> int:
    with _app(args.config) as app:
        report = app.health()
    print(json.dumps(report.to_dict(), indent=2, default=str))
    return 1 if report.status.value == "unhealthy" else 0


def _serve(args: argparse.Namespace) -> int:
    with _app(args.config) as app:
        cfg = app.config.monitor
        host = args.host if args.host is not None else cfg.http_host
        port = args.port if args.port is not None else cfg.http_port
        app.monitor.start(cfg.sample_interval)
        stop = threading.Event()
        # Handlers first: whoever reads the address below may signal us at once.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        server = app.monitor.serve(host=host, port=port)
        bound_host, bound_port = server.address
        print(f"sentia: serving http://{bound_host}:{bound_port}/metrics", flush=True)
        stop.wait(args.run_for)
        server.stop()
    return 0


def _redis_acl(args: argparse.Namespace) -> int:
    from ._acl import acl_rule
    from .errors import ConfigError

    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise ConfigError("--password-env", args.password_env, "that variable is not set")
    line = acl_rule(args.namespace, user=args.user, password=password, components=args.component)
    print(line)
    return 0


def _benchmarks_dir() -> Path | None:
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "benchmarks", here.parent / "_benchmarks"):
        if (candidate / "run.py").exists():
            return candidate
    return None


def _bench(args: argparse.Namespace) -> int:
    folder = _benchmarks_dir()
    if folder is None:
        from .errors import ConfigError

        raise ConfigError("bench", None, "the benchmarks folder is not installed with this copy")
    cmd = [sys.executable, str(folder / "run.py")]
    if args.quick:
        cmd.append("--quick")
    if args.json:
        cmd += ["--json", args.json]
    cmd += list(args.only)
    return subprocess.run(cmd, check=False, env=os.environ.copy()).returncode
