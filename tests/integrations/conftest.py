"""Fixtures for the integration tests: a PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def pg_dsn(postgres_server: Any) -> Iterator[str]:
    """A fresh database on the shared PostgreSQL server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = "it_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_server.dsn.rsplit("/", 1)[0] + "/" + name
    yield dsn
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
