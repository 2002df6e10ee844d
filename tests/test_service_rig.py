"""The service benchmark's arithmetic: buckets, recovery times, the rendered page.

The rig itself runs end to end (``--quick``) in tests/test_benchmarks.py; these
check the figures it derives, on series made by hand.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


svc = load("sentia_service_benchmark", ROOT / "benchmarks" / "service.py")


def series(points: list[tuple[float, float, int, str]]) -> dict[str, list[object]]:
    return {
        "end": [p[0] for p in points],
        "duration": [p[1] for p in points],
        "status": [p[2] for p in points],
        "route": [p[3] for p in points],
    }


def test_buckets_split_by_time_and_route() -> None:
    s = series(
        [
            (100.1, 0.010, 200, "auth"),
            (100.2, 0.030, 503, "auth"),
            (100.3, 0.001, 200, "products"),
            (100.7, 0.020, 200, "auth"),
        ]
    )
    points = svc.buckets(s, 100.0, 101.0, "auth")
    assert [p["count"] for p in points] == [2, 1]
    assert [p["errors"] for p in points] == [1, 0]
    assert points[1]["p99_ms"] == 20.0
    everything = svc.buckets(s, 100.0, 101.0, "")
    assert [p["count"] for p in everything] == [3, 1]


def point(t: float, count: int, errors: int, p99: float | None) -> dict[str, object]:
    return {"t": t, "count": count, "errors": errors, "p50_ms": p99, "p99_ms": p99}


def test_recovery_is_the_first_point_after_which_all_is_healthy() -> None:
    points = [
        point(0.0, 10, 0, 10.0),
        point(0.5, 10, 10, 5.0),  # the fault
        point(1.0, 10, 5, 5.0),  # still failing after it ended at 1.0
        point(1.5, 10, 0, 100.0),  # answers, but slow: not recovered
        point(2.0, 10, 0, 12.0),
        point(2.5, 0, 0, None),  # no request in a point says nothing
        point(3.0, 10, 0, 11.0),
    ]
    assert svc.recovery_time(points, fault_end=1.0, baseline_p99=10.0) == 1.0


def test_no_recovery_within_the_window_is_none() -> None:
    points = [point(0.0, 10, 0, 10.0), point(0.5, 10, 3, 10.0), point(1.0, 10, 2, 10.0)]
    assert svc.recovery_time(points, fault_end=0.5, baseline_p99=10.0) is None


def test_a_fault_that_never_shows_recovers_at_once() -> None:
    points = [point(0.0, 10, 0, 10.0), point(0.5, 10, 0, 11.0)]
    assert svc.recovery_time(points, fault_end=0.5, baseline_p99=10.0) == 0.0


def test_quick_run_is_bounded() -> None:
    # a count, not a timing: the planned seconds of load of a --quick run
    planned = sum(sc.duration for sc in svc.scenarios(quick=True)) * len(svc.STACKS)
    assert planned <= 40
    full = sum(sc.duration for sc in svc.scenarios(quick=False)) * len(svc.STACKS)
    assert full <= 9 * 60


def fake_result(stack: str, scenario: str, **extra: object) -> dict[str, object]:
    return {
        "stack": stack,
        "scenario": scenario,
        "wrk": {},
        "rps": 1234.0,
        "p50_ms": 1.5,
        "p95_ms": 4.0,
        "p99_ms": 9.0,
        "error_rate": 0.001,
        "hit_rate": None if stack == "none" else 0.9,
        "recovery_s": 2.5 if scenario != "steady" else None,
        "points": [point(0.0, 5, 0, 9.0)],
        "extra": extra,
    }


def test_page_puts_each_claim_next_to_each_stack() -> None:
    results = []
    for stack in svc.STACKS:
        results.append(
            fake_result(stack, "steady", invalidation_ms=[3.0, 5.0, 4.0], products_p50_ms=0.8)
        )
        results.append(
            fake_result(stack, "partner_outage", fault_window_s=[5, 15], fault_success_rate=0.9991)
        )
    data = {"quick": False, "machine": "test machine, 2 cores", "date": "2026-01-01"}
    page = svc.render_markdown({**data, "results": results, "sections": []}, "img")
    assert "test machine, 2 cores" in page
    for claim, _ in svc.CLAIMS:
        assert claim in page
    assert "| Tag invalidation < 100 ms |" in page
    assert "4.0 ms" in page  # the median of the three invalidations
    assert "99.91 %" in page
    assert "![partner_outage](img/partner_outage.png)" in page
    json.dumps(results)  # the shape the script writes


def test_service_page_is_rendered_from_the_committed_results() -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "service.json").read_text())
    assert not data["quick"], "the committed results come from a full run"
    page = (ROOT / "docs" / "service-benchmark.md").read_text()
    assert page == svc.render_markdown(data, "img/service"), (
        "docs/service-benchmark.md is stale: python benchmarks/service.py --render-only "
        "--json benchmarks/results/service.json --markdown docs/service-benchmark.md "
        "--plots docs/img/service"
    )
    for name in {r["scenario"] for r in data["results"]}:
        if name not in ("capacity", "steady", "nplus1"):
            assert (ROOT / "docs" / "img" / "service" / f"{name}.png").exists()
