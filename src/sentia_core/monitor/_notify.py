"""Notifiers (logging, webhook, Slack, email, any callable) and their delivery queue.

Theory of operation: the monitor hands each notification to a
:class:`Dispatcher`, which keeps one FIFO queue per notifier. :meth:`deliver`
tries the head of every queue whose retry time has come; a notifier that
raises is retried later with exponential back-off (``backoff * 2**(n-1)``,
capped at ``backoff_max``, times a random factor in ``[1 - jitter, 1]``) up to
``max_attempts`` times, then the notification is dropped and counted. Later
notifications for the same notifier wait behind a failing one, so a receiver
never sees "resolved" before the "firing" it resolves. Delivery never sleeps:
retries happen on a later tick (or :meth:`PerformanceMonitor.evaluate` call),
and the injected clock decides when they are due. No lock is held while a
notifier runs; a notifier is never called from two threads at once.
"""

from __future__ import annotations

import json
import logging
import random
import smtplib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol, runtime_checkable

from sentia_core._secrets import mask, mask_text, mask_webhook_url
from sentia_core._validate import (
    check_fraction,
    check_int,
    check_name,
    check_positive,
)
from sentia_core.errors import ConfigError, MonitorError

from ._alerts import Alert, NotificationKind, Severity

__all__ = [
    "Dispatcher",
    "EmailNotifier",
    "LoggingNotifier",
    "NotificationError",
    "Notifier",
    "NotifierStats",
    "SlackNotifier",
    "WebhookNotifier",
]

_log = logging.getLogger("sentia_core.monitor")


class NotificationError(MonitorError):
    """A notifier could not deliver (bad HTTP status, SMTP refusal...)."""


@runtime_checkable
class Notifier(Protocol):
    """Anything callable with an :class:`Alert`; raising means "try again later"."""

    def __call__(self, alert: Alert) -> object: ...


def notifier_name(fn: object) -> str:
    """A readable name for a notifier: its ``name`` attribute, or its qualified name."""
    name = getattr(fn, "name", None)
    if isinstance(name, str) and name:
        return name
    qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return str(qual).rsplit("<locals>.", 1)[-1]


class LoggingNotifier:
    """Logs each alert: WARNING for warnings, ERROR for critical, INFO for resolutions.

    Args:
        logger: a logger or a logger name (default ``sentia_core.monitor.alerts``).
    """

    def __init__(self, logger: logging.Logger | str = "sentia_core.monitor.alerts") -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.name = "logging"

    def __call__(self, alert: Alert) -> None:
        if alert.kind is NotificationKind.RESOLVED:
            level = logging.INFO
        elif alert.severity is Severity.CRITICAL:
            level = logging.ERROR
        else:
            level = logging.WARNING
        self.logger.log(level, "%s", alert.summary(), extra={"alert": alert.to_dict()})


def _check_url(parameter: str, url: object) -> str:
    if not isinstance(url, str):
        raise ConfigError(parameter, type(url).__name__, "must be an http:// or https:// URL")
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        # the URL is the secret (a Slack webhook): never put it in the error
        raise ConfigError(parameter, mask_webhook_url(url), "must be an http:// or https:// URL")
    return url


#: What ``verify=`` takes: True (the system's CA store), a CA bundle path,
#: an ``ssl.SSLContext``, or False (no verification: an explicit opt-out).
Verify = bool | str | ssl.SSLContext


def tls_context(parameter: str, verify: object) -> ssl.SSLContext:
    """The client SSL context for ``verify`` (see :data:`Verify`); verification on by default.

    Raises:
        ConfigError: ``verify`` is none of the accepted forms, or the CA file cannot be read.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return ssl.create_default_context()
    if verify is False:
        _log.warning(
            "%s=False: TLS certificates are NOT verified for this notifier; anyone on the path "
            "can read the alerts and the credentials it sends",
            parameter,
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str) and verify:
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(parameter, verify, f"cannot load the CA file: {exc}") from None
    raise ConfigError(parameter, verify, "must be True, False, a CA file path or an SSLContext")


def _post_json(
    url: str,
    payload: object,
    headers: Mapping[str, str],
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> None:
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()  # it holds the response's socket
        raise NotificationError(f"POST {_redact(url)} returned HTTP {code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = mask_text(str(getattr(exc, "reason", exc)))
        raise NotificationError(f"POST {_redact(url)} failed: {reason}") from None
    if not 200 <= status < 300:
        raise NotificationError(f"POST {_redact(url)} returned HTTP {status}")


def _redact(url: str) -> str:
    # webhook URLs carry their secret in the path (Slack): never log it whole
    return mask_webhook_url(url)


class WebhookNotifier:
    """POSTs each alert as JSON (:meth:`Alert.to_dict`) to a URL; 2xx means delivered.

    Args:
        url: an ``http://`` or ``https://`` URL (treated as a secret: only its
            scheme and host are ever shown).
        headers: extra request headers (e.g. an Authorization header; never shown).
        timeout: seconds to wait for the receiver (connect and each read).
        name: the name used in stats (default ``"webhook"``).
        verify: TLS certificate verification for ``https://``: True (default,
            the system CA store), a CA bundle path, an ``ssl.SSLContext``, or
            False to turn verification off (logged as a warning).

    Raises:
        ConfigError: bad URL, timeout or ``verify``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        name: str = "webhook",
        verify: Verify = True,
    ) -> None:
        self.url = _check_url("url", url)
        self.headers = dict(headers or {})
        self.timeout = check_positive("timeout", timeout)
        self.name = check_name("name", name)
        self.verify = verify
        self._context = tls_context("verify", verify)

    def __call__(self, alert: Alert) -> None:
        _post_json(self.url, alert.to_dict(), self.headers, self.timeout, self._context)

    def __repr__(self) -> str:
        return f"WebhookNotifier({_redact(self.url)!r})"


_SLACK_COLORS = {
    Severity.WARNING: "#daa038",
    Severity.CRITICAL: "#a30200",
}


class SlackNotifier:
    """Posts each alert to a Slack incoming webhook (text plus a coloured attachment).

    Args:
        webhook_url: the incoming-webhook URL Slack gave you.
        channel: override the webhook's channel (legacy webhooks only).
        username: override the bot's name (legacy webhooks only).
        timeout: seconds to wait for Slack.
        verify: TLS certificate verification, as for :class:`WebhookNotifier`.

    Raises:
        ConfigError: bad URL, timeout or ``verify``.
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        channel: str | None = None,
        username: str | None = None,
        timeout: float = 5.0,
        verify: Verify = True,
    ) -> None:
        self.url = _check_url("webhook_url", webhook_url)
        self.channel = channel
        self.username = username
        self.timeout = check_positive("timeout", timeout)
        self.name = "slack"
        self.verify = verify
        self._context = tls_context("verify", verify)

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body posted for ``alert``."""
        color = "#2eb886" if not alert.firing else _SLACK_COLORS[alert.severity]
        fields = [
            {"title": "Metric", "value": alert.metric, "short": False},
            {"title": "Value", "value": "no data" if alert.value is None else f"{alert.value:.6g}",
             "short": True},
            {"title": "Threshold", "value": "-" if alert.threshold is None
             else f"{alert.threshold:g}", "short": True},
        ]  # fmt: skip
        fields.extend({"title": k, "value": v, "short": True} for k, v in alert.labels)
        body: dict[str, Any] = {
            "text": alert.summary(),
            "attachments": [
                {
                    "color": color,
                    "fallback": alert.summary(),
                    "text": alert.description,
                    "fields": fields,
                    "ts": int(alert.at),
                }
            ],
        }
        if self.channel:
            body["channel"] = self.channel
        if self.username:
            body["username"] = self.username
        return body

    def __call__(self, alert: Alert) -> None:
        _post_json(self.url, self.payload(alert), {}, self.timeout, self._context)

    def __repr__(self) -> str:
        return f"SlackNotifier({_redact(self.url)!r})"


class EmailNotifier:
    """Sends each alert as a plain-text email through SMTP (smtplib).

    Args:
        host: the SMTP server.
        port: its port (25, 587 with ``starttls``, 465 with ``use_ssl``).
        sender: the From address.
        recipients: the To addresses.
        username: SMTP login (with ``password``), or None.
        password: SMTP password.
        starttls: upgrade the connection with STARTTLS before logging in.
        use_ssl: connect with TLS from the start (SMTPS).
        timeout: seconds for the SMTP conversation.
        subject_prefix: put before every subject.
        verify: TLS certificate verification for ``starttls`` / ``use_ssl``:
            True (default), a CA bundle path, an ``ssl.SSLContext``, or False.
        allow_plaintext_login: send ``username``/``password`` over a connection
            without TLS (refused by default: the password would cross the
            network in clear).

    Raises:
        ConfigError: missing sender/recipients, bad port or timeout, both TLS
            modes, a login without TLS, a bad ``verify``.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
        subject_prefix: str = "[sentia]",
        verify: Verify = True,
        allow_plaintext_login: bool = False,
    ) -> None:
        self.host = check_name("host", host)
        self.port = check_int("port", port, minimum=1)
        if self.port > 65535:
            raise ConfigError("port", port, "must be at most 65535")
        self.sender = check_name("sender", sender)
        if (
            isinstance(recipients, str)
            or not recipients
            or not all(isinstance(r, str) and r for r in recipients)
        ):
            raise ConfigError("recipients", recipients, "must be a non-empty list of addresses")
        self.recipients = list(recipients)
        if starttls and use_ssl:
            raise ConfigError("starttls", starttls, "use starttls or use_ssl, not both")
        if username is not None and not (starttls or use_ssl or allow_plaintext_login):
            raise ConfigError(
                "password", mask(password),
                "an SMTP login needs starttls=True or use_ssl=True "
                "(or allow_plaintext_login=True)",
            )  # fmt: skip
        self.verify = verify
        self._context = tls_context("verify", verify)
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = check_positive("timeout", timeout)
        self.subject_prefix = subject_prefix
        self.name = "email"

    def message(self, alert: Alert) -> EmailMessage:
        """The email sent for ``alert``."""
        msg = EmailMessage()
        msg["Subject"] = f"{self.subject_prefix} {alert.summary()}".strip()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        lines = [alert.summary(), ""]
        for key, value in alert.to_dict().items():
            if key != "summary":
                lines.append(f"{key}: {value}")
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def __call__(self, alert: Alert) -> None:
        msg = self.message(alert)
        try:
            smtp: smtplib.SMTP
            if self.use_ssl:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=self._context)
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            reason = mask_text(str(exc))
            if self.password:
                reason = reason.replace(self.password, mask(self.password))
            raise NotificationError(f"SMTP {self.host}:{self.port} failed: {reason}") from None
        if refused:
            raise NotificationError(f"SMTP refused recipients {sorted(refused)}")

    def __repr__(self) -> str:
        login = "" if self.username is None else f", username={self.username!r}, password=***"
        return f"EmailNotifier({self.host!r}, {self.port}{login})"


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """Delivery figures of one notifier.

    Attributes:
        name: the notifier's name.
        sent: notifications delivered.
        failures: attempts that raised (each retry counts).
        dropped: notifications given up on (attempts exhausted or queue full).
        pending: notifications waiting (including one being retried).
        last_error: the last failure, as text.
    """

    name: str
    sent: int
    failures: int
    dropped: int
    pending: int
    last_error: str | None


class _Queue:
    __slots__ = (
        "attempts",
        "busy",
        "dropped",
        "due",
        "failures",
        "fn",
        "items",
        "last_error",
        "name",
        "sent",
    )

    def __init__(self, name: str, fn: Callable[[Alert], object]) -> None:
        self.name = name
        self.fn = fn
        self.items: deque[Alert] = deque()
        self.attempts = 0  # failed attempts of the head item
        self.due = 0.0  # monotonic time the head may be tried
        self.busy = False
        self.sent = 0
        self.failures = 0
        self.dropped = 0
        self.last_error: str | None = None


class Dispatcher:
    """Per-notifier FIFO queues with retry and back-off (see the module docstring).

    Args:
        now: the monotonic clock reading function.
        rng: randomness for back-off jitter.
        max_attempts: attempts per notification before it is dropped.
        backoff: seconds before the first retry.
        backoff_max: the longest wait between retries.
        jitter: fraction of each wait that is randomized (0 = none).
        max_queue: most notifications waiting per notifier; the oldest is
            dropped beyond it.
    """

    def __init__(
        self,
        now: Callable[[], float],
        rng: random.Random,
        *,
        max_attempts: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 300.0,
        jitter: float = 0.2,
        max_queue: int = 1000,
    ) -> None:
        self._now = now
        self._rng = rng
        self.max_attempts = check_int("notify_max_attempts", max_attempts, minimum=1)
        self.backoff = check_positive("notify_backoff", backoff)
        self.backoff_max = check_positive("notify_backoff_max", backoff_max)
        self.jitter = check_fraction("notify_jitter", jitter)
        self.max_queue = check_int("notify_max_queue", max_queue, minimum=1)
        self._queues: list[_Queue] = []
        self._lock = threading.Lock()

    def add(self, fn: Callable[[Alert], object], name: str | None = None) -> str:
        """Add a notifier; returns the name it is reported under (made unique)."""
        if not callable(fn):
            raise ConfigError("notifier", fn, "must be callable with an Alert")
        base = name or notifier_name(fn)
        with self._lock:
            taken = {q.name for q in self._queues}
            unique, n = base, 2
            while unique in taken:
                unique, n = f"{base}#{n}", n + 1
            self._queues.append(_Queue(unique, fn))
        return unique

    def remove(self, name: str) -> bool:
        """Remove the notifier reported as ``name``; its queue is discarded."""
        with self._lock:
            for q in self._queues:
                if q.name == name:
                    self._queues.remove(q)
                    return True
        return False

    def __len__(self) -> int:
        return len(self._queues)

    def submit(self, alerts: Sequence[Alert]) -> None:
        """Queue ``alerts`` for every notifier."""
        if not alerts:
            return
        with self._lock:
            for q in self._queues:
                for alert in alerts:
                    if len(q.items) >= self.max_queue:
                        q.items.popleft()
                        q.attempts = 0
                        q.dropped += 1
                    q.items.append(alert)

    def deliver(self) -> int:
        """Try every due queue head once per queue, repeatedly while they succeed.

        Returns how many notifications were delivered. Never raises because a
        notifier failed; never holds a lock while a notifier runs.
        """
        delivered = 0
        now = self._now()
        while True:
            progress = False
            with self._lock:
                ready = [q for q in self._queues if q.items and not q.busy and q.due <= now]
                for q in ready:
                    q.busy = True
            for q in ready:
                alert = q.items[0]
                error: BaseException | None = None
                try:
                    q.fn(alert)
                except Exception as exc:
                    error = exc
                with self._lock:
                    q.busy = False
                    if q.items and q.items[0] is alert:
                        if error is None:
                            q.items.popleft()
                            q.sent += 1
                            q.attempts = 0
                            q.due = 0.0
                            delivered += 1
                            progress = True
                        elif self._failed(q, error, now):
                            progress = True  # dropped: the next one may go now
            if not progress:
                return delivered

    def _failed(self, q: _Queue, error: BaseException, now: float) -> bool:
        # returns True when the head was dropped
        q.failures += 1
        q.attempts += 1
        q.last_error = f"{type(error).__name__}: {error}"
        if q.attempts >= self.max_attempts:
            q.items.popleft()
            q.dropped += 1
            q.attempts = 0
            q.due = 0.0
            _log.warning(
                "notifier %s gave up on a notification after %d attempts: %s",
                q.name,
                self.max_attempts,
                q.last_error,
            )
            return True
        wait = min(self.backoff_max, self.backoff * 2 ** (q.attempts - 1))
        wait *= 1.0 - self.jitter * self._rng.random()
        q.due = now + wait
        _log.info("notifier %s failed (%s); retry in %.1fs", q.name, q.last_error, wait)
        return False

    def pending(self) -> int:
        """Notifications waiting across all notifiers."""
        with self._lock:
            return sum(len(q.items) for q in self._queues)

    def stats(self) -> list[NotifierStats]:
        """Per-notifier delivery figures, in the order added."""
        with self._lock:
            return [
                NotifierStats(q.name, q.sent, q.failures, q.dropped, len(q.items), q.last_error)
                for q in self._queues
            ]
