"""The ``sentia`` command (also ``python -m sentia_core``).

    sentia demo [--duration S] [--redis URL]    a simulated service and a report
                [--dashboard [--port N]]        ... then kept running behind the dashboard
    sentia sql analyze FILE [...]               top shapes, slow queries, index advice
    sentia health [--config FILE]               every component's health as JSON
    sentia serve [--config FILE]                a fresh process's endpoints (not your app's)
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
    demo.add_argument(
        "--dashboard", action="store_true",
        help="then keep the service running and serve the dashboard on 127.0.0.1 until Ctrl-C",
    )  # fmt: skip
    demo.add_argument("--port", type=int, default=0, help="dashboard port (default: any free)")
    health = sub.add_parser("health", help="check every component and print the report as JSON")
    health.add_argument("--config", metavar="FILE", help="TOML configuration (default: SENTIA_*)")
    serve = sub.add_parser(
        "serve",
        help="serve a fresh process's monitor (system metrics, Redis health) to try a "
        "configuration's endpoints; your application's metrics: app.serve() / app.asgi()",
    )
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
        return run_demo(
            duration=args.duration, redis_url=args.redis, out=sys.stdout,
            dashboard=args.dashboard, port=args.port,
        )  # fmt: skip
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


def _app(config: str | None, **kwargs: Any) -> Any:
    from ._facade import Sentia

    return Sentia.from_config(config, **kwargs) if config else Sentia.from_env(**kwargs)


def _health(args: argparse.Namespace) -> int:
    with _app(args.config, start_monitor=False) as app:  # one report, no sampler
        report = app.health()
    print(json.dumps(report.to_dict(), indent=2, default=str))
    # Exit 1 when any check fails, critical or not: the service may still be
    # ready (a Redis outage only degrades it), but the operator asked for a check.
    failed = any(c.status.value == "unhealthy" for c in report.components.values())
    return 1 if failed or report.status.value == "unhealthy" else 0


def _serve(args: argparse.Namespace) -> int:
    with _app(args.config) as app:
        cfg = app.config.monitor
        host = args.host if args.host is not None else cfg.http_host
        port = args.port if args.port is not None else cfg.http_port
        if not app.monitor.running:  # Sentia() starts it unless monitor.enabled = false
            app.monitor.start(cfg.sample_interval)
        stop = threading.Event()
        # Handlers first: whoever reads the address below may signal us at once.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # app.serve(): [monitor] auth, TLS and connection limits apply here too
        server = app.serve(host=host, port=port)
        print(f"sentia: serving {server.url}/metrics", flush=True)
        print(f"sentia: dashboard {server.url}/", flush=True)
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


def _bench_names(folder: Path) -> list[str]:
    return sorted(
        p.stem for p in folder.glob("*.py") if not p.name.startswith("_") and p.name != "run.py"
    )


def _missing_modules(scripts: Sequence[Path]) -> list[str]:
    """Third-party modules the scripts import at top level that cannot be found."""
    import ast
    import importlib.util

    local = {p.stem for p in scripts[0].parent.glob("*.py")} if scripts else set()
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    missing: set[str] = set()
    for script in scripts:
        tree = ast.parse(script.read_text(), filename=str(script))
        names: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        for name in names - local - stdlib - {"sentia_core", "__future__"}:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.add(name)
    return sorted(missing)


def _bench(args: argparse.Namespace) -> int:
    from .errors import ConfigError

    folder = _benchmarks_dir()
    if folder is None:
        raise ConfigError("bench", None, "the benchmarks folder is not installed with this copy")
    known = _bench_names(folder)
    wanted = [name[:-3] if name.endswith(".py") else name for name in args.only]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        print(
            f"sentia: error: no such benchmark: {', '.join(unknown)} "
            f"(choose from: {', '.join(known)})",
            file=sys.stderr,
        )
        return 2
    missing = _missing_modules([folder / f"{name}.py" for name in wanted or known])
    if missing:
        print(
            "sentia: error: the benchmarks compare against peer libraries that are not "
            f"installed ({', '.join(missing)}): pip install 'sentia_core[bench]'",
            file=sys.stderr,
        )
        return 2
    cmd = [sys.executable, str(folder / "run.py")]
    if args.quick:
        cmd.append("--quick")
    if args.json:
        cmd += ["--json", args.json]
    cmd += wanted
    return subprocess.run(cmd, check=False, env=os.environ.copy()).returncode
