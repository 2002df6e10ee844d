"""Authentication, TLS and page hardening of the monitor's endpoints (issue 20),
fetched for real over loopback."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.monitor import EndpointAuth, MetricsServer, PerformanceMonitor
from sentia_core.monitor._routing import (
    CONTENT_SECURITY_POLICY,
    Request,
    Response,
    Route,
    Router,
    is_loopback,
)

TOKEN = "s3cret-token_for.tests~"
PATHS = ("/metrics", "/metrics.json", "/health", "/health/ready", "/health/live", "/")


def fetch(
    url: str, context: ssl.SSLContext | None = None, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def authed(monitor: PerformanceMonitor) -> Iterator[MetricsServer]:
    auth = EndpointAuth(
        token=TOKEN, metrics_username="prometheus", metrics_password="scrape-pw", open_liveness=True
    )
    with monitor.serve(auth=auth) as server:
        yield server


def test_every_endpoint_but_open_liveness_answers_401_without_credentials(
    authed: MetricsServer,
) -> None:
    for path in PATHS:
        status, headers, _ = fetch(authed.url + path)
        if path == "/health/live":
            assert status == 200
            continue
        assert status == 401, path
        assert "realm=" in headers["WWW-Authenticate"]
    assert fetch(authed.url + "/nope")[0] == 401  # unknown paths do not leak a 404


def test_the_right_credentials_pass_and_separate_metrics_credentials_apply(
    authed: MetricsServer,
) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    scrape = {"Authorization": basic("prometheus", "scrape-pw")}
    for path in ("/health", "/health/ready", "/"):
        assert fetch(authed.url + path, **bearer)[0] == 200
        assert fetch(authed.url + path, **scrape)[0] == 401  # metrics creds are metrics-only
    for path in ("/metrics", "/metrics.json"):
        assert fetch(authed.url + path, **scrape)[0] == 200
        assert fetch(authed.url + path, **bearer)[0] == 401  # replaced by metrics_*
    for wrong in (
        f"Bearer {TOKEN}x",
        f"bearer {TOKEN[:-1]}",
        basic("prometheus", "scrape-px"),
        basic("prometheus", ""),
        "Basic !!!notbase64",
        "Digest foo",
        TOKEN,
    ):
        assert fetch(authed.url + "/metrics", Authorization=wrong)[0] == 401


@settings(max_examples=100)
@given(header=st.text(max_size=200))
def test_arbitrary_authorization_headers_never_pass_or_crash(header: str) -> None:
    router = Router(auth=EndpointAuth(token=TOKEN, username="u", password="p"))
    response = router.handle(Request("GET", "/metrics", headers={"authorization": header}))
    assert response.status == 401


def test_only_live_is_open_by_choice_and_nothing_by_default() -> None:
    routes = [
        Route("/health/live", lambda _: Response.json("{}"), scope="live"),
        Route("/health", lambda _: Response.json("{}"), scope="health"),
    ]
    router = Router(routes, auth=EndpointAuth(token=TOKEN))
    assert router.handle(Request("GET", "/health/live")).status == 401
    open_live = Router(routes, auth=EndpointAuth(token=TOKEN, open_liveness=True))
    assert open_live.handle(Request("GET", "/health/live")).status == 200
    assert open_live.handle(Request("GET", "/health")).status == 401


def test_binding_beyond_loopback_without_auth_is_refused(monitor: PerformanceMonitor) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.com"):
        with pytest.raises(ConfigError, match="allow_unauthenticated"):
            monitor.serve(host=host)
    with monitor.serve(host="0.0.0.0", port=0, allow_unauthenticated=True) as server:
        assert server.address[0] == "0.0.0.0"
    with monitor.serve(host="0.0.0.0", port=0, auth=TOKEN) as server:
        status, _, _ = fetch(f"http://127.0.0.1:{server.address[1]}/metrics")
        assert status == 401
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.8.9.1") and not is_loopback("10.0.0.1")


def test_bad_credentials_settings_fail_without_echoing_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        EndpointAuth(token="has space secretvalue")
    assert "secretvalue" not in str(info.value)
    with pytest.raises(ConfigError, match="go together"):
        EndpointAuth(username="u")
    with pytest.raises(ConfigError, match="no credentials"):
        EndpointAuth(metrics_token=TOKEN)
    with pytest.raises(ConfigError, match="auth"):
        PerformanceMonitor(system_metrics=False).serve(auth=42)  # type: ignore[arg-type]
    assert TOKEN not in repr(EndpointAuth(token=TOKEN, username="u", password="pw-secret"))
    assert "pw-secret" not in repr(EndpointAuth(username="u", password="pw-secret"))


def test_every_response_is_hardened_and_carries_no_cors_header(
    monitor: PerformanceMonitor,
) -> None:
    with monitor.serve() as server:
        for path in (*PATHS, "/nope"):
            for headers in ({}, {"Origin": "https://evil.example"}):
                status, got, _ = fetch(server.url + path, **headers)
                assert got["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
                assert CONTENT_SECURITY_POLICY.startswith("default-src 'self';")
                assert got["X-Content-Type-Options"] == "nosniff"
                assert got["Referrer-Policy"] == "no-referrer"
                assert not [h for h in got if h.lower().startswith("access-control-")]
        _, got, body = fetch(server.url + "/")
        assert got["Content-Type"].startswith("text/html")
        page = body.decode().lower()
        # scripts only from same-origin files (the CSP forbids inline ones), no handlers
        scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, re.S)
        assert scripts and all(not text.strip() for text in scripts)
        assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", page))
        assert not re.search(r"\son[a-z]+=", page)


def test_json_endpoints_refuse_cross_origin_reads(monitor: PerformanceMonitor) -> None:
    with monitor.serve() as server:
        host = f"{server.address[0]}:{server.address[1]}"
        for path in ("/metrics", "/metrics.json", "/health", "/health/ready"):
            assert fetch(server.url + path, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
            assert fetch(server.url + path, **{"Sec-Fetch-Site": "same-site"})[0] == 403
            assert fetch(server.url + path, Origin="https://evil.example")[0] == 403
            assert fetch(server.url + path, Origin="null")[0] == 403
            assert fetch(server.url + path, Origin=f"http://{host}")[0] == 200
            assert fetch(server.url + path, **{"Sec-Fetch-Site": "same-origin"})[0] == 200
            assert fetch(server.url + path, **{"Sec-Fetch-Site": "none"})[0] == 200
        # a page may be reached by a navigation from anywhere
        assert fetch(server.url + "/", **{"Sec-Fetch-Site": "cross-site"})[0] == 200


def test_nothing_is_reachable_by_a_state_changing_method(monitor: PerformanceMonitor) -> None:
    with monitor.serve() as server:
        for path in PATHS:
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                status, headers, _ = fetch(server.url + path, method=method)
                assert status == 405 and headers["Allow"] == "GET, HEAD"


# ---------------------------------------------------------------------------- TLS


def _certificate(tmp: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sentia-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "cert.pem", tmp / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def test_https_with_verification_401_without_and_200_with_credentials(
    monitor: PerformanceMonitor, tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    certfile, keyfile = _certificate(tmp_path)
    client = ssl.create_default_context(cafile=certfile)  # verifies chain and host name
    with monitor.serve(auth=TOKEN, tls=(certfile, keyfile)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert fetch(server.url + "/metrics", context=client)[0] == 401
        status, _, body = fetch(
            server.url + "/metrics", context=client, Authorization=f"Bearer {TOKEN}"
        )
        assert status == 200 and b"# HELP" in body or status == 200
        # plain HTTP on the TLS port gets no answer and does not break the server
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(server.url.replace("https", "http") + "/metrics", timeout=5)
        untrusting = ssl.create_default_context()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(server.url + "/health/live", timeout=5, context=untrusting)
        assert (
            fetch(server.url + "/health", context=client, Authorization=f"Bearer {TOKEN}")[0] == 200
        )
        assert server.stats().bad_requests >= 2


def test_an_ssl_context_is_accepted_and_bad_files_fail_clearly(
    monitor: PerformanceMonitor, tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    certfile, keyfile = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    with monitor.serve(tls=context) as server:
        client = ssl.create_default_context(cafile=certfile)
        assert fetch(server.url + "/health/live", context=client)[0] == 200
    with pytest.raises(ConfigError, match="tls"):
        monitor.serve(tls=(str(tmp_path / "missing.pem"), keyfile))
    with pytest.raises(ConfigError, match="tls"):
        monitor.serve(tls="cert.pem")
