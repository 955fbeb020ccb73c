"""``io.kestra.plugin.jdbc.sqlite``: Query and Queries on the standard library's sqlite3.

``url`` is ``jdbc:sqlite:<path>`` (default ``jdbc:sqlite:``, an in-memory database); a relative
path is a file of the task's working directory. ``sqliteFile`` brings a database file of internal
storage into the working directory first; ``outputDbFile: true`` stores the database file after the
queries and gives its URI as ``databaseUri``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Optional

from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext, register
from orchestrator.plugins.core._common import Text
from orchestrator.plugins.core._render import render_bool, render_text

from . import _files
from ._base import Dialect, JdbcQueries, JdbcQueriesProps, JdbcQuery, JdbcQueryProps, common_value

_MEMORY = ("", ":memory:")


class SqliteDialect(Dialect):
    scheme = "jdbc:sqlite"
    paramstyle = "named"

    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def prepare(self, ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {}
        try:
            return self._prepare(ctx, props, state)
        except BaseException:
            _files.cleanup(state)
            raise

    def _prepare(self, ctx: RunContext, props: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        source = render_text(ctx, props.get("sqliteFile"))
        output = render_bool(ctx, props.get("outputDbFile"), False)
        url = (render_text(ctx, props.get("url")) or "jdbc:sqlite:").strip()
        path = url[len(self.scheme) + 1:] if url.startswith(self.scheme + ":") else None
        memory = path is None or path.lower() in _MEMORY or path.lower().startswith("file::memory:")
        target: Path | None = None
        if source or output:
            # as Kestra: the database becomes a file of the working directory, named after the URL's
            directory = _files.working_dir(ctx, state)
            target = directory / ("database.sqlite" if memory else Path(path or "").name)
        elif not memory and not Path(path or "").is_absolute() and not (path or "").startswith("file:"):
            target = _files.inside(_files.working_dir(ctx, state), path or "", "url")
        if source and target is not None:
            _files.fetch_into(ctx, source, target, "sqliteFile")
        if target is not None:
            state["database"] = str(target)
        state["output"] = output
        return state

    def connect(self, ctx: RunContext, url: str, username: str | None, password: str | None,
                props: dict[str, Any]) -> Any:
        database = props.get("database") or url[len(self.scheme) + 1:] or ":memory:"
        if database.startswith("file:"):
            return sqlite3.connect(database, uri=True, timeout=10)
        return sqlite3.connect(database, timeout=10)

    def convert(self, value: Any, column_type: Any) -> Any:
        return common_value(value)

    def finish(self, ctx: RunContext, props: dict[str, Any], state: dict[str, Any],
               outputs: dict[str, Any]) -> None:
        if state.get("output") and state.get("database"):
            path = Path(state["database"])
            if path.exists():
                outputs["databaseUri"] = platform_of(ctx).put_file(path.read_bytes(), path.name)

    def cancel(self, connection: Any, state: dict[str, Any]) -> None:
        connection.interrupt()


_DIALECT = SqliteDialect()


class SqliteQueryProps(JdbcQueryProps):
    url: Text = "jdbc:sqlite:"
    sqliteFile: Optional[Text] = None
    outputDbFile: bool = False


class SqliteQueriesProps(JdbcQueriesProps):
    url: Text = "jdbc:sqlite:"
    sqliteFile: Optional[Text] = None
    outputDbFile: bool = False


@register
class Query(JdbcQuery):
    """Run one SQL statement on a SQLite database."""

    type = "io.kestra.plugin.jdbc.sqlite.Query"
    dialect = _DIALECT
    Props = SqliteQueryProps


@register
class Queries(JdbcQueries):
    """Run several SQL statements on a SQLite database, in one transaction by default."""

    type = "io.kestra.plugin.jdbc.sqlite.Queries"
    dialect = _DIALECT
    Props = SqliteQueriesProps
