"""The ``sentia`` command, driven through a real subprocess: exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
for _name in list(ENV):
    if _name.startswith("SENTIA_") and not _name.startswith("SENTIA_REQUIRE_"):
        del ENV[_name]


def sentia(
    *args: str, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentia_core", *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT, env=env or ENV,
    )  # fmt: skip


def test_version_and_help() -> None:
    from sentia_core import __version__

    out = sentia("--version")
    assert out.returncode == 0
    assert __version__ in out.stdout
    help_ = sentia("--help")
    assert help_.returncode == 0
    for command in ("demo", "sql", "health", "serve", "bench"):
        assert command in help_.stdout
    assert sentia().returncode == 2  # no command: usage and a non-zero exit


def _check_demo_report(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "closed -> open" in text  # the breaker tripped...
    assert "-> closed" in text  # ...and recovered
    assert "hit rate" in text
    assert "N+1:" in text
    assert "verified" in text
    assert "applied" in text
    assert "alert partner_error_rate: firing" in text
    assert text.rstrip().endswith("done.")


def test_demo_embedded() -> None:
    _check_demo_report(sentia("demo", "--duration", "2"))


@pytest.mark.redis
def test_demo_against_real_redis(redis_url: str) -> None:
    out = sentia("demo", "--duration", "2", "--redis", redis_url)
    _check_demo_report(out)
    assert f"Redis at {redis_url}" in out.stdout


def test_bad_input_is_one_line_and_non_zero(tmp_path: Path) -> None:
    out = sentia("demo", "--duration", "-1")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "--duration" in out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[cache]\nmax_items = -3\n")
    out = sentia("health", "--config", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip() == "sentia: error: invalid cache.max_items=-3: must be at least 0"
    out = sentia("health", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert "cannot read" in out.stderr
    assert sentia("frobnicate").returncode == 2


def test_health_prints_json(tmp_path: Path) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text("[monitor]\nsystem_metrics = false\n")
    out = sentia("health", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["status"] == "healthy"
    assert {"breakers", "cache"} <= set(report["components"])


def test_health_is_unhealthy_when_redis_is_unreachable(tmp_path: Path) -> None:
    from tests._servers import free_port

    cfg = tmp_path / "app.toml"
    cfg.write_text(
        f'redis_url = "redis://127.0.0.1:{free_port()}/0"\n[monitor]\nsystem_metrics = false\n'
    )
    out = sentia("health", "--config", str(cfg))
    assert out.returncode == 1
    assert json.loads(out.stdout)["components"]["redis"]["status"] == "unhealthy"


def test_serve_exposes_metrics_and_health(tmp_path: Path) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text("[monitor]\nsystem_metrics = false\nhttp_port = 0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentia_core", "serve", "--config", str(cfg), "--for", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("sentia: serving http://127.0.0.1:"), line
        base = line.split()[-1].rsplit("/", 1)[0]
        with urllib.request.urlopen(base + "/health", timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["status"] == "healthy"
        with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)  # also closes the pipes
    assert proc.returncode == 0


def test_serve_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text('[monitor]\nsystem_metrics = false\nhttp_port = 0\nhttp_host = "0.0.0.0"\n')
    out = sentia("serve", "--config", str(cfg), "--for", "5")
    assert out.returncode != 0
    assert "allow_unauthenticated" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bench_runs_one_benchmark_quick(tmp_path: Path, redis_url: str) -> None:
    out = sentia("bench", "--quick", "--json", str(tmp_path), "breaker", timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "breaker.json").exists()


def test_demo_dashboard_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentia_core", "demo", "--duration", "0.6", "--dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # the report first, then the URL
            lines.append(line)
            if line.startswith("dashboard: "):
                break
        url = lines[-1].split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), lines[-1]
        assert any(line.startswith("[4] the monitor") for line in lines)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert b"/static/dashboard.js" in resp.read()
        with urllib.request.urlopen(url + "dashboard.json?window=1h", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert [p["id"] for p in doc["panels"]][:2] == ["http", "cache"]
        assert doc["times"]  # the live service has ticked
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
