"""Notifiers and delivery: retries with back-off, ordering, real webhook/Slack/SMTP receivers."""

from __future__ import annotations

import logging
import random
import threading

import pytest

from sentia_core.errors import ConfigError
from sentia_core.monitor import (
    Alert,
    AlertRule,
    EmailNotifier,
    LoggingNotifier,
    NotificationError,
    NotificationKind,
    PerformanceMonitor,
    Severity,
    SlackNotifier,
    WebhookNotifier,
)
from sentia_core.monitor._notify import Dispatcher
from sentia_core.testing import ManualClock

from .conftest import Receiver, SmtpSink


def make_alert(kind: NotificationKind = NotificationKind.FIRING, rule: str = "cpu") -> Alert:
    return Alert(
        source="monitor",
        at=1_750_000_000.0,
        rule=rule,
        kind=kind,
        severity=Severity.CRITICAL,
        previous_severity=None,
        value=93.5,
        threshold=90.0,
        metric="system_cpu_percent",
        above=True,
        labels=(("team", "ops"),),
        description="Scale out.",
        active_since=1_749_999_940.0,
    )


class Flaky:
    """Fails the first ``failures`` calls, then records."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.delivered: list[Alert] = []
        self.name = "flaky"

    def __call__(self, alert: Alert) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("receiver down")
        self.delivered.append(alert)


def dispatcher(clock: ManualClock, **kw: object) -> Dispatcher:
    return Dispatcher(clock.monotonic, random.Random(1), **kw)  # type: ignore[arg-type]


def test_a_failing_notifier_is_retried_with_exponential_backoff(clock: ManualClock) -> None:
    d = dispatcher(clock, backoff=1.0, backoff_max=300.0, jitter=0.0, max_attempts=5)
    flaky = Flaky(failures=3)
    d.add(flaky)
    d.submit([make_alert()])
    waits = []
    assert d.deliver() == 0
    for _ in range(3):
        due = d._queues[0].due
        waits.append(due - clock.monotonic())
        clock.advance(due - clock.monotonic() - 0.001)
        assert d.deliver() == 0  # not due yet: not even tried
        clock.advance(0.001)
        d.deliver()
    assert waits == [1.0, 2.0, 4.0]
    assert len(flaky.delivered) == 1 and flaky.calls == 4
    (stats,) = d.stats()
    assert (stats.sent, stats.failures, stats.dropped, stats.pending) == (1, 3, 0, 0)
    assert stats.last_error == "ConnectionError: receiver down"


def test_jitter_shortens_waits_within_bounds(clock: ManualClock) -> None:
    d = dispatcher(clock, backoff=10.0, jitter=0.5)
    d.add(Flaky(failures=100))
    d.submit([make_alert()])
    d.deliver()
    wait = d._queues[0].due - clock.monotonic()
    assert 5.0 <= wait <= 10.0


def test_after_max_attempts_a_notification_is_dropped_and_counted(clock: ManualClock) -> None:
    d = dispatcher(clock, backoff=1.0, jitter=0.0, max_attempts=2)
    flaky = Flaky(failures=2)
    d.add(flaky)
    d.submit([make_alert(rule="a"), make_alert(rule="b")])
    d.deliver()  # a: attempt 1 fails
    clock.advance(1)
    d.deliver()  # a: attempt 2 fails -> dropped; b goes at once
    assert [a.rule for a in flaky.delivered] == ["b"]
    (stats,) = d.stats()
    assert (stats.sent, stats.failures, stats.dropped) == (1, 2, 1)


def test_later_notifications_wait_behind_a_failing_one(clock: ManualClock) -> None:
    d = dispatcher(clock, backoff=5.0, jitter=0.0)
    flaky = Flaky(failures=1)
    d.add(flaky)
    d.submit([make_alert(NotificationKind.FIRING)])
    d.deliver()
    d.submit([make_alert(NotificationKind.RESOLVED)])
    d.deliver()
    assert flaky.delivered == []  # resolved must not overtake firing
    clock.advance(5)
    assert d.deliver() == 2
    assert [a.kind for a in flaky.delivered] == [NotificationKind.FIRING, NotificationKind.RESOLVED]


def test_one_failing_notifier_does_not_hold_up_the_others(clock: ManualClock) -> None:
    d = dispatcher(clock)
    broken, fine = Flaky(failures=10), Flaky(failures=0)
    d.add(broken, "broken")
    d.add(fine, "fine")
    d.submit([make_alert()])
    assert d.deliver() == 1
    assert len(fine.delivered) == 1


def test_the_queue_is_bounded(clock: ManualClock) -> None:
    d = dispatcher(clock, max_queue=3)
    d.add(Flaky(failures=100))
    d.submit([make_alert(rule=str(i)) for i in range(5)])
    (stats,) = d.stats()
    assert (stats.pending, stats.dropped) == (3, 2)
    assert [a.rule for a in d._queues[0].items] == ["2", "3", "4"]


def test_notifier_names_are_unique(clock: ManualClock) -> None:
    d = dispatcher(clock)
    assert d.add(print) == "print"
    assert d.add(print) == "print#2"
    assert d.remove("print#2") is True
    assert d.remove("nope") is False
    with pytest.raises(ConfigError):
        d.add("not callable")  # type: ignore[arg-type]


def test_a_notifier_is_never_run_twice_at_once(clock: ManualClock) -> None:
    d = dispatcher(clock)
    inside = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow(alert: Alert) -> None:
        calls.append(alert.rule)
        inside.set()
        release.wait(10)

    d.add(slow)
    d.submit([make_alert(rule="a")])
    t = threading.Thread(target=d.deliver)
    t.start()
    inside.wait(10)
    assert d.deliver() == 0  # busy: the second deliverer skips it
    release.set()
    t.join(10)
    assert calls == ["a"]


def test_evaluation_survives_failing_notifiers(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("smtp on fire")

    got: list[Alert] = []
    monitor.add_notifier(broken)
    monitor.add_notifier(got.append, name="inbox")
    monitor.gauge("x").set(5)
    monitor.add_rule(AlertRule("r", "x", warning=1))
    alerts = monitor.evaluate()
    assert [a.rule for a in alerts] == ["r"]
    assert [a.rule for a in got] == ["r"]
    stats = monitor.stats()
    assert stats.notification_failures == 1 and stats.notifications_pending == 1
    text = monitor.prometheus_text()
    assert 'sentia_monitor_notifications_total{notifier="broken",outcome="failed"} 1' in text
    assert 'sentia_monitor_notifications_total{notifier="inbox",outcome="sent"} 1' in text


def test_retries_happen_on_later_ticks(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    flaky = Flaky(failures=1)
    monitor.add_notifier(flaky)
    monitor.gauge("x").set(5)
    monitor.add_rule(AlertRule("r", "x", warning=1))
    monitor.tick()
    assert flaky.delivered == []
    clock.advance(10)
    monitor.tick()
    assert [a.rule for a in flaky.delivered] == ["r"]


# ----------------------------------------------------------------------------- built-in notifiers


def test_logging_notifier_levels(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LoggingNotifier()
    with caplog.at_level(logging.INFO, logger="sentia_core.monitor.alerts"):
        notifier(make_alert())
        notifier(make_alert(NotificationKind.RESOLVED))
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.INFO]
    assert "[CRITICAL] cpu firing: system_cpu_percent = 93.5 (> 90)" in caplog.records[0].message


def test_webhook_posts_the_alert_as_json(receiver: Receiver) -> None:
    WebhookNotifier(receiver.url, headers={"X-Token": "t"})(make_alert())
    (body,) = receiver.bodies
    assert body["rule"] == "cpu" and body["status"] == "firing"
    assert body["severity"] == "critical" and body["value"] == 93.5
    assert body["labels"] == {"team": "ops"}
    assert body["summary"].startswith("[CRITICAL] cpu firing")


def test_webhook_errors_raise_notification_error_without_leaking_the_url(
    receiver: Receiver,
) -> None:
    receiver.status = 500
    with pytest.raises(NotificationError, match="HTTP 500") as info:
        WebhookNotifier(receiver.url)(make_alert())
    assert "secret-token" not in str(info.value)
    receiver.stop()
    with pytest.raises(NotificationError, match="failed"):
        WebhookNotifier(receiver.url, timeout=2)(make_alert())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "localhost:80", 42, "http://"])
def test_webhook_urls_must_be_http(url: object) -> None:
    with pytest.raises(ConfigError):
        WebhookNotifier(url)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        SlackNotifier(url)  # type: ignore[arg-type]


def test_slack_payload_reaches_a_receiver(receiver: Receiver) -> None:
    SlackNotifier(receiver.url, channel="#ops", username="sentia")(make_alert())
    (body,) = receiver.bodies
    assert body["text"].startswith("[CRITICAL] cpu firing")
    assert body["channel"] == "#ops" and body["username"] == "sentia"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#a30200"
    assert {"title": "team", "value": "ops", "short": True} in attachment["fields"]
    resolved = SlackNotifier(receiver.url).payload(make_alert(NotificationKind.RESOLVED))
    assert resolved["attachments"][0]["color"] == "#2eb886"


def test_email_is_delivered_to_a_local_smtp_server(smtp_sink: SmtpSink) -> None:
    notifier = EmailNotifier(
        "127.0.0.1", smtp_sink.port, sender="sentia@example.org", recipients=["ops@example.org"]
    )
    notifier(make_alert())
    (envelope,) = smtp_sink.messages
    assert envelope.mail_from == "sentia@example.org"
    assert envelope.rcpt_tos == ["ops@example.org"]
    text = envelope.content.decode()
    assert "Subject: [sentia] [CRITICAL] cpu firing" in text
    assert "metric: system_cpu_percent" in text


def test_email_failures_raise_notification_error() -> None:
    from tests._servers import free_port

    notifier = EmailNotifier(
        "127.0.0.1", free_port(), sender="a@b.c", recipients=["d@e.f"], timeout=2
    )
    with pytest.raises(NotificationError, match="SMTP"):
        notifier(make_alert())


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"recipients": []}, "recipients"),
        ({"recipients": "ops@example.org"}, "recipients"),
        ({"sender": ""}, "sender"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"starttls": True, "use_ssl": True}, "starttls"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_email_configuration_is_validated(kwargs: dict[str, object], parameter: str) -> None:
    args: dict[str, object] = {"sender": "a@b.c", "recipients": ["d@e.f"]}
    args.update(kwargs)
    port = args.pop("port", 25)
    with pytest.raises(ConfigError) as info:
        EmailNotifier("127.0.0.1", port, **args)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_end_to_end_alerts_reach_a_webhook(
    monitor: PerformanceMonitor, clock: ManualClock, receiver: Receiver
) -> None:
    monitor.add_notifier(WebhookNotifier(receiver.url))
    g = monitor.gauge("system_memory_percent")
    monitor.add_rule(AlertRule("memory", "system_memory_percent", warning=80, critical=95))
    g.set(96)
    monitor.tick()
    clock.advance(10)
    g.set(40)
    monitor.tick()
    assert [(b["kind"], b["severity"]) for b in receiver.bodies] == [
        ("firing", "critical"),
        ("resolved", "critical"),
    ]
