"""A partner service for the service benchmark: a tiny HTTP/1.1 server on loopback.

    python benchmarks/service/partner.py --port P [--median 0.005] [--sigma 0.5]
        [--error-rate 0.0] [--seed 1]

Each ``GET`` answers ``200 {"ok": true, ...}`` after a delay drawn from a
lognormal distribution (``median`` seconds, shape ``sigma``), or ``503`` at
``error_rate``. The rig changes the behaviour while the server runs:

    POST /_control?mode=normal|outage|spike&factor=10

``outage`` answers every request ``503`` at once, ``spike`` multiplies every
delay by ``factor``; ``normal`` undoes both. The server binds 127.0.0.1 only,
prints ``ready PORT`` when it listens and stops on SIGTERM or SIGINT.

It is written on asyncio's protocol layer (no framework) so that the
partners cost the machine as little as possible: on two cores the gateway
and the load generator need the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
from urllib.parse import parse_qs, urlsplit

_MAX_HEAD = 16_384


class State:
    def __init__(self, median: float, sigma: float, error_rate: float, seed: int) -> None:
        self.mu = math.log(median)
        self.sigma = sigma
        self.error_rate = error_rate
        self.rng = random.Random(seed)
        self.mode = "normal"
        self.factor = 1.0
        self.served = 0

    def delay(self) -> float:
        d = self.rng.lognormvariate(self.mu, self.sigma)
        return d * self.factor if self.mode == "spike" else d

    def control(self, query: str) -> bytes:
        args = parse_qs(query)
        mode = args.get("mode", ["normal"])[0]
        if mode not in ("normal", "outage", "spike"):
            return _response(400, {"error": f"unknown mode {mode!r}"})
        self.mode = mode
        self.factor = float(args.get("factor", ["10"])[0]) if mode == "spike" else 1.0
        return _response(200, {"mode": self.mode, "factor": self.factor, "served": self.served})


def _response(status: int, body: object) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'OK')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class PartnerProtocol(asyncio.Protocol):
    def __init__(self, state: State, port: int) -> None:
        self.state = state
        self.port = port
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _MAX_HEAD and b"\r\n\r\n" not in self.buffer:
            self._close()
            return
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self._handle(head.split(b"\r\n", 1)[0].decode("latin-1"))

    def _handle(self, request_line: str) -> None:
        parts = request_line.split(" ")
        if len(parts) != 3:
            self._write(_response(400, {"error": "bad request line"}))
            return
        method, target, _ = parts
        url = urlsplit(target)
        state = self.state
        if url.path == "/_control" and method == "POST":
            self._write(state.control(url.query))
            return
        state.served += 1
        if state.mode == "outage" or (state.error_rate and state.rng.random() < state.error_rate):
            self._write(_response(503, {"error": "unavailable", "port": self.port}))
            return
        body = _response(200, {"ok": True, "port": self.port, "path": url.path})
        asyncio.get_running_loop().call_later(state.delay(), self._write, body)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(args: argparse.Namespace) -> None:
    state = State(args.median, args.sigma, args.error_rate, args.seed)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: PartnerProtocol(state, args.port), "127.0.0.1", args.port, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {args.port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--median", type=float, default=0.005, help="median delay, seconds")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal shape")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
