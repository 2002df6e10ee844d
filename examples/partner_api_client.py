"""An outbound client for a partner API that rate-limits you and sometimes falls over.

    python examples/partner_api_client.py

A simulated partner runs on 127.0.0.1 (stdlib ``http.server``): it allows 5
requests per second per API key and answers ``429 Too Many Requests`` with a
``Retry-After`` header beyond that; it can be switched into an outage (``503``)
and can answer slowly. The client wraps its one outbound function in a
``Policy``:

    fallback -> retry -> circuit breaker -> rate limit -> bulkhead -> timeout

and walks through four scenes:

1. no client-side limit: the partner throttles us, Retry honours Retry-After;
2. a client-side RateLimiter at the partner's rate: no 429 at all (with
   ``SENTIA_REDIS_URL`` set, the quota lives in Redis, shared by every process);
3. an outage: retries fail, the breaker opens, calls are answered from the
   fallback cache at once, and the breaker closes again after the partner recovers;
4. a slow answer: the per-attempt deadline (read with ``remaining_time()`` and
   passed to the socket) cuts it short and the retry gets a fast answer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sentia_core.breaker import BreakerStateChanged, CircuitBreaker
from sentia_core.errors import CallRejectedError, CircuitOpenError
from sentia_core.policies import (
    Bulkhead,
    ExponentialBackoff,
    Policy,
    PolicyEvent,
    Retry,
    RetryEvent,
    Timeout,
    parse_retry_after,
    remaining_time,
)

try:  # the package root re-exports it once the rate limiter is integrated
    from sentia_core import RateLimiter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - until then, from its subsystem
    from sentia_core.policies._ratelimit import RateLimiter

T0 = time.monotonic()
_PRINT = threading.Lock()


def say(message: str) -> None:
    with _PRINT:
        print(f"[{time.monotonic() - T0:5.2f}s] {message}", flush=True)


# --------------------------------------------------------------------------
# The partner (a stand-in for Shopify, Xero, a payment API...)


class Partner:
    """A partner API with a per-key rate limit, an outage switch and a slow mode."""

    limit_per_second = 5

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[int, int]] = {}  # key -> (second, count)
        self.outage = False
        self.slow_answers = 0  # answer this many requests after a 2 s pause
        self.stats = {"200": 0, "429": 0, "503": 0, "slow": 0}
        self.in_flight = 0
        self.peak_in_flight = 0

    def answer(self, key: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(0.01)  # the partner's own work
            return self._answer(key)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, key: str) -> tuple[int, dict[str, str], bytes]:
        now = time.time()
        second = int(now)
        with self.lock:
            if self.outage:
                self.stats["503"] += 1
                return 503, {}, b'{"error": "maintenance"}'
            window, count = self.windows.get(key, (second, 0))
            if window != second:
                window, count = second, 0
            if count >= self.limit_per_second:
                self.stats["429"] += 1
                wait = max(1, math.ceil(second + 1 - now))
                return 429, {"Retry-After": str(wait)}, b'{"error": "slow down"}'
            self.windows[key] = (window, count + 1)
            slow = self.slow_answers > 0
            if slow:
                self.slow_answers -= 1
                self.stats["slow"] += 1
            else:
                self.stats["200"] += 1
        if slow:
            time.sleep(2.0)
        return 200, {}, json.dumps({"status": "shipped", "at": now}).encode()


def start_partner(partner: Partner) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = partner.answer(self.headers.get("X-Api-Key", ""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # fails when the client gave up on a slow answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --------------------------------------------------------------------------
# The client


class PartnerThrottled(Exception):
    """429: the partner's limit; ``retry_after`` (seconds) comes from its header."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"throttled, retry after {retry_after}s")
        self.retry_after = retry_after


class PartnerUnavailable(Exception):
    """5xx or a network failure: worth retrying, and a failure for the breaker."""


def order_status(base_url: str, order_id: int) -> dict[str, Any]:
    """One GET to the partner. The socket timeout is whatever the deadline leaves."""
    request = urllib.request.Request(f"{base_url}/orders/{order_id}", headers={"X-Api-Key": "acme"})
    left = remaining_time()  # set by the policy's Timeout for this attempt
    try:
        with urllib.request.urlopen(request, timeout=left if left else 5.0) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            raise PartnerThrottled(parse_retry_after(exc.headers.get("Retry-After"))) from None
        raise PartnerUnavailable(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise PartnerUnavailable(f"network: {exc}") from None


def build_policy(*, limiter: Any = None, cache: dict[int, Any]) -> tuple[Policy, CircuitBreaker]:
    retry = Retry(
        attempts=4,
        on=(PartnerThrottled, PartnerUnavailable),
        backoff=ExponentialBackoff(initial=0.05, max_delay=0.5),
        max_retry_after=5.0,
        name="partner",
    )
    breaker = CircuitBreaker(
        "partner",
        consecutive_failures=3,
        failure_rate_threshold=None,
        reset_timeout=1.5,
        # Our own rejections and the partner's 429s say nothing about its health.
        ignore_exceptions=(CallRejectedError, PartnerThrottled),
    )

    def from_cache(error: BaseException, base_url: str, order_id: int) -> dict[str, Any]:
        return {**cache.get(order_id, {"status": "unknown"}), "from_cache": type(error).__name__}

    policy = Policy(
        retry=retry,
        breaker=breaker,
        rate_limit=limiter,
        rate_tier="partner" if limiter is not None else None,
        rate_key="acme",
        rate_block=True,
        rate_max_wait=10.0,
        bulkhead=Bulkhead(4, max_waiting=32, name="partner"),
        timeout=Timeout(0.5, sync_mode="cooperative", name="partner"),
        fallback=from_cache,
        fallback_on=(CircuitOpenError,),
        name="partner",
    )
    retry.add_listener(
        lambda e: (
            e.outcome == "retry"
            and say(f"  retry #{e.attempt} in {e.delay:.2f}s ({e.reason}): {e.error}")
        )
    )
    breaker.add_listener(
        lambda e: (
            isinstance(e, BreakerStateChanged)
            and say(f"  breaker {e.from_state.value} -> {e.to_state.value}: {e.reason}")
        )
    )
    return policy, breaker


def main() -> None:
    partner = Partner()
    server = start_partner(partner)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    cache: dict[int, Any] = {}
    say(f"partner listening on {base_url} (limit {Partner.limit_per_second}/s per key)")

    # 1. No client-side limit: 12 requests at once; the partner throttles some.
    say("scene 1: 12 requests from 6 threads, bulkhead of 4, no client-side rate limit")
    policy, _ = build_policy(cache=cache)
    fetch = policy(order_status)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: fetch(base_url, i), range(12)))
    cache.update(enumerate(results))
    r = policy.stats().retry
    assert r is not None
    say(
        f"  -> {len(results)} answers; partner sent {partner.stats['429']} x 429; "
        f"{r.retries} retries, each waiting the partner's Retry-After; "
        f"at most {partner.peak_in_flight} requests were in flight at once"
    )
    assert all(res["status"] == "shipped" for res in results)
    assert partner.peak_in_flight <= 4

    # 2. A client-side limit at the partner's rate: we never get a 429.
    redis_url = os.environ.get("SENTIA_REDIS_URL")
    where = "in Redis (shared by every worker)" if redis_url else "in memory"
    say(f"scene 2: 10 requests through a client-side RateLimiter {where}")
    time.sleep(1.0)  # let the partner's window roll over
    before = partner.stats["429"]
    limiter = RateLimiter(
        {"partner": f"{Partner.limit_per_second - 1}/second"},
        redis=redis_url,
        namespace="partner-example",
        burst=1,
    )
    policy, _ = build_policy(limiter=limiter, cache=cache)
    fetch = policy(order_status)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: fetch(base_url, i), range(10)))
    say(
        f"  -> {len(results)} answers, {partner.stats['429'] - before} x 429; "
        f"the policy waited for quota {policy.stats().rate_waits} times instead"
    )
    assert partner.stats["429"] == before
    limiter.close()

    # 3. An outage: the breaker opens, calls are served from the cache, then it recovers.
    say("scene 3: the partner goes down for maintenance")
    policy, breaker = build_policy(cache=cache)
    fallbacks: list[PolicyEvent] = []
    policy.add_listener(fallbacks.append)
    fetch = policy(order_status)
    partner.outage = True
    for order_id in range(3):
        answer = fetch(base_url, order_id)
        say(f"  order {order_id}: {answer['status']} (from cache: {answer.get('from_cache')})")
    say(f"  breaker is {breaker.state.value}; {len(fallbacks)} answers came from the cache")
    assert breaker.state.value == "open"
    partner.outage = False
    time.sleep(1.6)  # the breaker's reset_timeout
    answer = fetch(base_url, 7)
    say(f"  partner back: order 7 is {answer['status']}; breaker is {breaker.state.value}")
    assert breaker.state.value == "closed"

    # 4. A slow answer is cut at the per-attempt deadline; the retry is fast.
    say("scene 4: the partner answers the next request after 2 s")
    time.sleep(1.0)
    partner.slow_answers = 1
    retries: list[RetryEvent] = []
    policy, _ = build_policy(cache=cache)
    policy.retry.add_listener(retries.append)  # type: ignore[union-attr]
    started = time.monotonic()
    answer = policy(order_status)(base_url, 8)
    say(
        f"  order 8: {answer['status']} after {time.monotonic() - started:.2f}s "
        f"({sum(e.outcome == 'retry' for e in retries)} retry after the 0.5 s deadline)"
    )
    assert answer["status"] == "shipped"

    server.shutdown()
    server.server_close()
    say(f"done; the partner saw {partner.stats}")


if __name__ == "__main__":
    main()
