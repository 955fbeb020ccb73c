"""``io.kestra.plugin.jdbc.postgresql``: Query, Queries, CopyIn and CopyOut on psycopg.

``url`` is Kestra's JDBC form, ``jdbc:postgresql://host:5432/db?sslmode=require``; the JDBC
parameters that libpq knows under another name are translated (``ssl``, ``currentSchema``,
``ApplicationName``, ``connectTimeout``...), unknown ones are ignored with a log line.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import Props, Text
from orchestrator.plugins.core._render import render_bool, render_text, render_text_list

from ._base import (
    Dialect,
    JdbcBase,
    JdbcConnection,
    JdbcQueries,
    JdbcQueriesProps,
    JdbcQuery,
    JdbcQueryProps,
    _close,
    _message,
    check_url,
    cleanup,
    common_value,
    iso_interval,
    jdbc_parts,
    log,
    redact_url,
)

SslMode = Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"]

#: JDBC driver parameter -> libpq keyword (same meaning, other name)
_JDBC_TO_LIBPQ = {
    "user": "user", "password": "password", "sslmode": "sslmode", "sslrootcert": "sslrootcert",
    "sslcert": "sslcert", "sslkey": "sslkey", "applicationname": "application_name",
    "application_name": "application_name", "connecttimeout": "connect_timeout",
    "connect_timeout": "connect_timeout", "options": "options", "targetservertype": "target_session_attrs",
    "gssencmode": "gssencmode", "dbname": "dbname",
}


class PostgresDialect(Dialect):
    scheme = "jdbc:postgresql"
    paramstyle = "pyformat"

    def errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def connect(self, ctx: RunContext, url: str, username: str | None, password: str | None,
                props: dict[str, Any]) -> Any:
        import psycopg

        host, port, database, params = jdbc_parts(url, self.scheme)
        kwargs: dict[str, Any] = {"host": host, "port": port or 5432}
        if database:
            kwargs["dbname"] = database
        for key, value in params.items():
            lowered = key.lower()
            if lowered == "ssl":
                if value.lower() == "true":
                    kwargs.setdefault("sslmode", "require")
            elif lowered == "currentschema":
                kwargs["options"] = f"-c search_path={value}"
            elif lowered in _JDBC_TO_LIBPQ:
                kwargs[_JDBC_TO_LIBPQ[lowered]] = value
            else:
                log.info("PostgreSQL URL parameter '%s' has no libpq equivalent: ignored", key)
        if username is not None:
            kwargs["user"] = username
        if password is not None:
            kwargs["password"] = password
        ssl = props.get("ssl")
        if ssl is not None:
            if ssl.get("sslMode"):
                kwargs["sslmode"] = ssl["sslMode"].lower().replace("_", "-")
            elif ssl.get("ssl"):
                kwargs.setdefault("sslmode", "require")
            for name in ("sslrootcert", "sslcert", "sslkey", "sslpassword"):
                if ssl.get(name):
                    kwargs[name] = ssl[name]
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(**kwargs)

    def prepare(self, ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
        return _ssl_state(ctx, props)

    def column_types(self, cursor: Any) -> list[Any]:
        return [column.type_code for column in cursor.description or []]

    def cancel(self, connection: Any, state: dict[str, Any]) -> None:
        connection.cancel_safe(timeout=10)

    def convert(self, value: Any, column_type: Any) -> Any:
        if isinstance(value, timedelta):
            return iso_interval(value)
        if isinstance(value, str) and column_type in _JSON_OIDS:
            # psycopg loads json/jsonb itself; a json value fetched as text (custom loaders) still parses
            try:
                return json.loads(value)
            except ValueError:
                return value
        return common_value(value)


_JSON_OIDS = frozenset({114, 3802})
DIALECT = PostgresDialect()


class _SslProps(Props):
    ssl: bool = False
    sslMode: Optional[SslMode] = None
    sslRootCert: Optional[Text] = None
    sslCert: Optional[Text] = None
    sslKey: Optional[Text] = None
    sslKeyPassword: Optional[Text] = None


class PgQueryProps(JdbcQueryProps, _SslProps):
    pass


class PgQueriesProps(JdbcQueriesProps, _SslProps):
    pass


def _ssl_state(ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
    """The ``ssl*`` properties, rendered; PEM contents go to files libpq can read, in a directory of
    the run's own (removed after the run)."""
    import os
    import tempfile

    state: dict[str, Any] = {}
    ssl: dict[str, Any] = {"ssl": render_bool(ctx, props.get("ssl"), False)}
    mode = render_text(ctx, props.get("sslMode"))
    if mode:
        mode = mode.strip().upper()
        if mode not in ("DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"):
            raise TaskFailure(f"Invalid property 'sslMode': '{mode}' is not a PostgreSQL SSL mode")
        ssl["sslMode"] = mode
    for prop, key in (("sslRootCert", "sslrootcert"), ("sslCert", "sslcert"), ("sslKey", "sslkey")):
        pem = render_text(ctx, props.get(prop))
        if pem:
            if "owned_dir" not in state:
                state["owned_dir"] = Path(tempfile.mkdtemp(prefix="celestra-pg-"))
            path = state["owned_dir"] / f"{key}.pem"
            path.write_text(pem)
            os.chmod(path, 0o600)
            ssl[key] = str(path)
    key_password = render_text(ctx, props.get("sslKeyPassword"))
    if key_password:
        ssl["sslpassword"] = key_password
    if len(ssl) > 1 or ssl["ssl"]:
        state["ssl"] = ssl
    return state


@register
class Query(JdbcQuery):
    """Run one SQL statement on PostgreSQL."""

    type = "io.kestra.plugin.jdbc.postgresql.Query"
    dialect = DIALECT
    Props = PgQueryProps


@register
class Queries(JdbcQueries):
    """Run several SQL statements on PostgreSQL, in one transaction by default."""

    type = "io.kestra.plugin.jdbc.postgresql.Queries"
    dialect = DIALECT
    Props = PgQueriesProps


class CopyProps(JdbcConnection, _SslProps):
    table: Optional[Text] = None
    columns: Optional[list[Text]] = None
    format: Literal["TEXT", "CSV", "BINARY"] = "TEXT"
    oids: Optional[bool] = None
    freeze: Optional[bool] = None
    delimiter: Optional[Text] = None
    nullString: Optional[Text] = None
    header: Optional[bool] = None
    quote: Optional[Text] = None
    escape: Optional[Text] = None
    forceQuote: Optional[list[Text]] = None
    forceNotNull: Optional[list[Text]] = None
    forceNull: Optional[list[Text]] = None
    encoding: Optional[Text] = None
    socketTimeout: Optional[int] = None


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def copy_sql(ctx: RunContext, props: dict[str, Any], query: str | None, destination: str) -> str:
    """The ``COPY`` statement for the task's options, as Kestra's AbstractCopy builds it."""
    parts = ["COPY"]
    if query is None:
        table = render_text(ctx, props.get("table"))
        if not table or not table.strip():
            raise TaskFailure("Invalid property 'table': a table is required")
        parts.append(table.strip())
        columns = render_text_list(ctx, props.get("columns"))
        if columns:
            parts.append("(" + ", ".join(columns) + ")")
    else:
        parts.append("(" + query + ")")
    parts.append(destination)
    options: list[str] = []
    fmt = ctx.render_string(props.get("format") or "TEXT").strip().upper()
    if fmt not in ("TEXT", "CSV", "BINARY"):
        raise TaskFailure(f"Invalid property 'format': '{fmt}' is not one of TEXT, CSV, BINARY")
    if fmt != "TEXT":
        options.append("FORMAT " + fmt)
    if props.get("oids") is not None and render_bool(ctx, props.get("oids"), False):
        options.append("OIDS")
    if props.get("freeze") is not None and render_bool(ctx, props.get("freeze"), False):
        options.append("FREEZE")
    for prop, keyword in (("delimiter", "DELIMITER"), ("nullString", "NULL"), ("quote", "QUOTE"),
                          ("escape", "ESCAPE")):
        value = render_text(ctx, props.get(prop))
        if value is not None:
            options.append(f"{keyword} {_literal(value)}")
    if props.get("header") is not None:
        options.append("HEADER " + ("TRUE" if render_bool(ctx, props.get("header"), False) else "FALSE"))
    force_quote = render_text_list(ctx, props.get("forceQuote"))
    if force_quote:
        options.append("FORCE_QUOTE " + ("*" if force_quote == ["*"] else "(" + ", ".join(force_quote) + ")"))
    for prop, keyword in (("forceNotNull", "FORCE_NOT_NULL"), ("forceNull", "FORCE_NULL")):
        values = render_text_list(ctx, props.get(prop))
        if values:
            options.append(f"{keyword} (" + ", ".join(values) + ")")
    encoding = render_text(ctx, props.get("encoding"))
    if encoding:
        options.append("ENCODING " + _literal(encoding))
    sql = " ".join(parts)
    if options:
        sql += " WITH (" + ", ".join(options) + ")"
    return sql


class _Copy(JdbcBase):
    dialect = DIALECT

    def _connect(self, ctx: RunContext) -> Any:
        props = self.task.props
        url = check_url(render_text(ctx, props.get("url")), DIALECT.scheme)
        state = _ssl_state(ctx, props)
        try:
            return DIALECT.connect(ctx, url, render_text(ctx, props.get("username")),
                                   render_text(ctx, props.get("password")), state)
        except DIALECT.errors() as exc:
            raise TaskFailure(f"Unable to connect to {redact_url(url)}: {_message(exc)}") from None
        finally:
            cleanup(state)  # libpq has read the certificate files once connected


@register
class CopyIn(_Copy):
    """Load a file of internal storage into a table with ``COPY ... FROM STDIN``; ``rowCount``."""

    type = "io.kestra.plugin.jdbc.postgresql.CopyIn"
    kind = RUNNABLE

    class Props(CopyProps):
        from_: Text = Field(alias="from")

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        source = render_text(ctx, props.get("from"))
        if not source:
            raise TaskFailure("Invalid property 'from': a kestra:// file URI is required")
        content = platform_of(ctx).read_file(source.strip())
        sql = copy_sql(ctx, props, None, "FROM STDIN")
        connection = self._connect(ctx)
        try:
            with connection.cursor() as cursor:
                log.debug("Starting query: %s", sql)
                with cursor.copy(sql) as copy:
                    for start in range(0, len(content), 1 << 16):
                        copy.write(content[start:start + (1 << 16)])
                rows = cursor.rowcount
            connection.commit()
        except DIALECT.errors() as exc:
            raise TaskFailure(f"COPY failed: {_message(exc)}") from None
        finally:
            _close(connection)
        ctx.metric("counter", "rows", rows)
        return {"rowCount": rows}


@register
class CopyOut(_Copy):
    """Write a table or a query's rows to internal storage with ``COPY ... TO STDOUT``; ``uri``, ``rowCount``."""

    type = "io.kestra.plugin.jdbc.postgresql.CopyOut"
    kind = RUNNABLE

    class Props(CopyProps):
        sql: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        query = render_text(ctx, props.get("sql"))
        sql = copy_sql(ctx, props, query.strip().rstrip(";") if query else None, "TO STDOUT")
        connection = self._connect(ctx)
        chunks: list[bytes] = []
        try:
            with connection.cursor() as cursor:
                log.debug("Starting query: %s", sql)
                with cursor.copy(sql) as copy:
                    for data in copy:
                        chunks.append(bytes(data))
                rows = cursor.rowcount
            connection.commit()
        except DIALECT.errors() as exc:
            raise TaskFailure(f"COPY failed: {_message(exc)}") from None
        finally:
            _close(connection)
        uri = platform_of(ctx).put_file(b"".join(chunks), "copy-out")
        ctx.metric("counter", "rows", rows)
        return {"uri": uri, "rowCount": rows}
