"""Developer sessions: ``nox -s tests lint typecheck bench examples docs``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (real servers where installed); the tests import the bench peers."""
    session.install("-e", ".[dev,bench]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the source, tests, benchmarks and examples."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "src/sentia_core")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, briefly (proves the scripts run); pass --full for real figures."""
    session.install("-e", ".[dev,bench]")
    args = session.posargs or ["--quick"]
    session.run("python", "benchmarks/run.py", *args)


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example program."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests/test_examples.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly."""
    session.install("-e", ".[dev]")
    session.run("mkdocs", "build", "--strict")
