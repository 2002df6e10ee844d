"""A planted secret appears in nothing the library emits (issue 20 item 1).

Distinctive secrets go into every secret-bearing setting — the Redis password
in ``redis_url``, the cache's signing ``secret``, credentials in a service URL,
a webhook URL, an SMTP password — through the dict, TOML and ``SENTIA_*``
paths. Then everything the library can emit is collected and scanned: reprs
and strs, the ConfigError of every invalid value that carries one, log records
(with tracebacks), events, the health report, the metrics exposition (text and
JSON), notifier errors and the command line's output.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentia_core import Sentia, config
from sentia_core.errors import ConfigError
from sentia_core.monitor import EmailNotifier, SlackNotifier, WebhookNotifier
from tests._servers import RedisServer, free_port
from tests.test_cli import ENV, ROOT

REDIS_PW = "RedisPw-4c1e9a77"
SIGNING = "SigningKey-0f2b6d1e99"
SVC_PW = "SvcPw-a83c51"
HOOK = "HookTok-77de0b"
SMTP_PW = "SmtpPw-9a1f33"
SHORT = "ShortSg-1"  # an invalid (too short) signing secret
AUTH_TOK = "AuthTok-5be01c"  # the monitor endpoints' bearer token
SECRETS = (REDIS_PW, SIGNING, SVC_PW, HOOK, SMTP_PW, SHORT, AUTH_TOK)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}: {text[:2000]}"


class Collected:
    """Every log record the library writes, formatted with its traceback."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(alert)s")

        class Handler(logging.Handler):
            def emit(handler, record: logging.LogRecord) -> None:  # noqa: N805
                if not hasattr(record, "alert"):
                    record.alert = ""
                self.lines.append(formatter.format(record))
                if record.exc_info:
                    self.lines.append(formatter.formatException(record.exc_info))

        self.handler = Handler(level=logging.DEBUG)

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def logs() -> Iterator[Collected]:
    collected = Collected()
    root = logging.getLogger("sentia_core")
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(collected.handler)
    yield collected
    root.removeHandler(collected.handler)
    root.setLevel(old)


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    server = RedisServer("--requirepass", REDIS_PW)
    yield server
    server.stop()


def _settings(port: int) -> dict[str, Any]:
    return {
        "redis_url": f"redis://:{REDIS_PW}@127.0.0.1:{port}/0",
        "cache": {"secret": SIGNING, "serializer": "pickle"},
        "services": {"partner": {"url": f"https://svc:{SVC_PW}@partner.invalid/api"}},
        "breakers": {"partner": {"shared": True, "consecutive_failures": 1}},
        "monitor": {"system_metrics": False},
    }


def _toml(settings: dict[str, Any]) -> str:
    return (
        f'redis_url = "{settings["redis_url"]}"\n'
        f'[cache]\nsecret = "{SIGNING}"\nserializer = "pickle"\n'
        f'[services.partner]\nurl = "{settings["services"]["partner"]["url"]}"\n'
        "[breakers.partner]\nshared = true\nconsecutive_failures = 1\n"
        "[monitor]\nsystem_metrics = false\n"
    )


def _env(settings: dict[str, Any]) -> dict[str, str]:
    return {
        "SENTIA_REDIS_URL": settings["redis_url"],
        "SENTIA_CACHE__SECRET": SIGNING,
        "SENTIA_CACHE__SERIALIZER": "pickle",
        "SENTIA_SERVICES__PARTNER__URL": settings["services"]["partner"]["url"],
        "SENTIA_BREAKERS__PARTNER__SHARED": "true",
        "SENTIA_MONITOR__SYSTEM_METRICS": "false",
    }


@pytest.mark.redis
@pytest.mark.parametrize("path", ["dict", "toml", "env"])
def test_planted_secrets_appear_in_nothing_the_library_emits(
    path: str, tmp_path: Path, locked_redis: RedisServer, logs: Collected
) -> None:
    import redis

    with redis.Redis(port=locked_redis.port, password=REDIS_PW) as admin:
        admin.flushall()  # the shared breaker of the previous path
    settings = _settings(locked_redis.port)
    if path == "dict":
        cfg = config.load(settings)
    elif path == "toml":
        file = tmp_path / "sentia.toml"
        file.write_text(_toml(settings))
        cfg = config.load_file(file)
    else:
        cfg = config.load_env(_env(settings))
    assert cfg.redis_url == settings["redis_url"] and cfg.cache.secret == SIGNING
    out: list[str] = [repr(cfg), str(cfg), repr(cfg.cache), repr(cfg.services)]
    events: list[Any] = []
    with Sentia(cfg) as app:
        for component in (app.cache, app.limiter, app.queries, app.breaker("partner")):
            add = getattr(component, "add_listener", None)
            if add is not None:
                add(events.append)
        app.cache.set("k", {"v": 1}, tags=["t"])
        assert app.cache.get("k") == {"v": 1}
        app.cache.invalidate_tags("t")
        app.limiter.hit("api", "caller")
        with pytest.raises(ZeroDivisionError):
            app.protect("partner")(lambda: 1 / 0)()
        app.registry.register("svc", "127.0.0.1:9000")
        app.monitor.tick()
        report = app.health()
        assert report.status.value != "unhealthy", report.to_dict()  # the open breaker degrades
        out += _served_pages(app)
        out += [
            repr(app), repr(app.cache), repr(app.limiter), repr(app.registry),
            repr(app.breaker("partner")), json.dumps(report.to_dict(), default=str),
            app.monitor.prometheus_text(), json.dumps(app.monitor.to_dict(), default=str),
            repr(app.monitor.stats()),
        ]  # fmt: skip
    out += [repr(e) for e in events]
    assert events
    assert_clean("\n".join(out), f"{path}: reprs, health, metrics, events")
    assert_clean(logs.text(), f"{path}: logs")


def _served_pages(app: Sentia) -> list[str]:
    """Everything the app's endpoints answer (dashboard included), with and without the token."""
    import urllib.error
    import urllib.request

    pages: list[str] = []
    with app.serve(auth=AUTH_TOK) as server:
        for path in ("/metrics", "/metrics.json", "/health", "/health/ready", "/health/live",
                     "/", "/dashboard", "/dashboard.json?window=1h", "/dashboard.json?window=7d",
                     "/nope"):  # fmt: skip
            for token in (AUTH_TOK, None):
                req = urllib.request.Request(server.url + path)
                if token:
                    req.add_header("Authorization", f"Bearer {token}")
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        pages.append(f"{resp.status} {dict(resp.headers)} {resp.read().decode()}")
                except urllib.error.HTTPError as exc:
                    pages.append(f"{exc.code} {dict(exc.headers)} {exc.read().decode()}")
    assert any(p.startswith("200") and '"panels"' in p for p in pages)  # the dashboard was read
    assert any(p.startswith("401") for p in pages)
    return pages


@pytest.mark.redis
def test_a_wrong_password_never_shows_the_one_given(
    locked_redis: RedisServer, logs: Collected
) -> None:
    url = f"redis://:{SHORT}@127.0.0.1:{locked_redis.port}/0"
    with Sentia({"redis_url": url, "monitor": {"system_metrics": False}}) as app:
        app.cache.set("k", 1)
        app.limiter.hit("api", "x")
        report = app.health()
        # Redis refuses us; the components fail open on it, so the service is degraded
        assert report.status.value == "degraded"
        assert report.components["redis"].status.value == "unhealthy"
        text = json.dumps(report.to_dict(), default=str) + app.monitor.prometheus_text()
    assert_clean(text + repr(app), "health with a wrong password")
    assert_clean(logs.text(), "logs with a wrong password")


@pytest.mark.parametrize(
    "data",
    [
        {"redis_url": f"http://:{REDIS_PW}@127.0.0.1:6379/0"},
        {"redis_url": f"redis://:{REDIS_PW}@127.0.0.1:99999/0"},
        {"redis_url": f"redis://:{REDIS_PW}@127.0.0.1:notaport/0"},
        {"redis_url": f"redis://:{REDIS_PW}@[::1/0"},
        {"redis_url": f"redis://app:{REDIS_PW}@127.0.0.1/zero"},
        {"redis_url": f"redis://127.0.0.1/0?password={REDIS_PW}&socket_timeout=x"},
        {"redis_url": f"redis://:{REDIS_PW}@127.0.0.1/0\n"},
        {"redis_url": f"redis://:{REDIS_PW}@127.0.0.1/0" + "x" * 3000},
        {"cache": {"secret": SHORT}},
        {"cache": {"secret": SIGNING, "serializer": "marshal"}},
        {"cache": {"secret": 12345}},
        {"services": {"p": {"url": f"https://u:{SVC_PW}@h/" + "\x00"}}},
        {"services": {"p": {"url": f"https://u:{SVC_PW}@h/", "colour": 1}}},
        {"namespace": f"redis://:{REDIS_PW}@h"},
    ],
)
def test_errors_for_invalid_values_never_carry_the_secret(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(data)
    assert_clean(str(info.value) + repr(info.value) + repr(info.value.value), "ConfigError")


def test_notifiers_never_show_the_webhook_or_password() -> None:
    hook = f"https://hooks.slack.invalid/services/T0/B0/{HOOK}"
    out = [repr(WebhookNotifier(hook)), repr(SlackNotifier(hook))]
    mail = EmailNotifier(
        "127.0.0.1", free_port(), sender="a@x.test", recipients=["b@x.test"],
        username="ops", password=SMTP_PW, starttls=True, timeout=2,
    )  # fmt: skip
    out.append(repr(mail))
    from tests.monitor.test_notify import make_alert

    for notifier in (WebhookNotifier(hook.replace("hooks.slack.invalid", "127.0.0.1:1")), mail):
        try:
            notifier(make_alert())
        except Exception as exc:
            out += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    for bad in (f"ftp://x/{HOOK}", f"https://x:99999/{HOOK}", f"https:///{HOOK}"):
        with pytest.raises(ConfigError) as info:
            WebhookNotifier(bad)
        out.append(str(info.value))
    assert_clean("\n".join(out), "notifiers")


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentia_core", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env={**ENV, **env},
    )  # fmt: skip


@pytest.mark.redis
def test_cli_output_never_carries_the_secret(tmp_path: Path, locked_redis: RedisServer) -> None:
    good = tmp_path / "good.toml"
    good.write_text(_toml(_settings(locked_redis.port)))
    bad = tmp_path / "bad.toml"
    bad.write_text(f'redis_url = "http://:{REDIS_PW}@127.0.0.1:6379/0"\n')
    down = tmp_path / "down.toml"
    down.write_text(_toml(_settings(free_port())))
    runs = [
        _cli("health", "--config", str(good)),
        _cli("health", "--config", str(bad)),
        _cli("health", "--config", str(down)),
        _cli("health", **_env(_settings(locked_redis.port))),
        _cli("health", SENTIA_REDIS_URL=f"redis://:{REDIS_PW}@127.0.0.1:99999/0"),
        _cli("demo", "--duration", "0.2", "--redis", f"redis://:{REDIS_PW}@127.0.0.1:bad/0"),
        _cli("redis-acl", "--password-env", "PW", PW=REDIS_PW),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert json.loads(runs[0].stdout)["status"] == "healthy"
    assert runs[1].returncode != 0 and "redis_url" in runs[1].stderr
    assert runs[2].returncode != 0
    for run in runs:
        assert_clean(run.stdout + run.stderr, f"CLI {run.args[3:]}")


def test_docs_examples_carry_no_real_looking_password() -> None:
    for doc in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = doc.read_text()
        for line in text.splitlines():
            if "redis://" in line and "@" in line:
                userinfo = line.split("redis://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo or userinfo.split(":", 1)[1] in (
                    "***", "PASSWORD", "password", "PW", "secret",
                ), f"{doc.name}: {line}"  # fmt: skip
