"""Rewrite the Hedge / AdaptiveBulkhead / Chaos tables of docs/policies.md from the JSON.

    python benchmarks/_policies_doc.py [benchmarks/results/policies.json]

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
nothing else in the page is touched.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TAIL = [
    "none",
    "retry-only (timeout p95, 3 attempts)",
    "Hedge p95 (2 attempts)",
    "Hedge p90 (2 attempts)",
]
OVERLOAD = [
    "none",
    "fixed Bulkhead(100)",
    "AdaptiveBulkhead aimd",
    "AdaptiveBulkhead vegas",
    "AdaptiveBulkhead gradient2",
]


def tables(data: dict[str, Any]) -> dict[str, str]:
    sec = {s["title"]: s["medians"] for s in data["sections"]}
    notes = data["notes"]
    rows = [
        "| Policy | p50 | p99 | p99.9 | extra load | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in TAIL:
        cells = [f"{sec[f'heavy-tailed latency: {q}'][c]:.1f} ms" for q in ("p50", "p99", "p99.9")]
        load, failed = notes[f"tail {c}: extra load %"], notes[f"tail {c}: failed %"]
        rows.append(f"| {c} | {' | '.join(cells)} | {load:.1f} % | {failed:.3f} % |")
    tail = "\n".join(rows)
    rows = [
        "| Client limit | goodput | goodput after halving | p99 of successes | timed out | shed "
        "| limit before → after | within 25 % | variation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in OVERLOAD:
        k = f"overload {c}: "
        lim = settle = var = "—"
        if k + "limit before halving" in notes:
            before, after = notes[k + "limit before halving"], notes[k + "limit after halving"]
            lim = f"{before:.0f} → {after:.0f}"
            st = notes[k + "limit within 25 % of its new level s after halving"]
            settle = "never" if st is None else f"{st:.1f} s"
            var = f"{notes[k + 'limit variation after halving (stdev/mean)']:.2f}"
        rows.append(
            f"| {c} | {notes[k + 'goodput calls/s']:.0f}/s "
            f"| {notes[k + 'goodput after halving calls/s']:.0f}/s "
            f"| {notes[k + 'p99 of successes ms']:.1f} ms | {notes[k + 'timed out %']:.1f} % "
            f"| {notes[k + 'rejected %']:.1f} % | {lim} | {settle} | {var} |"
        )
    overload = "\n".join(rows)
    sync = sec["Hedge / AdaptiveBulkhead / Chaos per call (sync)"]
    asy = sec["Hedge / AdaptiveBulkhead / Chaos per call (async)"]

    def over(m: dict[str, float], case: str) -> str:
        v = m[case] - m["bare call"]
        return f"{v / 1000:.1f} µs" if v >= 10_000 else f"{v:,.0f} ns"

    cost = "\n".join(
        [
            "| Stage in a `Policy` | sync | async |",
            "| --- | --- | --- |",
            f"| `Bulkhead` (for reference) | {over(sync, 'Bulkhead')} | {over(asy, 'Bulkhead')} |",
            f"| `AdaptiveBulkhead` | {over(sync, 'AdaptiveBulkhead')} "
            f"| {over(asy, 'AdaptiveBulkhead')} |",
            f"| `Chaos`, disabled | {over(sync, 'Chaos (disabled)')} "
            f"| {over(asy, 'Chaos (disabled)')} |",
            f"| `Chaos`, enabled, nothing injected | {over(sync, 'Chaos (enabled, rate 0)')} | — |",
            f"| `Hedge`, no hedge needed "
            f"| {over(sync, 'Hedge (thread hop, no hedge)')} (thread hop) "
            f"| {over(asy, 'Hedge (task, no hedge)')} (a task) |",
        ]
    )
    return {"tail": tail, "overload": overload, "cost": cost}


def render(page: str, data: dict[str, Any]) -> str:
    for name, table in tables(data).items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", re.S)
        page, n = pattern.subn(lambda m, t=table: m.group(1) + t + m.group(2), page)
        if n != 1:
            raise SystemExit(f"docs/policies.md: no <!-- bench:{name} --> block")
    return page


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks/results/policies.json"
    doc = ROOT / "docs" / "policies.md"
    doc.write_text(render(doc.read_text(), json.loads(source.read_text())))


if __name__ == "__main__":
    main()
