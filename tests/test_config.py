"""Configuration: one validated tree from dict, TOML or environment; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core import config
from sentia_core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_original_deployment_settings() -> None:
    cfg = config.load()
    assert cfg.redis_url is None
    assert cfg.breaker.consecutive_failures == 5
    assert cfg.breaker.reset_timeout == 60.0
    assert cfg.rate_limits == {"api": "1000/15min", "auth": "50/15min", "admin": "200/15min"}
    assert (cfg.cache.max_items, cfg.cache.max_bytes) == (10_000, 100 * 1024**2)
    assert (cfg.cache.ttl, cfg.cache.redis_ttl, cfg.cache.compress_threshold) == (300, 3600, 1024)
    assert (cfg.sql.slow_query_threshold, cfg.sql.sample_rate) == (1.0, 0.1)
    assert (cfg.sql.auto_index_threshold, cfg.sql.max_indexes_per_table) == (100, 10)
    assert cfg.registry.health_check_interval == 30.0
    a = cfg.monitor.alerts
    assert (a.cpu_warning, a.cpu_critical, a.memory_warning, a.memory_critical) == (70, 90, 80, 95)
    assert (a.response_time_warning, a.response_time_critical) == (2.0, 5.0)
    assert (a.error_rate_warning, a.error_rate_critical) == (0.05, 0.10)
    assert (a.cache_hit_rate_warning, a.cache_hit_rate_critical) == (0.80, 0.60)
    assert cfg.monitor.retention == 7 * 86400


def test_example_file_reproduces_the_original_settings() -> None:
    cfg = config.load_file(ROOT / "examples" / "sentia.toml")
    assert cfg.services["auth"].timeout == 5.0
    assert cfg.services["forecasting"].timeout == 60.0
    assert cfg.services["notifications"].url == "http://localhost:3006"
    assert cfg.cache.max_bytes == 100 * 1024**2
    assert cfg.cache.redis_ttl == 3600.0
    assert cfg.sql.auto_index is True
    assert cfg.monitor.retention == 7 * 86400


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"cache": {"max_items": -1}}, "cache.max_items"),
        ({"cache": {"max_bytes": "lots"}}, "cache.max_bytes"),
        ({"cache": {"ttl": "5 fortnights"}}, "cache.ttl"),
        ({"cache": {"colour": "red"}}, "cache.colour"),
        ({"breaker": {"window_type": "sliding"}}, "breaker.window_type"),
        ({"breaker": {"failure_rate_threshold": 1.5}}, "breaker.failure_rate_threshold"),
        ({"breakers": {"db": {"reset_timeout": 0}}}, "breakers.db.reset_timeout"),
        ({"services": {"auth": {"timeout": -5}}}, "services.auth.timeout"),
        ({"services": {"auth": "http://x"}}, "services.auth"),
        ({"sql": {"sample_rate": "often"}}, "sql.sample_rate"),
        ({"monitor": {"alerts": {"cpu_warning": 170}}}, "monitor.alerts.cpu_warning"),
        ({"monitor": {"http_port": 70000}}, "monitor.http_port"),
        ({"registry": {"ttl": True}}, "registry.ttl"),
        ({"rate_limits": {"api": 5}}, "rate_limits.api"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_values_name_the_dotted_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(data)
    assert info.value.parameter == key
    assert key in str(info.value)


def test_environment_overrides_and_nests() -> None:
    cfg = config.load_env(
        {
            "SENTIA_REDIS_URL": "redis://127.0.0.1:6399/0",
            "SENTIA_CACHE__MAX_ITEMS": "5000",
            "SENTIA_CACHE__TTL": "90s",
            "SENTIA_SERVICES__AUTH__TIMEOUT": "250ms",
            "SENTIA_RATE_LIMITS__PARTNER": "10/second",
            "SENTIA_MONITOR__ALERTS__DISABLED": "cpu,memory",
            "SENTIA_REQUIRE_REDIS": "1",  # the test-suite switch is not a setting
            "PATH": "/bin",
        }
    )
    assert cfg.redis_url == "redis://127.0.0.1:6399/0"
    assert (cfg.cache.max_items, cfg.cache.ttl) == (5000, 90.0)
    assert cfg.services["auth"].timeout == 0.25
    assert cfg.rate_limits["partner"] == "10/second"
    assert cfg.rate_limits["api"] == "1000/15min"
    assert cfg.monitor.alerts.disabled == ("cpu", "memory")


def test_environment_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        config.load_env({"SENTIA_CACHE__MAX_ITEMS": "many"})
    assert info.value.parameter == "cache.max_items"


def test_config_file_named_in_environment(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[cache]\nmax_items = 7\nttl = "1min"\n')
    cfg = config.load_env({"SENTIA_CONFIG": str(f), "SENTIA_CACHE__TTL": "2min"})
    assert (cfg.cache.max_items, cfg.cache.ttl) == (7, 120.0)


def test_unreadable_and_invalid_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cache\nmax_items = ")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load_file(bad)


@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(["ms", "s", "min", "h", "d"]),
)
def test_durations_parse_with_units(n: float, unit: str) -> None:
    factor = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    text = f"{n:.6f}{unit}"
    assert config.parse_duration("k", text) == pytest.approx(float(f"{n:.6f}") * factor)


@given(st.text())
def test_duration_and_size_parsers_never_crash_on_garbage(text: str) -> None:
    for parse in (config.parse_duration, config.parse_size):
        try:
            parse("k", text)
        except ConfigError as exc:
            error = exc
        else:
            continue
        assert error.parameter == "k"


def test_sizes_use_binary_units() -> None:
    assert config.parse_size("k", "1KB") == 1024
    assert config.parse_size("k", "100MB") == 100 * 1024**2
    assert config.parse_size("k", 4096) == 4096


def test_reference_doc_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == config.reference_markdown(), (
        "docs/configuration.md is stale: regenerate with "
        "python -c 'from sentia_core.config import reference_markdown as r; print(r(), end=\"\")'"
        " > docs/configuration.md"
    )


def test_every_setting_is_documented() -> None:
    import dataclasses

    for cls in (
        config.SentiaConfig,
        config.BreakerConfig,
        config.ServiceConfig,
        config.CacheConfig,
        config.RegistryConfig,
        config.SqlConfig,
        config.MonitorConfig,
        config.AlertsConfig,
    ):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"
