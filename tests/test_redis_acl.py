"""Least privilege on Redis, against a real redis-server (issue 20 item 5).

The server's ``default`` user is switched off; the only user the library may
use is the one ``sentia redis-acl`` generates. Each Redis-backed component runs
its whole workload (tests/_redis_workload.py) with an ACL holding *only its
own* commands, and must work; afterwards the ACL LOG is empty (no command, key
or channel was refused) and the server's command statistics show nothing
outside the list. An ``admin`` user exists only so the test can read those.
Then the same over TLS (``rediss://``), with a certificate authority the test
makes, if the server was built with TLS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentia_core._acl import acl_rule, component_commands
from tests import _redis_workload as workloads
from tests._servers import RedisServer, free_port
from tests._tls_certs import make_certs
from tests.test_cli import ENV, ROOT

pytestmark = pytest.mark.redis

PASSWORD = "acl-test-pw-5e1d"
ADMIN = "admin-pw-0b7c"
#: the admin connection's own inspection commands (not the library's)
INSPECTION = {"acl|setuser", "acl|log", "config|resetstat", "info", "auth", "hello", "ping"}
#: which declared component each workload exercises
COMPONENT_OF = {
    "cache": ["cache"],
    "async_cache": ["cache"],
    "limiter": ["limiter"],
    "registry": ["registry"],
    "breaker": ["breaker"],
    "facade": ["cache", "limiter", "registry", "breaker"],
}


class LockedServer:
    """A redis-server whose default user is off; ``sentia`` gets exactly a generated ACL."""

    def __init__(self, *extra: str) -> None:
        self.server = RedisServer(*extra)
        setup = self.server.client()
        setup.execute_command("ACL", "SETUSER", "admin", "on", f">{ADMIN}", "~*", "&*", "+@all")
        setup.execute_command("ACL", "SETUSER", "default", "off")
        setup.close()
        import redis

        self.admin = redis.Redis(port=self.server.port, username="admin", password=ADMIN)

    def grant(self, namespace: str, components: list[str]) -> frozenset[str]:
        rule = acl_rule(namespace, password=PASSWORD, components=components)
        words = rule.split()
        assert words[:3] == ["ACL", "SETUSER", "sentia"]
        self.admin.execute_command("ACL", *words[1:])
        self.admin.execute_command("ACL", "LOG", "RESET")
        self.admin.config_resetstat()
        return frozenset().union(*component_commands(components).values())

    def refused(self) -> list[Any]:
        return list(self.admin.execute_command("ACL", "LOG"))

    def commands_used(self) -> set[str]:
        stats = self.admin.info("commandstats")
        return {name.removeprefix("cmdstat_") for name in stats} - INSPECTION

    def stop(self) -> None:
        self.admin.close()
        self.server.stop()


@pytest.fixture(scope="module")
def locked() -> Iterator[LockedServer]:
    server = LockedServer()
    yield server
    server.stop()


def test_the_default_user_is_really_off(locked: LockedServer) -> None:
    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=locked.server.port).ping()


@pytest.mark.parametrize("workload", sorted(workloads.WORKLOADS))
def test_each_component_works_with_only_its_own_acl(locked: LockedServer, workload: str) -> None:
    namespace = f"acl-{workload}"
    allowed = locked.grant(namespace, COMPONENT_OF[workload])
    url = f"redis://sentia:{PASSWORD}@127.0.0.1:{locked.server.port}/0"
    workloads.WORKLOADS[workload](url, namespace)
    assert locked.refused() == []
    used = locked.commands_used()
    assert used, "the workload sent nothing: the statistics are not being read"
    assert used <= allowed, f"sent outside the ACL: {sorted(used - allowed)}"


def test_a_key_outside_the_namespace_is_refused(locked: LockedServer) -> None:
    import redis

    locked.grant("acl-fence", ["cache"])
    client = redis.Redis(port=locked.server.port, username="sentia", password=PASSWORD)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("other-app:secret")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    client.close()
    assert locked.refused()  # and the refusal is what the ACL LOG check would have caught


def test_cli_prints_the_rule_without_the_password() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sentia_core", "redis-acl", "--namespace", "shop",
         "--password-env", "SENTIA_TEST_ACL_PW"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={**ENV, "SENTIA_TEST_ACL_PW": PASSWORD},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ACL SETUSER sentia reset on #")
    assert "~shop:* ~shop.*" in line and "&shop:* &shop.*" in line
    assert "-@all" in line and "+evalsha" in line
    assert PASSWORD not in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sentia_core", "redis-acl", "--namespace", "a*b"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=ENV,
    )  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("sentia: error: invalid namespace")


def test_the_documented_rule_is_the_generated_one() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    assert acl_rule("NAMESPACE") in doc
    for name, commands in component_commands().items():
        wanted = f"| {name} | {' '.join(sorted(commands))} |"
        assert wanted in doc.splitlines(), f"docs/operations.md lacks the row {wanted}"


@pytest.fixture(scope="module")
def tls_locked(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LockedServer, int, Path]]:
    certs = make_certs(tmp_path_factory.mktemp("redis-tls"))
    tls_port = free_port()
    try:
        server = LockedServer(
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs.cert),
            "--tls-key-file", str(certs.key),
            "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", "no",
        )  # fmt: skip
    except RuntimeError as exc:  # pragma: no cover - a build without TLS
        if os.environ.get("SENTIA_REQUIRE_REDIS") == "1":
            raise
        pytest.skip(f"redis-server without TLS support: {exc}")
    yield server, tls_port, certs.ca
    server.stop()


@pytest.mark.parametrize("workload", ["cache", "limiter", "registry", "breaker", "facade"])
def test_every_component_over_tls_with_the_acl(
    tls_locked: tuple[LockedServer, int, Path], workload: str
) -> None:
    locked, tls_port, ca = tls_locked
    namespace = f"tls-{workload}"
    allowed = locked.grant(namespace, COMPONENT_OF[workload])
    url = f"rediss://sentia:{PASSWORD}@127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
    workloads.WORKLOADS[workload](url, namespace)
    assert locked.refused() == []
    assert locked.commands_used() <= allowed


def test_tls_refuses_a_server_it_cannot_verify(tls_locked: tuple[LockedServer, int, Path]) -> None:
    import redis

    _, tls_port, _ = tls_locked
    client = redis.Redis.from_url(f"rediss://sentia:{PASSWORD}@127.0.0.1:{tls_port}/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()  # the test CA is not in the system store
    client.close()
