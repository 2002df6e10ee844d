"""Alerts delivered to a local webhook, and the monitor's endpoints served on loopback.

A tiny "service" records requests and a queue depth into a PerformanceMonitor.
Its latency turns bad, then recovers; the alert rules fire, escalate and
resolve, and every notification is POSTed to a webhook receiver running on
127.0.0.1 (stdlib http.server) — the same JSON a real receiver would get.
Then /metrics, /metrics.json and /health are fetched over HTTP.

Windows are shortened to seconds so the story fits in a few seconds of real
time; production settings are minutes (the defaults).

Run: ``python examples/monitor_alerts.py`` (no network beyond loopback).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sentia_core.monitor import AlertRule, PerformanceMonitor, WebhookNotifier, default_rules

received: list[dict[str, Any]] = []
arrived = threading.Condition()


class WebhookReceiver(BaseHTTPRequestHandler):
    """Plays the part of Alertmanager / a chat bot: prints each alert it gets."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with arrived:
            received.append(body)
            arrived.notify_all()
        print(f"  webhook <- {body['summary']}")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def wait_for(count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with arrived:
        while len(received) < count and time.monotonic() < deadline:
            arrived.wait(deadline - time.monotonic())


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def main() -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), WebhookReceiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/alerts"

    monitor = PerformanceMonitor(windows=(2.0,), window_slot=0.5, system_metrics=True)
    monitor.add_notifier(WebhookNotifier(hook_url))
    # the original spec's response-time and error-rate rules, over a 2 s window
    monitor.add_rules(
        default_rules(window="2s", for_seconds=0.4, cooldown=1.0,
                      disabled=["cpu", "memory", "cache_hit_rate"])
    )  # fmt: skip
    # a business metric with hysteresis: fires above 100, resolves only below 20
    monitor.add_rule(
        AlertRule("order_backlog", "orders_queued", warning=50, critical=100,
                  resolve_below=20, for_seconds=0.4, cooldown=1.0, labels={"team": "fulfilment"})
    )  # fmt: skip
    monitor.add_health_check("database", lambda: True, critical=True)
    flaky = {"up": True}
    monitor.add_health_check("payments_api", lambda: flaky["up"], critical=False)

    rng = random.Random(3)
    queue = monitor.gauge("orders_queued", help="Orders waiting to be picked.")

    def traffic(seconds: float, latency: float, error_rate: float, backlog: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                monitor.record_request(
                    rng.lognormvariate(0, 0.3) * latency, error=rng.random() < error_rate
                )
            queue.set(backlog)
            time.sleep(0.05)

    server = monitor.serve()  # 127.0.0.1, a free port
    print(f"endpoints on {server.url}, alerts to {hook_url}")
    monitor.start(interval=0.2)
    try:
        print("1. healthy traffic: 50 ms responses, 1 % errors, 3 orders queued")
        traffic(1.5, 0.05, 0.01, 3)
        print("2. trouble: 3 s responses, 20 % errors, 150 orders queued")
        flaky["up"] = False
        traffic(2.0, 3.0, 0.20, 150)
        wait_for(3)
        print("3. recovery: fast again, backlog drains to 35 (still above resolve_below=20)")
        flaky["up"] = True
        traffic(2.5, 0.05, 0.0, 35)
        print("4. backlog down to 5")
        traffic(1.5, 0.05, 0.0, 5)
        wait_for(6)
    finally:
        monitor.stop()

    status, metrics = fetch(server.url + "/metrics")
    print(f"\nGET /metrics -> {status}, {len(metrics.splitlines())} lines, e.g.:")
    for line in metrics.decode().splitlines():
        if line.startswith(("app_request_seconds{", "app_request_seconds_count", "orders_queued ")):
            print("  " + line)
    status, body = fetch(server.url + "/metrics.json")
    doc = json.loads(body)
    print(f"GET /metrics.json -> {status}, {len(doc['metrics'])} metrics, alert states:")
    for alert in doc["alerts"]:
        print(f"  {alert['rule']:<14} {alert['state']:<9} value={alert['value']}")
    status, body = fetch(server.url + "/health")
    health = json.loads(body)
    print(f"GET /health -> {status} {health['status']}")
    for name, row in health["components"].items():
        print(f"  {name:<13} {row['status']:<9} uptime={row['uptime']:.1%}")

    fired = [(b["rule"], b["kind"], b["severity"]) for b in received]
    print("\nnotifications, in order:")
    for rule, kind, severity in fired:
        print(f"  {rule:<14} {kind:<11} {severity}")
    stats = monitor.stats()
    print(f"delivered {sum(n.sent for n in stats.notifiers)}, failed attempts "
          f"{stats.notification_failures}")  # fmt: skip
    monitor.close()
    hook.shutdown()
    hook.server_close()
    rules_fired = {rule for rule, kind, _ in fired if kind == "firing"}
    rules_resolved = {rule for rule, kind, _ in fired if kind == "resolved"}
    missing = {"response_time", "error_rate", "order_backlog"} - (rules_fired & rules_resolved)
    if missing:
        raise SystemExit(f"expected these rules to fire and resolve: {sorted(missing)}")


if __name__ == "__main__":
    main()
