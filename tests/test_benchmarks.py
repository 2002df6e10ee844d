"""Every benchmark script runs (briefly, ``--quick``) and writes its JSON.

Timings are printed by the scripts, never asserted here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._servers import unavailable

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(
    p
    for p in (ROOT / "benchmarks").glob("*.py")
    if not p.name.startswith("_") and p.name != "run.py"
)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_runs_quick(script: Path, tmp_path: Path, redis_url: str) -> None:
    if script.stem == "service" and shutil.which("wrk") is None:
        unavailable(
            "wrk (Debian package wrk), the service benchmark's load", "SENTIA_REQUIRE_LOADGEN"
        )
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out), "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["sections"], "a benchmark must measure something"
    for section in data["sections"]:
        assert all(v > 0 for v in section["medians"].values())
