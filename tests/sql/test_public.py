"""The public surface of sentia_core.sql and sentia_core.integrations."""

from __future__ import annotations

import subprocess
import sys

import sentia_core.integrations as integrations
import sentia_core.sql as sql


def test_sql_exports_are_sorted_and_importable() -> None:
    assert sql.__all__ == sorted(sql.__all__)
    for name in sql.__all__:
        assert getattr(sql, name) is not None, name
    for name in ("QueryOptimizer", "fingerprint", "shape_id", "redact", "UnitOfWork"):
        assert name in sql.__all__


def test_integrations_exports_are_sorted_and_load_lazily() -> None:
    assert integrations.__all__ == sorted(integrations.__all__)
    for name in integrations.__all__:
        assert callable(getattr(integrations, name)), name
    assert sorted(dir(integrations)) == integrations.__all__


def test_importing_integrations_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, sentia_core.integrations, sentia_core.sql; "
        "print('sqlalchemy' in sys.modules, 'psycopg' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


def test_an_unknown_integration_name_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError):
        integrations.instrument_cobol  # noqa: B018
