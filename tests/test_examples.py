"""Every program in examples/ runs to completion (exit 0) on this machine.

Examples that use Redis read ``SENTIA_REDIS_URL``; the test hands them the
suite's real redis-server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path, redis_url: str) -> None:
    env = {**os.environ, "SENTIA_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(example)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip(), "an example should show the reader what happened"
