"""The routing core alone: route table, kinds, scopes and hostile requests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.monitor import EndpointAuth, PerformanceMonitor
from sentia_core.monitor._routing import Request, Response, Route, Router


def test_a_registered_route_and_a_static_prefix_are_served() -> None:
    router = Router()
    router.add(Route("/dashboard", lambda _: Response.html("<p>hi</p>"), kind="page"))
    router.add(
        Route(
            "/static/",
            lambda r: Response(200, r.path.encode(), "text/javascript; charset=utf-8"),
            kind="static",
        )
    )
    router.add(Route("/api/panel", lambda r: Response.json(json.dumps(r.params()))))
    assert router.handle(Request("GET", "/dashboard")).status == 200
    js = router.handle(Request("GET", "/static/app.js", headers={"sec-fetch-site": "cross-site"}))
    assert js.status == 200 and js.body == b"/static/app.js"  # assets are not refused
    assert ("X-Content-Type-Options", "nosniff") in js.headers
    api = router.handle(Request("GET", "/api/panel", query="window=1h&x=&window=24h"))
    assert json.loads(api.body) == {"window": "24h", "x": ""}
    assert (
        router.handle(Request("GET", "/api/panel", headers={"origin": "http://evil"})).status == 403
    )
    assert router.paths() == ["/api/panel", "/dashboard", "/static/"]
    with pytest.raises(ConfigError, match="path"):
        Route("nope", lambda _: Response.text(""))
    with pytest.raises(ConfigError, match="kind"):
        Route("/x", lambda _: Response.text(""), kind="script")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scope"):
        Route("/x", lambda _: Response.text(""), scope="admin")  # type: ignore[arg-type]


def test_the_monitor_table_lists_every_endpoint_with_its_scope(
    monitor: PerformanceMonitor,
) -> None:
    router = monitor.router()
    scopes = {p: router.match(p).scope for p in router.paths()}  # type: ignore[union-attr]
    assert scopes == {
        "/": "pages",
        "/dashboard": "pages",
        "/dashboard.json": "pages",
        "/static/": "pages",
        "/health": "health",
        "/health/live": "live",
        "/health/ready": "health",
        "/metrics": "metrics",
        "/metrics.json": "metrics",
    }


def test_gzip_only_for_large_successful_answers() -> None:
    router = Router([Route("/big", lambda _: Response.text("x" * 5000))])
    plain = router.handle(Request("GET", "/big"))
    zipped = router.handle(Request("GET", "/big", headers={"accept-encoding": "gzip, br"}))
    assert ("Content-Encoding", "gzip") not in plain.headers
    assert ("Content-Encoding", "gzip") in zipped.headers and len(zipped.body) < 5000


_text = st.text(max_size=60)


@settings(max_examples=200)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "TRACE", "get"]) | _text,
    path=_text,
    query=_text,
    headers=st.dictionaries(
        st.sampled_from(["origin", "sec-fetch-site", "host", "authorization", "accept-encoding"])
        | _text,
        _text,
        max_size=6,
    ),
)
def test_hostile_requests_get_an_answer_never_an_exception(
    method: str, path: str, query: str, headers: dict[str, str]
) -> None:
    m = PerformanceMonitor(system_metrics=False)
    for auth in (None, EndpointAuth(token="t0ken", open_liveness=True)):
        response = m.router(auth).handle(Request(method, path, query, headers))
        assert 200 <= response.status < 600
        names = {k.lower() for k, _ in response.headers}
        assert "content-security-policy" in names
        assert not any(n.startswith("access-control-") for n in names)
        if method not in ("GET", "HEAD"):
            assert response.status == 405
