"""Metric and label names: Prometheus rules, checked once, with clear errors.

Label values come from data (a request path, a tenant id), so they are made
safe once, when a series is created, instead of being trusted at every scrape:
a lone surrogate (``"/caf\\udce9"``, what ``os.fsdecode`` makes of a
non-UTF-8 byte) or a control character becomes U+FFFD, and a value longer
than :data:`MAX_LABEL_VALUE_LENGTH` characters is cut (ending in ``…``). Every
exposition can therefore be encoded as UTF-8, and one hostile value costs at
most a bounded number of bytes per scrape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sentia_core.errors import MetricError

__all__ = [
    "LABEL_NAME",
    "MAX_HELP_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "METRIC_NAME",
    "check_label_names",
    "check_metric_name",
    "escape_help",
    "escape_label_value",
    "label_values",
    "safe_text",
]

#: Prometheus metric names: ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
#: Prometheus label names: ``[a-zA-Z_][a-zA-Z0-9_]*``; ``__`` prefixes are reserved.
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: Longest label value kept (characters); longer values are cut and end in "…".
MAX_LABEL_VALUE_LENGTH = 256
#: Longest HELP text kept (characters).
MAX_HELP_LENGTH = 1024
# lone surrogates and control characters other than newline and tab (which the
# text format escapes or allows)
_UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")


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
        text = value
    elif isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    elif hasattr(value, "value") and isinstance(value.value, str):  # enums
        text = value.value
    else:
        text = str(value)
    if len(text) <= MAX_LABEL_VALUE_LENGTH and text.isascii() and text.isprintable():
        return text  # the common case: no copy
    return safe_text(text, MAX_LABEL_VALUE_LENGTH)


def safe_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in "…") with lone surrogates and
    control characters (but newline and tab) replaced by U+FFFD: always encodable."""
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return _UNSAFE.sub("\ufffd", text)


def escape_label_value(value: str) -> str:
    """Escape a label value for the text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Escape a HELP text for the text format: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")
