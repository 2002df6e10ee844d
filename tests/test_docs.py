"""The documentation site builds strictly, and its generated parts match the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_architecture_diagram_is_drawn_from_the_transition_table() -> None:
    from sentia_core.breaker import state_diagram

    text = (ROOT / "docs" / "architecture.md").read_text()
    match = re.search(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert match is not None
    assert match.group(1) == state_diagram().rstrip("\n") + "\n"


def test_changelog_page_is_the_changelog() -> None:
    assert (ROOT / "docs" / "changelog.md").read_text() == (ROOT / "CHANGELOG.md").read_text(), (
        "docs/changelog.md is stale: cp CHANGELOG.md docs/changelog.md"
    )


def test_every_doc_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in nav, f"{page.name} is not in mkdocs.yml's nav"


def test_site_builds_strictly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").exists()
    shutil.rmtree(tmp_path / "site")


def test_benchmarks_page_is_rendered_from_the_committed_results() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render_markdown(ROOT / "benchmarks" / "results")
    assert (ROOT / "docs" / "benchmarks.md").read_text() == rendered, (
        "docs/benchmarks.md is stale: python benchmarks/run.py --json benchmarks/results "
        "--markdown docs/benchmarks.md --render-only"
    )
