"""docs/policies.md's Hedge / AdaptiveBulkhead / Chaos tables come from the committed JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_policies_page_tables_are_rendered_from_the_committed_results() -> None:
    spec = importlib.util.spec_from_file_location(
        "policies_doc", ROOT / "benchmarks" / "_policies_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (ROOT / "docs" / "policies.md").read_text()
    data = json.loads((ROOT / "benchmarks" / "results" / "policies.json").read_text())
    assert module.render(page, data) == page, (
        "docs/policies.md is stale: python benchmarks/_policies_doc.py"
    )
