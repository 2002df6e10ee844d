"""Real servers for the test suite: redis-server, a 3-node Redis Cluster, PostgreSQL.

Each starts on a free loopback port in a temporary directory and is stopped by
the fixture that made it. Fault tests make their own private instance and may
kill, restart, pause (SIGSTOP) and resume it without disturbing other tests.

Rule (DESIGN.md): where the server binaries are missing the tests that need
them skip with a clear reason, unless ``SENTIA_REQUIRE_REDIS=1`` /
``SENTIA_REQUIRE_POSTGRES=1`` is set (CI sets both), in which case they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port(max_port: int = 65535) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, at most ``max_port``.

    Redis Cluster nodes also listen on port + 10000 (the cluster bus), so they
    ask for a port below 55536.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port <= max_port:
            return port
    raise RuntimeError(f"no free loopback port at or below {max_port}")


def _wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")


def unavailable(what: str, env: str) -> None:
    """Skip, or fail when the environment requires the server."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} is required ({env}=1) but not available", pytrace=False)
    pytest.skip(f"{what} not available (set {env}=1 to make this a failure)")


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


def require_redis_binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        unavailable("redis-server", "SENTIA_REQUIRE_REDIS")
    assert binary is not None
    return binary


class RedisServer:
    """One redis-server process on 127.0.0.1."""

    def __init__(self, *extra_args: str, port: int | None = None, max_port: int = 65535) -> None:
        self.binary = require_redis_binary()
        self.dir = tempfile.mkdtemp(prefix="sentia-redis-")
        self.port = port or free_port(max_port)
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        # A port picked by free_port() can be taken by another process before the
        # server binds it (several suites start servers at once): retry on a new
        # port, unless the caller chose the port.
        for attempt in range(5):
            try:
                self.start()
                return
            except RuntimeError:
                if port is not None or attempt == 4:
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise
                self.port = free_port(max_port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            *self.extra_args,
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(self.port, proc=proc)
        except RuntimeError:
            proc.kill()
            proc.wait(10)
            raise
        self.proc = proc

    def kill(self) -> None:
        """SIGKILL the server (a crash); :meth:`start` brings it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server hangs with its sockets open."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


class RedisCluster:
    """Three redis-server nodes in cluster mode on loopback, no replicas."""

    def __init__(self) -> None:
        binary = require_redis_binary()
        cli = shutil.which("redis-cli")
        if cli is None:
            unavailable("redis-cli", "SENTIA_REQUIRE_REDIS")
        assert cli is not None
        del binary
        self.nodes: list[RedisServer] = []
        for attempt in range(3):
            try:
                self._create(cli)
                return
            except (RuntimeError, subprocess.SubprocessError):
                self.stop()  # never leak node processes from a failed attempt
                if attempt == 2:
                    raise

    def _create(self, cli: str) -> None:
        self.nodes = []
        for _ in range(3):
            node_dir = tempfile.mkdtemp(prefix="sentia-cluster-")
            self.nodes.append(
                RedisServer(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    os.path.join(node_dir, "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    max_port=55000,  # the bus port (port + 10000) must exist too
                )
            )
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self._wait_ok(cli)

    def _wait_ok(self, cli: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(
                [cli, "-p", str(self.nodes[0].port), "cluster", "info"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            if "cluster_state:ok" in out:
                return
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not reach cluster_state:ok")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster owned by the ``postgres`` user, on loopback."""

    def __init__(self) -> None:
        initdb = PG_BIN / "initdb"
        if not initdb.exists() or shutil.which("runuser") is None:
            unavailable("PostgreSQL 15 (initdb)", "SENTIA_REQUIRE_POSTGRES")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sentia-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            [str(initdb), "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        )
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                self.data,
                "-w",
                "-t",
                "60",
                "-l",
                os.path.join(self.dir, "log"),
                "-o",
                f"-c listen_addresses=127.0.0.1 -k {self.dir} -p {self.port} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "start",
            ]
        )

    @staticmethod
    def _as_postgres(args: list[str]) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def has_hypopg(self) -> bool:
        return Path("/usr/share/postgresql/15/extension/hypopg.control").exists()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)
