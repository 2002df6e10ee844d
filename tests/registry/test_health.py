"""Active health checks: the probes against real sockets, and the rise/fall state machine."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.errors import ConfigError
from sentia_core.registry import (
    CallableCheck,
    HealthCheck,
    HealthStatus,
    HealthTracker,
    HttpCheck,
    Instance,
    TcpCheck,
)
from sentia_core.registry._health import as_health_check
from tests._servers import free_port

H, U, S = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY, HealthStatus.STARTING


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/health": 200, "/created": 204, "/bad": 503, "/moved": 302}.get(
            self.path.split("?")[0], 404
        )
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/health")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_instance() -> Iterator[Instance]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield Instance(service="web", id="1", address=f"127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()
    t.join()


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/health", True), ("/created", True), ("/bad", False), ("/moved", False), ("/x", False)],
)
def test_http_check_passes_on_2xx_only(
    http_instance: Instance, target: str, expected: bool
) -> None:
    assert HttpCheck(target).probe(http_instance, 2.0) is expected


def test_http_check_resolves_paths_against_the_address_or_uses_a_url(
    http_instance: Instance,
) -> None:
    as_url = Instance(service="web", id="2", address=f"http://{http_instance.address}")
    assert HttpCheck("/health").probe(as_url, 2.0)
    absolute = HttpCheck(f"http://{http_instance.address}/health?full=1")
    assert absolute.url_for(Instance(service="x", id="y", address="elsewhere:1")).endswith("=1")
    assert absolute.probe(Instance(service="x", id="y", address="elsewhere:1"), 2.0)


def test_http_check_fails_on_refused_silent_and_tls_mismatch(http_instance: Instance) -> None:
    refused = Instance(service="web", id="r", address=f"127.0.0.1:{free_port()}")
    assert HttpCheck().probe(refused, 1.0) is False
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        mute = Instance(service="web", id="m", address=f"127.0.0.1:{silent.getsockname()[1]}")
        assert HttpCheck().probe(mute, 0.1) is False
    tls = HttpCheck(f"https://{http_instance.address}/health", verify_tls=False)
    assert tls.probe(http_instance, 1.0) is False


def test_tcp_check_connects() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        up = Instance(service="db", id="1", address=f"127.0.0.1:{port}")
        assert TcpCheck().probe(up, 1.0)
        assert TcpCheck("127.0.0.1", port).probe(Instance(service="d", id="x", address="n"), 1.0)
    down = Instance(service="db", id="2", address=f"127.0.0.1:{free_port()}")
    assert TcpCheck().probe(down, 1.0) is False
    assert TcpCheck().probe(Instance(service="db", id="3", address="no-port"), 1.0) is False


def test_callable_check_passes_on_true_or_none_and_fails_on_false_or_raise() -> None:
    i = Instance(service="s", id="1", address="h:1")

    def boom(_: Instance) -> bool:
        raise ConnectionError("down")

    assert CallableCheck(lambda _: True).probe(i, 1)
    assert CallableCheck(lambda _: None).probe(i, 1)
    assert not CallableCheck(lambda _: False).probe(i, 1)
    assert not CallableCheck(lambda _: 0).probe(i, 1)
    assert not CallableCheck(boom).probe(i, 1)


def test_health_check_arguments_are_normalized() -> None:
    assert as_health_check(None) is None
    assert as_health_check("/ready") == HttpCheck("/ready")
    assert as_health_check("https://x/health") == HttpCheck("https://x/health")
    assert as_health_check("tcp") == TcpCheck()
    assert as_health_check("tcp://db:5432") == TcpCheck("db", 5432)
    fn_check = as_health_check(lambda i: True)
    assert isinstance(fn_check, CallableCheck)
    custom = HttpCheck("/h", interval=5, timeout=1, rise=3, fall=4)
    assert as_health_check(custom) is custom
    assert isinstance(custom, HealthCheck)


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ("ftp://x/y", "health_check"),
        ("tcp://no-port", "health_check"),
        ("health", "health_check"),
        (42, "health_check"),
    ],
)
def test_bad_health_checks_are_config_errors(value: object, parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        as_health_check(value)
    assert err.value.parameter == parameter


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: HttpCheck(""), "target"),
        (lambda: HttpCheck("ftp://x"), "target"),
        (lambda: HttpCheck(interval=0), "interval"),
        (lambda: HttpCheck(timeout=-1), "timeout"),
        (lambda: TcpCheck(rise=0), "rise"),
        (lambda: TcpCheck(fall=1.5), "fall"),
        (lambda: TcpCheck(port=70000), "port"),
        (lambda: CallableCheck(42), "fn"),  # type: ignore[arg-type]
        (lambda: HealthTracker(0, 1), "rise"),
    ],
)
def test_check_settings_are_validated_at_construction(make: object, parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        make()  # type: ignore[operator]
    assert err.value.parameter == parameter


def test_tracker_rise_and_fall_hysteresis() -> None:
    t = HealthTracker(rise=2, fall=3)
    assert t.status is S
    assert t.record(True) is H  # a first pass is enough
    assert [t.record(False), t.record(False)] == [None, None]
    assert t.record(True) is None  # a pass resets the fall count
    assert [t.record(False), t.record(False), t.record(False)] == [None, None, U]
    assert t.record(True) is None
    assert t.record(False) is None  # a failure resets the rise count
    assert [t.record(True), t.record(True)] == [None, H]
    fresh = HealthTracker(rise=2, fall=3)
    assert fresh.record(False) is U  # a starting instance fails fast


class TrackerMachine(RuleBasedStateMachine):
    """The tracker against the rule stated on the whole history of results."""

    @initialize(rise=st.integers(1, 4), fall=st.integers(1, 4))
    def setup(self, rise: int, fall: int) -> None:
        self.rise, self.fall = rise, fall
        self.tracker = HealthTracker(rise, fall)
        self.history: list[bool] = []
        self.statuses: list[HealthStatus] = [S]

    @rule(passed=st.booleans())
    def probe(self, passed: bool) -> None:
        before = self.tracker.status
        changed = self.tracker.record(passed)
        self.history.append(passed)
        after = self.tracker.status
        self.statuses.append(after)
        assert (changed is not None) == (after is not before)
        assert changed in (None, after)
        if before is S:
            assert after is (H if passed else U)
        elif before is H and after is U:
            # only after `fall` failures in a row, since it became healthy
            assert self.history[-self.fall :] == [False] * self.fall
            assert self.statuses[-self.fall - 1 :][0] is H
        elif before is U and after is H:
            assert self.history[-self.rise :] == [True] * self.rise
            assert self.statuses[-self.rise - 1 :][0] is U
        else:
            assert before is after

    @invariant()
    def never_back_to_starting(self) -> None:
        if self.history:
            assert self.tracker.status is not S

    @invariant()
    def a_streak_long_enough_always_decides(self) -> None:
        if len(self.history) >= self.fall and self.history[-self.fall :] == [False] * self.fall:
            assert self.tracker.status is U
        if len(self.history) >= self.rise and self.history[-self.rise :] == [True] * self.rise:
            assert self.tracker.status is H


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = settings(stateful_step_count=25)
