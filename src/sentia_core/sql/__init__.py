"""SQL query optimizer: fingerprints with redaction, statistics, N+1 detection, index advice.

See ``docs/sql.md`` (capture, statistics, N+1) and ``docs/sql_indexes.md``
(analysis and index advice). Everything public is re-exported here.
"""

from ._advisor import IndexSuggestion, ShapeWorkload, suggest_indexes
from ._analysis import (
    Analysis,
    ColumnRef,
    JoinKey,
    OrderColumn,
    ParameterSlot,
    Predicate,
    QueryBlock,
    Unindexable,
)
from ._analyze import analyze
from ._apply import AppliedIndex, MaintenanceReport, UnusedIndex, apply, maintenance
from ._catalog import ExistingIndex
from ._dialect import read_column_stats, read_existing_indexes, read_schema
from ._fingerprint import fingerprint, fingerprint_ex, redact, shape_id, split_statements
from ._nplusone import NPlusOneDetected, NPlusOneReport, UnitOfWork
from ._optimizer import QueryOptimizer, StatementTypeError
from ._stats import (
    CallSite,
    OptimizerStats,
    ShapeStats,
    SlowQuery,
    SlowQueryDetected,
)
from ._verify import PlanCheck, VerifiedSuggestion, explain, verify

__all__ = [
    "Analysis",
    "AppliedIndex",
    "CallSite",
    "ColumnRef",
    "ExistingIndex",
    "IndexSuggestion",
    "JoinKey",
    "MaintenanceReport",
    "NPlusOneDetected",
    "NPlusOneReport",
    "OptimizerStats",
    "OrderColumn",
    "ParameterSlot",
    "PlanCheck",
    "Predicate",
    "QueryBlock",
    "QueryOptimizer",
    "ShapeStats",
    "ShapeWorkload",
    "SlowQuery",
    "SlowQueryDetected",
    "StatementTypeError",
    "Unindexable",
    "UnitOfWork",
    "UnusedIndex",
    "VerifiedSuggestion",
    "analyze",
    "apply",
    "explain",
    "fingerprint",
    "fingerprint_ex",
    "maintenance",
    "read_column_stats",
    "read_existing_indexes",
    "read_schema",
    "redact",
    "shape_id",
    "split_statements",
    "suggest_indexes",
    "verify",
]
