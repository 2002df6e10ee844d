"""Registries in separate processes, sharing a real redis-server."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentia_core.registry import InstanceDeregistered, RegistryEvent, ServiceRegistry

from .conftest import wait_for

PEER = Path(__file__).with_name("_peer_process.py")
pytestmark = pytest.mark.redis


class Peer:
    """A child process running _peer_process.py, with its stdout read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"peer printed nothing starting with {prefix!r} within {timeout}s")
        assert line.startswith(prefix), line
        return line[len(prefix) :].strip()

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(20)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._reader.join(5)


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for p in made:
        p.cleanup()


def test_two_processes_see_each_other(redis_url: str, peers: list[Peer]) -> None:
    with ServiceRegistry(redis=redis_url, heartbeat_interval=1, ttl=5) as parent:
        parent.register("parent-svc", "127.0.0.1:1111")
        peer = Peer(redis_url, "child-svc", "127.0.0.1:2222", "5", "1", "parent-svc")
        peers.append(peer)
        child_id = peer.expect("registered")
        assert peer.expect("saw") == "127.0.0.1:1111"
        wait_for(lambda: [i.id for i in parent.instances("child-svc")] == [child_id])
        assert parent.instances("child-svc")[0].address == "127.0.0.1:2222"
        assert parent.services() == ["child-svc", "parent-svc"]
        peer.finish()  # a clean stop deregisters: the parent hears it over pub/sub
        assert peer.expect("stopped") == ""
        wait_for(lambda: parent.instances("child-svc") == [], what="child deregistered")


def test_a_killed_process_disappears_within_ttl_plus_one_sweep(
    redis_url: str, peers: list[Peer]
) -> None:
    events: list[RegistryEvent] = []
    with ServiceRegistry(
        redis=redis_url, ttl=5, heartbeat_interval=1, sweep_interval=0.2, refresh_interval=5
    ) as watcher:
        watcher.add_listener(events.append)
        peer = Peer(redis_url, "fragile", "127.0.0.1:3333", "1.0", "0.25")
        peers.append(peer)
        child_id = peer.expect("registered")
        wait_for(lambda: [i.id for i in watcher.instances("fragile")] == [child_id])
        peer.kill()  # SIGKILL: no deregistration, the heartbeats just stop
        wait_for(lambda: watcher.instances("fragile") == [], deadline=15, what="swept")
        assert InstanceDeregistered in {type(e) for e in events}
        expired = [e for e in events if isinstance(e, InstanceDeregistered)]
        assert [(e.instance_id, e.reason) for e in expired] == [(child_id, "expired")]
        assert watcher.stats().swept == 1
