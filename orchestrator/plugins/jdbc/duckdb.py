"""``io.kestra.plugin.jdbc.duckdb``: Query and Queries on DuckDB's Python package.

``url`` is ``jdbc:duckdb:`` (default: a database file of the task's working directory) or
``jdbc:duckdb:/abs/path.db``. As in Kestra, ``inputFiles`` (name → content or ``kestra://`` URI)
are written to the working directory before the SQL runs, which DuckDB reads relative paths
from; ``outputFiles`` names files the SQL may write (``{{ outputFiles.name }}`` is the path), each
stored afterwards and given in the ``outputFiles`` output; ``databaseUri`` brings a database file
of internal storage in; ``outputDbFile: true`` stores the database file as ``databaseUri``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import sqlparse

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext, register
from orchestrator.plugins.core._common import Text
from orchestrator.plugins.core._render import render_bool, render_text, render_text_list

from . import _files
from ._base import Dialect, JdbcQueries, JdbcQueriesProps, JdbcQuery, JdbcQueryProps, common_value, log

DEFAULT_URL = "jdbc:duckdb:"
#: statements whose first keyword says they return rows (DuckDB's Python API gives others a "Count" result)
_ROWS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "TABLE", "PRAGMA", "DESCRIBE", "SHOW", "SUMMARIZE",
                   "EXPLAIN", "CALL", "PIVOT", "UNPIVOT"})


class DuckdbDialect(Dialect):
    scheme = "jdbc:duckdb"
    paramstyle = "dollar"

    def errors(self) -> tuple[type[BaseException], ...]:
        import duckdb

        return (duckdb.Error,)

    def prepare(self, ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {}
        try:
            return self._prepare(ctx, props, state)
        except BaseException:
            _files.cleanup(state)
            raise

    def _prepare(self, ctx: RunContext, props: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        url = (render_text(ctx, props.get("url")) or DEFAULT_URL).strip()
        path = url[len(DEFAULT_URL):] if url.startswith(DEFAULT_URL) else ""
        if path and path != ":memory:" and Path(path).is_absolute():
            database = Path(path)
            database.parent.mkdir(parents=True, exist_ok=True)
            directory = database.parent
        else:
            directory = _files.working_dir(ctx, state)
            database = directory / "database.db" if path != ":memory:" else None
        state["database"] = str(database) if database is not None else ":memory:"
        variables: dict[str, Any] = {"workingDir": str(directory)}
        if database is not None:
            variables["dbFilePath"] = str(database)
        inputs = self._input_files(ctx, props.get("inputFiles"))
        for name, value in inputs.items():
            target = _files.inside(directory, name, "inputFiles")
            if value.startswith(("kestra://", "nsfile://")):
                _files.fetch_into(ctx, value, target, "inputFiles")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(value, encoding="utf-8")
        db_uri = render_text(ctx, props.get("databaseUri"))
        if db_uri:
            database = directory / "input-database.db"
            _files.fetch_into(ctx, db_uri, database, "databaseUri")
            state["database"] = str(database)
            variables["dbFilePath"] = str(database)
        outputs = render_text_list(ctx, props.get("outputFiles"))
        files: dict[str, str] = {}
        for name in outputs:
            target = _files.inside(directory, name, "outputFiles")
            target.parent.mkdir(parents=True, exist_ok=True)
            files[name] = str(target)
        if files:
            variables["outputFiles"] = files
        state.update(directory=str(directory), variables=variables, output_files=files,
                     output_db=render_bool(ctx, props.get("outputDbFile"), False))
        return state

    @staticmethod
    def _input_files(ctx: RunContext, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        rendered = ctx.render(value)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("Invalid property 'inputFiles': expected a map of file names to contents "
                                  "or kestra:// URIs") from None
        if not isinstance(rendered, dict):
            raise TaskFailure("Invalid property 'inputFiles': expected a map of file names to contents "
                              "or kestra:// URIs")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in rendered.items()}

    def connect(self, ctx: RunContext, url: str, username: str | None, password: str | None,
                props: dict[str, Any]) -> Any:
        import duckdb

        connection = duckdb.connect(props.get("database") or ":memory:")
        directory = props.get("directory")
        if directory:
            # relative paths in the SQL (read_csv('data.csv')) are files of the working directory
            connection.execute("SET file_search_path = '" + directory.replace("'", "''") + "'")
        return _Transactional(connection)

    def has_result(self, cursor: Any, statement: str) -> bool:
        description = cursor.description
        if description is None:
            return False
        if len(description) == 1 and description[0][0] == "Count":
            # DuckDB's Python API answers DML and DDL with a one-row "Count" result, JDBC with an update count
            first = sqlparse.format(statement, strip_comments=True).lstrip(" \t\r\n(").split(None, 1)
            if not first or first[0].upper().rstrip(";") not in _ROWS:
                cursor.fetchall()
                return False
        return True

    def column_types(self, cursor: Any) -> list[Any]:
        return [str(column[1]) for column in cursor.description or []]

    def convert(self, value: Any, column_type: Any) -> Any:
        if column_type == "TIMESTAMP" and isinstance(value, datetime) and value.tzinfo is None:
            # Kestra places DuckDB's TIMESTAMP values in the worker's zone (UTC here)
            return value.replace(tzinfo=timezone.utc)
        if column_type == "JSON" and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return common_value(value)

    def finish(self, ctx: RunContext, props: dict[str, Any], state: dict[str, Any],
               outputs: dict[str, Any]) -> None:
        platform = platform_of(ctx)
        files = state.get("output_files") or {}
        if files:
            stored = {}
            for name, path in files.items():
                file = Path(path)
                if file.exists():
                    stored[name] = platform.put_file(file.read_bytes(), file.name)
                else:
                    log.info("output file '%s' was not written by the SQL", name)
            outputs["outputFiles"] = stored
        database = state.get("database")
        if state.get("output_db") and database and database != ":memory:" and Path(database).exists():
            outputs["databaseUri"] = platform.put_file(Path(database).read_bytes(), Path(database).name)

    def cancel(self, connection: Any, state: dict[str, Any]) -> None:
        connection.connection.interrupt()


class _Transactional:
    """A DuckDB connection used as DB-API drivers are: always in a transaction, which commit() and
    rollback() end and start again (DuckDB's own connection is in autocommit mode)."""

    def __init__(self, connection: Any):
        self.connection = connection
        connection.begin()

    def cursor(self) -> "_Cursor":
        # DuckDB's cursor() is a second connection with its own transactions: use this one
        return _Cursor(self.connection)

    def commit(self) -> None:
        self.connection.commit()
        self.connection.begin()

    def rollback(self) -> None:
        self.connection.rollback()
        self.connection.begin()

    def close(self) -> None:
        self.connection.close()


class _Cursor:
    def __init__(self, connection: Any):
        self.connection = connection

    def execute(self, sql: str, parameters: Any = None) -> Any:
        return self.connection.execute(sql, parameters) if parameters is not None else self.connection.execute(sql)

    @property
    def description(self) -> Any:
        return self.connection.description

    def fetchmany(self, size: int) -> list[Any]:
        return self.connection.fetchmany(size)

    def fetchall(self) -> list[Any]:
        return self.connection.fetchall()

    def close(self) -> None:
        pass


_DIALECT = DuckdbDialect()


class DuckdbQueryProps(JdbcQueryProps):
    url: Text = DEFAULT_URL
    inputFiles: Optional[Union[dict[str, Any], str]] = None
    outputFiles: Optional[list[Text]] = None
    databaseUri: Optional[Text] = None
    outputDbFile: bool = False
    communityExtensions: Optional[list[Text]] = None


class DuckdbQueriesProps(JdbcQueriesProps):
    url: Text = DEFAULT_URL
    inputFiles: Optional[Union[dict[str, Any], str]] = None
    outputFiles: Optional[list[Text]] = None
    databaseUri: Optional[Text] = None
    outputDbFile: bool = False
    communityExtensions: Optional[list[Text]] = None


@register
class Query(JdbcQuery):
    """Run one SQL statement on DuckDB."""

    type = "io.kestra.plugin.jdbc.duckdb.Query"
    dialect = _DIALECT
    Props = DuckdbQueryProps


@register
class Queries(JdbcQueries):
    """Run several SQL statements on DuckDB, in one transaction by default."""

    type = "io.kestra.plugin.jdbc.duckdb.Queries"
    dialect = _DIALECT
    Props = DuckdbQueriesProps
