"""A registry in another process, for the multi-process tests and the benchmark.

Usage::

    python tests/registry/_peer_process.py REDIS_URL SERVICE ADDRESS TTL HEARTBEAT [WATCH]

Registers ``SERVICE`` at ``ADDRESS`` with the given lease ``TTL`` and
``HEARTBEAT`` interval (seconds) and prints ``registered <id>``. With
``WATCH``, it then waits until it sees an instance of that service and prints
``saw <address>``. It then idles until its stdin closes (stopping cleanly,
deregistering) or it is killed (a crash: nothing deregisters it).
"""

from __future__ import annotations

import sys
import threading

from sentia_core.registry import ServiceRegistry


def main(argv: list[str]) -> int:
    url, service, address, ttl, heartbeat = argv[:5]
    watch = argv[5] if len(argv) > 5 else None
    reg = ServiceRegistry(
        redis=url,
        ttl=float(ttl),
        heartbeat_interval=float(heartbeat),
        sweep_interval=float(heartbeat),
        name="peer",
    )
    reg.start()
    inst = reg.register(service, address)
    print(f"registered {inst.id}", flush=True)
    if watch:
        seen = threading.Event()
        stop = reg.watch(watch, lambda found: found and seen.set())
        if not seen.wait(30):
            print("timeout", flush=True)
            return 1
        stop()
        print(f"saw {reg.instances(watch)[0].address}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    reg.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
