"""Renderers: the Prometheus text format, JSON and CSV.

Histograms are written as Prometheus *summaries* by default: quantiles
(computed in-process by the sketch, over the ``summary_window``) plus
``_sum`` and ``_count`` over all time — the figures prometheus_client cannot
produce (client_python#92). A summary's quantiles cannot be aggregated across
instances; when Prometheus must aggregate, render with
``histograms="buckets"``: cumulative ``_bucket{le=...}`` counts read from the
sketch (each value is placed to within the sketch's relative accuracy of its
bucket boundary), ``+Inf``, ``_sum`` and ``_count``, as a classic histogram.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._metrics import Counter, Gauge, Histogram, MetricFamily, MetricKind
from ._names import escape_help, escape_label_value
from ._retention import HistoryPoint

_log = logging.getLogger("sentia_core.monitor")

__all__ = [
    "DEFAULT_BUCKETS",
    "csv_text",
    "format_value",
    "history_csv",
    "metrics_dict",
    "prometheus_text",
]

#: prometheus_client's default histogram buckets (seconds).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def format_value(v: float | None) -> str:
    """A sample value as the text format writes it (``NaN``, ``+Inf``, ``-Inf``)."""
    if v is None or math.isnan(v):
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return repr(float(v))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def prometheus_text(
    families: Iterable[MetricFamily[Any]],
    *,
    quantiles: Sequence[float],
    summary_window: float | None,
    histograms: str = "summary",
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> str:
    """Every family in the Prometheus text exposition format 0.0.4.

    A series that cannot be rendered (a value of an exotic type, a sketch that
    raises) is left out and logged; it never takes the rest of the page with it.
    """
    out: list[str] = []
    layout = _Layout(
        as_buckets=histograms == "buckets",
        quantiles=tuple(quantiles),
        qtext=tuple(format_value(float(q)) for q in quantiles),
        summary_window=summary_window,
        bounds=tuple(sorted(float(b) for b in buckets if b != math.inf)),
    )
    for fam in families:
        kind = fam.kind
        if kind is MetricKind.COUNTER:
            sample, type_name = fam.exposed_names()[0], "counter"
        elif kind is MetricKind.GAUGE:
            sample, type_name = fam.name, "gauge"
        else:
            sample = fam.name
            type_name = "histogram" if layout.as_buckets else "summary"
        out.append(f"# HELP {sample} {escape_help(fam.help)}")
        out.append(f"# TYPE {sample} {type_name}")
        for s in fam.all_series():
            try:
                out.extend(_series_lines(fam, s, sample, layout))
            except Exception:
                _log.warning(
                    "metric %s: a series could not be rendered; left out", fam.name, exc_info=True
                )
    return "\n".join(out) + "\n" if out else ""


@dataclass(frozen=True, slots=True)
class _Layout:
    as_buckets: bool
    quantiles: tuple[float, ...]
    qtext: tuple[str, ...]
    summary_window: float | None
    bounds: tuple[float, ...]


def _series_lines(fam: MetricFamily[Any], s: Any, sample: str, layout: _Layout) -> list[str]:
    names = fam.label_names
    lv = s.label_values
    if isinstance(s, (Counter, Gauge)):
        return [f"{sample}{_labels(names, lv)} {format_value(s.value)}"]
    assert isinstance(s, Histogram)
    lines: list[str] = []
    count, total_sum = s.totals()
    if layout.as_buckets:
        ranks = s.sketch().ranks(layout.bounds)
        for bound, rank in zip(layout.bounds, ranks, strict=True):
            le = _labels(names, lv, 'le="' + format_value(bound) + '"')
            lines.append(f"{sample}_bucket{le} {rank}")
        inf = _labels(names, lv, 'le="+Inf"')
        lines.append(f"{sample}_bucket{inf} {count}")
    else:
        values = s.sketch(layout.summary_window).quantiles(layout.quantiles)
        for qt, v in zip(layout.qtext, values, strict=True):
            ql = _labels(names, lv, 'quantile="' + qt + '"')
            lines.append(f"{sample}{ql} {format_value(v)}")
    plain = _labels(names, lv)
    lines.append(f"{sample}_sum{plain} {format_value(total_sum)}")
    lines.append(f"{sample}_count{plain} {count}")
    return lines


def _json_number(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return v


def metrics_dict(
    families: Iterable[MetricFamily[Any]],
    *,
    quantiles: Sequence[float],
    windows: Sequence[float],
) -> list[dict[str, Any]]:
    """Current values of every family as JSON-ready dicts (NaN/inf become null)."""
    out: list[dict[str, Any]] = []
    for fam in families:
        rows: list[dict[str, Any]] = []
        for s in fam.all_series():
            row: dict[str, Any] = {"labels": s.labels}
            if isinstance(s, Histogram):
                snap = s.snapshot(None, tuple(quantiles)).to_dict()
                snap.pop("window")
                snap["sum"] = _json_number(snap["sum"])
                row.update(snap)
                row["windows"] = {}
                for w in windows:
                    ws = s.snapshot(w, tuple(quantiles)).to_dict()
                    ws.pop("window")
                    ws["sum"] = _json_number(ws["sum"])
                    row["windows"][format_value(float(w))] = ws
            else:
                assert isinstance(s, (Counter, Gauge))
                row["value"] = _json_number(s.value)
            rows.append(row)
        out.append(
            {
                "name": fam.name,
                "kind": fam.kind.value,
                "help": fam.help,
                "label_names": list(fam.label_names),
                "series": rows,
            }
        )
    return out


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    # spreadsheet formula injection: a text cell must not start like a formula
    return "'" + text if text.startswith(_FORMULA_START) else text


def _labels_cell(labels: dict[str, str]) -> str:
    return _cell(json.dumps(labels, sort_keys=True, ensure_ascii=False)) if labels else ""


def csv_text(
    families: Iterable[MetricFamily[Any]],
    *,
    quantiles: Sequence[float],
    windows: Sequence[float],
) -> str:
    """Current values as CSV: ``name,kind,labels,window,stat,value`` (labels as JSON)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "kind", "labels", "window", "stat", "value"])
    for fam in families:
        for s in fam.all_series():
            labels = _labels_cell(s.labels)
            if isinstance(s, Histogram):
                for window in (None, *windows):
                    snap = s.snapshot(window, tuple(quantiles))
                    wtext = "" if window is None else format_value(float(window))
                    stats: list[tuple[str, float | None]] = [
                        ("count", snap.count),
                        ("sum", snap.sum),
                        ("min", snap.min),
                        ("max", snap.max),
                        ("mean", snap.mean),
                    ]
                    stats += [(f"q{format_value(float(q))}", v) for q, v in snap.quantiles.items()]
                    for stat, v in stats:
                        w.writerow([fam.name, fam.kind.value, labels, wtext, stat, _csv_num(v)])
            else:
                assert isinstance(s, (Counter, Gauge))
                w.writerow([fam.name, fam.kind.value, labels, "", "value", _csv_num(s.value)])
    return buf.getvalue()


def _csv_num(v: float | None) -> str:
    if v is None or math.isnan(v):
        return ""
    return format_value(v)


def history_csv(rows: Iterable[tuple[str, dict[str, str], str, Sequence[HistoryPoint]]]) -> str:
    """History as CSV: ``time,name,labels,stat,resolution,value,min,max,samples``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time", "name", "labels", "stat", "resolution", "value", "min", "max", "samples"])
    for name, labels, stat, points in rows:
        lc = _labels_cell(labels)
        for p in points:
            w.writerow(
                [
                    format_value(p.time),
                    name,
                    lc,
                    stat,
                    format_value(p.resolution),
                    _csv_num(p.value),
                    _csv_num(p.min),
                    _csv_num(p.max),
                    p.samples,
                ]
            )
    return buf.getvalue()
