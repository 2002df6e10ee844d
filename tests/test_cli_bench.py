"""``sentia bench`` as a newcomer runs it: names checked, file names accepted,
a missing ``bench`` extra named in one line, and the benchmarks shipped in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SENTIA_") or "REQUIRE" in k}


def sentia(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "sentia_core", *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env or ENV,
    )  # fmt: skip


def test_an_unknown_benchmark_fails_listing_the_valid_ones() -> None:
    out = sentia("bench", "--quick", "nosuch")
    assert out.returncode == 2
    assert out.stdout == ""
    assert "no such benchmark: nosuch" in out.stderr
    for name in ("breaker", "cache", "facade", "sql"):
        assert name in out.stderr
    assert "Traceback" not in out.stderr


def test_a_file_name_is_accepted(tmp_path: Path) -> None:
    out = sentia("bench", "--quick", "--json", str(tmp_path), "facade.py")
    assert out.returncode == 0, out.stderr
    assert "facade wiring" in out.stdout
    assert (tmp_path / "facade.json").exists()


def test_without_the_bench_extra_one_line_names_it(tmp_path: Path) -> None:
    # Hide one peer library from the child, as an install without the extra would.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pybreaker':\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), ENV.get("PYTHONPATH", "")])}
    out = sentia("bench", "--quick", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "pybreaker" in lines[0] and "sentia_core[bench]" in lines[0]
    assert "Traceback" not in out.stderr
    # A benchmark that needs no peer still runs.
    ok = sentia("bench", "--quick", "--json", str(tmp_path), "facade", env=env)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.timeout(600)
def test_bench_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (dev extra)")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("sentia_core-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    assert (site / "sentia_core" / "_benchmarks" / "run.py").exists()
    env = {**ENV, "PYTHONPATH": str(site)}
    out = sentia(
        "bench", "--quick", "--json", str(tmp_path / "out"), "facade", env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "facade.json").exists()
    # The benchmarks measured the installed copy, not a source tree.
    assert "facade wiring" in out.stdout


# ---------------------------------------------------------------- sentia demo, for a newcomer


def _demo_command() -> list[str]:
    """The console script as the README's install makes it, else ``python -m``."""
    import shutil

    script = shutil.which("sentia")
    return [script] if script else [sys.executable, "-m", "sentia_core"]


def test_the_demo_report_reads_clearly() -> None:
    out = subprocess.run(
        [*_demo_command(), "demo", "--duration", "2"],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT, env=ENV,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    # No log line in the middle of the report (nor anywhere else).
    assert "WARNING" not in text and "WARNING" not in out.stderr
    assert "N+1 query" not in out.stderr
    # The N+1 is reported at the demo's service code, not at the console-script shim.
    (site_line,) = [line for line in text.splitlines() if "N+1: at " in line]
    assert "_demo_service.py:" in site_line
    assert "bin/sentia" not in site_line and "__main__" not in site_line
    # One count for the N+1, stated once.
    assert len([line for line in text.splitlines() if "times in one request" in line]) == 1
    # SQL is never cut mid-word: a shortened statement ends with " ...".
    for line in text.splitlines():
        if "SELECT" in line and not line.rstrip().endswith("?"):
            assert line.rstrip().endswith((" ...", ")", "verified", "rejected")), line
    # The partner line says who answered, in words.
    assert "answered by the partner" in text and "by the fallback" in text
    assert "turned away" in text


def test_shorten_cuts_between_words() -> None:
    from sentia_core._demo import shorten

    text = "SELECT id, status, total FROM orders WHERE customer_id = ? ORDER BY created_at DESC"
    short = shorten(text, 60)
    assert len(short) <= 60 and short.endswith(" ...")
    assert text.startswith(short[:-4])
    assert text[len(short) - 4] == " "  # the cut falls on a space
    assert shorten("SELECT 1", 60) == "SELECT 1"
    assert shorten("x" * 100, 10) == "xxxxxx ..."
