"""SQLite's REGEXP (used by REGEX search filters) under a timeout.

Django registers REGEXP on SQLite with Python's ``re``, which a catastrophic pattern such as
``(a|aa)+$`` keeps busy for minutes inside a request. This replaces it, on each new connection, with
the ``regex`` package under a per-row timeout; a timeout fails the query, which the API answers 400.
PostgreSQL evaluates ``~`` itself (its engine is not the backtracking kind this guards against).
"""
from __future__ import annotations

from typing import Any

from orchestrator.engine.expressions import ExpressionError
from orchestrator.engine.expressions import _regex

#: Seconds one REGEXP call may take on one row.
TIMEOUT = 0.5


def _regexp(pattern: str | None, value: Any) -> bool | None:
    if pattern is None or value is None:
        return None
    try:
        return _regex.search(pattern, str(value), TIMEOUT)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


def install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("REGEXP", 2, _regexp, deterministic=True)
