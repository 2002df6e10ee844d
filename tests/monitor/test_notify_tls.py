"""Notifiers over TLS: certificates verified by default, an explicit opt-out, secrets masked.

Issue 20 item 6. A real HTTPS receiver and a real SMTPS server (aiosmtpd) on
loopback, with a certificate authority the test makes; the client either trusts
that CA (``verify=CA_FILE``), trusts the system store (the default, which must
refuse this certificate), or opts out (``verify=False``).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sentia_core.errors import ConfigError
from sentia_core.monitor import EmailNotifier, SlackNotifier, WebhookNotifier
from sentia_core.monitor._notify import NotificationError
from tests._tls_certs import CertPaths, make_certs

from .test_notify import make_alert

SECRET = "T0KEN-in-the-path-9f3a"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return make_certs(tmp_path_factory.mktemp("certs"))


class HttpsReceiver:
    def __init__(self, certs: CertPaths) -> None:
        self.bodies: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.cert, certs.key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{port}/services/{SECRET}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def https_receiver(certs: CertPaths) -> Iterator[HttpsReceiver]:
    r = HttpsReceiver(certs)
    yield r
    r.stop()


@pytest.mark.parametrize("make", [WebhookNotifier, SlackNotifier])
def test_webhooks_verify_certificates_by_default(
    make: Any, https_receiver: HttpsReceiver, certs: CertPaths
) -> None:
    with pytest.raises(NotificationError) as info:
        make(https_receiver.url, timeout=5)(make_alert())
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value)
    assert SECRET not in str(info.value)
    assert https_receiver.bodies == []
    make(https_receiver.url, timeout=5, verify=str(certs.ca))(make_alert())
    assert len(https_receiver.bodies) == 1


def test_turning_verification_off_is_explicit_and_logged(
    https_receiver: HttpsReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sentia_core.monitor"):
        notifier = WebhookNotifier(https_receiver.url, verify=False)
    assert "NOT verified" in caplog.text
    notifier(make_alert())
    assert len(https_receiver.bodies) == 1


def test_webhook_url_is_masked_in_repr_and_errors() -> None:
    url = f"https://hooks.example.invalid/services/{SECRET}"
    for notifier in (WebhookNotifier(url), SlackNotifier(url)):
        assert SECRET not in repr(notifier)
    with pytest.raises(ConfigError) as info:
        WebhookNotifier(f"ftp://hooks.example.invalid/{SECRET}")
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError) as info:
        WebhookNotifier(f"https://hooks.example.invalid:99999/{SECRET}")
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError):
        WebhookNotifier(url, verify="/nonexistent/ca.pem")


@pytest.fixture
def smtps(certs: CertPaths) -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    from tests._servers import free_port

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    yield port, messages
    controller.stop()


def test_email_over_smtps_verifies_the_certificate(
    smtps: tuple[int, list[Any]], certs: CertPaths
) -> None:
    port, messages = smtps
    args: dict[str, Any] = {"sender": "a@example.test", "recipients": ["b@example.test"]}
    with pytest.raises(NotificationError):
        EmailNotifier("127.0.0.1", port, use_ssl=True, timeout=5, **args)(make_alert())
    assert messages == []
    EmailNotifier("127.0.0.1", port, use_ssl=True, timeout=5, verify=str(certs.ca), **args)(
        make_alert()
    )
    assert len(messages) == 1


def test_smtp_login_without_tls_is_refused_and_the_password_never_shown(tmp_path: Path) -> None:
    args: dict[str, Any] = {"sender": "a@example.test", "recipients": ["b@example.test"]}
    with pytest.raises(ConfigError) as info:
        EmailNotifier("127.0.0.1", 25, username="ops", password="SMTP-PW-77c1", **args)
    assert "SMTP-PW-77c1" not in str(info.value)
    notifier = EmailNotifier(
        "127.0.0.1", 587, username="ops", password="SMTP-PW-77c1", starttls=True, **args
    )
    assert "SMTP-PW-77c1" not in repr(notifier)
    insecure = EmailNotifier(
        "127.0.0.1", 25, username="ops", password="x", allow_plaintext_login=True, **args
    )
    assert insecure.username == "ops"
