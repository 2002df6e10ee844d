"""Which line of the application issued a statement.

The call site is the first frame, walking out from the recorder, whose module
is not sentia_core, an ORM or a database driver: with SQLAlchemy lazy loading
that is the line that touched ``order.customer``, not the dozen SQLAlchemy
frames underneath. Whether a code object is internal is decided once (from
its module's ``__name__``) and cached, so a walk is a loop of dict lookups.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import CodeType, FrameType

__all__ = ["DEFAULT_INTERNAL_MODULES", "CallSiteFinder"]

#: Modules whose frames are never a call site (a name matches itself and its submodules).
DEFAULT_INTERNAL_MODULES = (
    "sentia_core",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "sqlite3",
    "asyncpg",
    "aiosqlite",
    "pymysql",
    "MySQLdb",
    "django.db",
    "greenlet",
    "contextlib",
)

_UNKNOWN = "<unknown>"
_CACHE_LIMIT = 50_000


class CallSiteFinder:
    """Finds the first application frame on the current stack.

    Args:
        internal_modules: extra module names (and their submodules) whose
            frames are skipped, on top of :data:`DEFAULT_INTERNAL_MODULES`.
    """

    __slots__ = ("_codes", "_names", "_prefixes", "_roots")

    def __init__(self, internal_modules: Iterable[str] = ()) -> None:
        roots = tuple(dict.fromkeys((*DEFAULT_INTERNAL_MODULES, *internal_modules)))
        self._roots = frozenset(roots)
        self._prefixes = tuple(r + "." for r in roots)
        self._codes: dict[CodeType, bool] = {}
        self._names: dict[str, str] = {}

    def _internal(self, module: str) -> bool:
        return module in self._roots or module.startswith(self._prefixes)

    def find(self, depth: int = 2) -> tuple[str, int] | None:
        """``(filename, line)`` of the first application frame, or None.

        Args:
            depth: frames to skip first (the recorder's own).
        """
        frame: FrameType | None
        try:
            frame = sys._getframe(depth)
        except ValueError:
            return None
        codes = self._codes
        while frame is not None:
            code = frame.f_code
            internal = codes.get(code)
            if internal is None:
                module = frame.f_globals.get("__name__")
                internal = self._internal(module if isinstance(module, str) else "")
                if len(codes) < _CACHE_LIMIT:
                    codes[code] = internal
            if not internal:
                return code.co_filename, frame.f_lineno
            frame = frame.f_back
        return None

    def site(self, depth: int = 3) -> str:
        """The call site as ``"path:line"`` (``"<unknown>"`` when all frames are internal)."""
        found = self.find(depth)
        if found is None:
            return _UNKNOWN
        return self.display(*found)

    def display(self, filename: str, line: int) -> str:
        """``"path:line"``, the path relative to the working directory when under it."""
        name = self._names.get(filename)
        if name is None:
            name = _relative(filename)
            if len(self._names) < _CACHE_LIMIT:
                self._names[filename] = name
        return f"{name}:{line}"


def _relative(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith(os.pardir) else rel
