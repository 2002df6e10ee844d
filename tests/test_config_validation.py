"""Hostile and inconsistent configuration fails at load time, naming the dotted key.

Issue 12 item 8 and issue 15 item 6: every case below once got through ``load``
(or raised a builtin error from deep inside), and now is a ConfigError that names
the key, with the documented bound, before anything is built.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core import Sentia, config
from sentia_core._validate import MAX_SECONDS, check_non_negative, check_positive
from sentia_core.errors import ConfigError

from .test_cli import ENV, ROOT

NO_MONITOR = {"monitor": {"system_metrics": False}}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"monitor": {"sample_interval": math.nan}}, "monitor.sample_interval"),
        ({"monitor": {"sample_interval": math.inf}}, "monitor.sample_interval"),
        ({"registry": {"ttl": math.nan}}, "registry.ttl"),
        ({"cache": {"ttl": "nan"}}, "cache.ttl"),
        ({"sql": {"sample_rate": math.nan}}, "sql.sample_rate"),
        ({"monitor": {"alerts": {"cpu_warning": math.inf}}}, "monitor.alerts.cpu_warning"),
        ({"breaker": {"window_size": 1_000_000_000_000}}, "breaker.window_size"),
        ({"breaker": {"window_size": 10**400}}, "breaker.window_size"),
        ({"cache": {"ttl": 10**400}}, "cache.ttl"),
        ({"cache": {"max_bytes": 10**400}}, "cache.max_bytes"),
        ({"sql": {"sample_rate": 10**400}}, "sql.sample_rate"),
        ({"cache": {"max_items": 10**12}}, "cache.max_items"),
        ({"services": {"a": {"retries": 10**6}}}, "services.a.retries"),
        ({"breaker": {"minimum_calls": 50, "window_size": 10}}, "breaker.minimum_calls"),
        ({"breaker": {"reset_timeout": 60, "max_reset_timeout": 5}}, "breaker.max_reset_timeout"),
        ({"redis_url": "redis://[::1"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1:99999/0"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1:notaport/0"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1:0/0"}, "redis_url"),
        ({"redis_url": "redis:///0"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1/zero"}, "redis_url"),
        ({"redis_url": "redis://127.0.0.1/0?socket_timeout=soon"}, "redis_url"),
        ({"redis_url": "http://127.0.0.1:6379/0"}, "redis_url"),
        ({"namespace": "my app"}, "namespace"),
        ({"namespace": "x" * 101}, "namespace"),
        ({"cache": {"namespace": "a*b"}}, "cache.namespace"),
        ({"monitor": {"http_host": "127.0.0.1\n"}}, "monitor.http_host"),
        ({"services": {"bad name": {}}}, "services.bad name"),
        ({"services": {"partner": {"rate_limit": "nosuch"}}}, "services.partner.rate_limit"),
        ({"breakers": {"db": {"shared": True}}}, "breakers.db.shared"),
        ({"breaker": {"shared": True}}, "breaker.shared"),
        ({"rate_limits": {"api": "lots"}}, "rate_limits.api"),
        ({"rate_limits": {"api": "10/0s"}}, "rate_limits.api"),
    ],
)
def test_hostile_and_inconsistent_settings_fail_at_load_naming_the_key(
    data: dict, key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(data)
    assert info.value.parameter == key
    assert str(info.value).startswith(f"invalid {key}")
    assert len(str(info.value)) < 400  # a 400-digit integer does not flood the message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"services": {"partner": {"rate_limit": "nosuch"}}}, "services.partner.rate_limit"),
        ({"breakers": {"db": {"shared": True}}}, "breakers.db.shared"),
        ({"redis_url": "redis://127.0.0.1:notaport/0"}, "redis_url"),
    ],
)
def test_sentia_refuses_the_configuration_at_construction(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Sentia({**data, **NO_MONITOR})
    assert info.value.parameter == key


def test_a_section_built_in_python_is_checked_like_a_file() -> None:
    with pytest.raises(ConfigError) as info:
        config.RegistryConfig(ttl=math.nan)  # the section alone names its own field
    assert info.value.parameter == "ttl"
    with pytest.raises(ConfigError) as info:
        config.SentiaConfig(services={"partner": config.ServiceConfig(rate_limit="gold")})
    assert info.value.parameter == "services.partner.rate_limit"
    # and strings are coerced the same way
    cfg = config.SentiaConfig(cache=config.CacheConfig(ttl="5min", max_bytes="1MB"))
    assert (cfg.cache.ttl, cfg.cache.max_bytes) == (300.0, 1024**2)


def test_bounds_are_documented_in_the_reference() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `window_size`"))
    assert "<= 100000" in row
    row = next(line for line in doc.splitlines() if line.startswith("| `ttl`"))
    assert f"<= {MAX_SECONDS:g}" in row
    assert "`nan` and `inf` are refused" in doc


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**500)))
def test_no_number_escapes_as_a_builtin_error(value: float) -> None:
    for data in (
        {"cache": {"ttl": value}},
        {"breaker": {"window_size": value}},
        {"sql": {"sample_rate": value}},
        {"cache": {"max_bytes": value}},
    ):
        try:
            cfg = config.load(data)
        except ConfigError:
            continue
        assert math.isfinite(cfg.cache.ttl) and cfg.breaker.window_size <= 100_000


def test_python_code_takes_duration_strings_like_the_file() -> None:
    assert check_positive("timeout", "250ms") == 0.25
    assert check_non_negative("stale_ttl", "5min") == 300.0
    with pytest.raises(ConfigError):
        check_positive("timeout", "soon")
    with pytest.raises(ConfigError):
        check_non_negative("total_time", "2s", duration=False)
    with Sentia(NO_MONITOR) as app:
        policy = app.protect("partner", timeout="2s")
        assert policy.timeout is not None and policy.timeout.seconds == 2.0
        app.cache.set("k", 1, ttl="1min")
        assert app.cache.get("k") == 1
    from sentia_core import CircuitBreaker

    assert CircuitBreaker("b", reset_timeout="30s").config.reset_timeout == 30.0


def test_binary_and_oversized_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load_file("/bin/ls")
    assert info.value.parameter == "/bin/ls"
    assert "UTF-8" in str(info.value)
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * (config.MAX_FILE_BYTES // 4 + 1))
    with pytest.raises(ConfigError) as info:
        config.load_file(big)
    assert info.value.parameter == str(big)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        config.load_file(deep)
    assert info.value.parameter == str(deep)
    with pytest.raises(ConfigError) as info:
        config.load_env({"SENTIA_CONFIG": "/bin/ls"})
    assert info.value.parameter == "/bin/ls"


def _sentia(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentia_core", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env={**ENV, **env},
    )  # fmt: skip


def _one_error_line(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("sentia: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_cli_health_refuses_a_binary_file_in_one_line() -> None:
    _one_error_line(_sentia("health", "--config", "/bin/ls"), "/bin/ls", "UTF-8")
    _one_error_line(_sentia("health", SENTIA_CONFIG="/bin/ls"), "/bin/ls", "UTF-8")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[services.partner]\nrate_limit = "nosuch"\n', "services.partner.rate_limit"),
        ("[breakers.db]\nshared = true\n", "breakers.db.shared"),
        ('redis_url = "redis://127.0.0.1:notaport/0"\n', "redis_url"),
        ('redis_url = "redis://[::1"\n', "redis_url"),
        ("[registry]\nttl = nan\n", "registry.ttl"),
        ("[monitor]\nsample_interval = inf\n", "monitor.sample_interval"),
        ("[breaker]\nwindow_size = 1000000000000\n", "breaker.window_size"),
        ('[rate_limits]\napi = "lots"\n', "rate_limits.api"),
    ],
)
def test_cli_health_names_the_dotted_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "sentia.toml"
    path.write_text(toml)
    _one_error_line(_sentia("health", "--config", str(path)), f"invalid {key}")


def test_cli_demo_with_a_bad_redis_url_is_one_line() -> None:
    out = _sentia("demo", "--duration", "0.2", "--redis", "redis://127.0.0.1:notaport/0")
    _one_error_line(out, "redis_url", "notaport")
