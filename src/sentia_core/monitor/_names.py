"""Metric and label names: Prometheus rules, checked once, with clear errors."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sentia_core.errors import MetricError

__all__ = [
    "LABEL_NAME",
    "METRIC_NAME",
    "check_label_names",
    "check_metric_name",
    "escape_help",
    "escape_label_value",
    "label_values",
]

#: Prometheus metric names: ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
#: Prometheus label names: ``[a-zA-Z_][a-zA-Z0-9_]*``; ``__`` prefixes are reserved.
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def check_metric_name(name: object) -> str:
    """``name`` if it is a valid Prometheus metric name.

    Raises:
        MetricError: the name is not a string or breaks the Prometheus rules.
    """
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        raise MetricError(
            f"invalid metric name {name!r}: Prometheus names match [a-zA-Z_:][a-zA-Z0-9_:]*"
        )
    return name


def check_label_names(metric: str, names: tuple[str, ...], reserved: tuple[str, ...]) -> None:
    """Raise :class:`MetricError` unless every label name is valid for ``metric``."""
    for label in names:
        if not isinstance(label, str) or not LABEL_NAME.match(label):
            raise MetricError(
                f"invalid label name {label!r} on {metric!r}: "
                "Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*"
            )
        if label.startswith("__"):
            raise MetricError(f"label name {label!r} on {metric!r}: '__' prefixes are reserved")
        if label in reserved:
            raise MetricError(f"label name {label!r} is reserved on {metric!r}")


def label_values(
    metric: str, names: tuple[str, ...], labels: Mapping[str, object]
) -> tuple[str, ...]:
    """The values of ``labels`` in the order of ``names``, as strings.

    Raises:
        MetricError: ``labels`` does not have exactly the label names ``names``.
    """
    if len(labels) != len(names):
        raise MetricError(f"{metric!r} has labels {sorted(names)}; got {sorted(labels)}")
    try:
        return tuple(_text(labels[n]) for n in names)
    except KeyError:
        raise MetricError(f"{metric!r} has labels {sorted(names)}; got {sorted(labels)}") from None


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return str(value)


def escape_label_value(value: str) -> str:
    """Escape a label value for the text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Escape a HELP text for the text format: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")
