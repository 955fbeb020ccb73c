"""What every ``io.kestra.plugin.jdbc.<db>.Query`` / ``Queries`` shares.

A database module subclasses :class:`JdbcQuery` or :class:`JdbcQueries` with a :class:`Dialect`
that knows its JDBC scheme, how to open a DB-API connection from the rendered ``url``,
``username`` and ``password``, its parameter style and how it converts column values.

The run, as Kestra's ``AbstractJdbcQuery`` / ``AbstractJdbcQueries`` do it:

1. render ``url`` (it must start with the dialect's ``jdbc:<db>`` scheme), ``username``,
   ``password`` and ``sql``; open the connection;
2. ``Query`` accepts one statement only (``afterSQL`` runs after it, in the same transaction);
   ``Queries`` splits ``sql`` into statements and runs them in one transaction unless
   ``transaction: false`` (then each statement commits on its own);
3. with ``parameters``, ``:name`` placeholders are bound as the driver's parameters;
4. the rows of a statement returning a result go out as ``fetchType`` says: ``FETCH_ONE`` →
   ``row``, ``FETCH`` → ``rows``, ``STORE`` → an ION file in internal storage (``uri``), with
   ``size`` (the number of rows); ``NONE`` → nothing;
5. a ``fetch.size`` counter metric is recorded.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar, Literal, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlparse

from orchestrator.engine.errors import TaskFailure, TaskKilled
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core._ion import ion_dumps
from orchestrator.plugins.core._render import render_bool, render_int, render_text

log = logging.getLogger("celestra.plugins.jdbc")


def cleanup(state: dict[str, Any]) -> None:
    """Remove the working directory a dialect created for the run (none inside a WorkingDirectory)."""
    from . import _files

    _files.cleanup(state)

FetchType = Literal["NONE", "FETCH_ONE", "FETCH", "STORE"]
FETCH_TYPES = ("NONE", "FETCH_ONE", "FETCH", "STORE")


class Dialect:
    """One database: its JDBC scheme, its connection and its values."""

    #: ``jdbc:postgresql``: the rendered ``url`` must start with it
    scheme: ClassVar[str] = ""
    #: how ``:name`` placeholders are written for the driver: "pyformat" (``%(name)s``),
    #: "named" (``:name``) or "dollar" (``$name``)
    paramstyle: ClassVar[str] = "pyformat"

    def connect(self, ctx: RunContext, url: str, username: str | None, password: str | None,
                props: dict[str, Any]) -> Any:
        raise NotImplementedError

    def errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception classes (reported as task failures with the driver's message)."""
        return (Exception,)

    def has_result(self, cursor: Any, statement: str) -> bool:
        """Whether the statement just run returned rows (a result set)."""
        return cursor.description is not None

    def column_types(self, cursor: Any) -> list[Any]:
        """Per column, what :meth:`convert` needs beyond the value (a type code or name)."""
        return [column[1] for column in cursor.description or []]

    def convert(self, value: Any, column_type: Any) -> Any:
        """A driver value as Kestra's cell converter returns it (see :func:`common_value`)."""
        return common_value(value)

    def prepare(self, ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
        """Files to bring into the working directory and variables for the SQL (DuckDB, SQLite)."""
        return {}

    def finish(self, ctx: RunContext, props: dict[str, Any], state: dict[str, Any],
               outputs: dict[str, Any]) -> None:
        """Outputs beyond the query's (DuckDB's ``outputFiles``, ``databaseUri``...)."""

    def cancel(self, connection: Any, state: dict[str, Any]) -> None:
        """Ask the database to stop the statement running on ``connection`` (from another thread)."""


def common_value(value: Any) -> Any:
    """Values the DB-API drivers return, as Kestra's JDBC plugins give them.

    ``BigInteger`` and UUIDs become text, intervals ISO-8601 durations (``P0Y0M1DT2H3M4S``), binary
    values bytes; dates, times, timestamps and decimals keep their types here (ION keeps them as such;
    :func:`output_value` turns them into JSON for task outputs).
    """
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, timedelta):
        return iso_interval(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 63:
        return str(value)  # Kestra: BigInteger -> String
    if isinstance(value, (list, tuple)):
        return [common_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): common_value(v) for k, v in value.items()}
    return value


def iso_interval(value: timedelta) -> str:
    """Kestra's text for a PostgreSQL interval: ``P<y>Y<m>M<d>DT<h>H<m>M<s>S``."""
    total = int(value.total_seconds())
    sign = -1 if total < 0 else 1
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"P0Y0M{sign * days}DT{sign * hours}H{sign * minutes}M{sign * seconds}S"


def output_value(value: Any) -> Any:
    """A converted value as it appears in task outputs (JSON): what Jackson writes for Kestra's types."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Jackson writes BigDecimal as a JSON number; integral ones stay integers here
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [output_value(v) for v in value]
    if isinstance(value, dict):
        return {k: output_value(v) for k, v in value.items()}
    return value


def check_url(url: str | None, scheme: str) -> str:
    if url is None or not url.strip():
        raise TaskFailure("Invalid property 'url': rendered value of `url` is blank")
    url = url.strip()
    if not url.startswith(scheme):
        raise TaskFailure(f"Invalid property 'url': URL scheme is invalid. URL should start with `{scheme}` "
                          f"(got `{redact_url(url)}`)")
    return url


def redact_url(url: str) -> str:
    """The URL without its password (``password=...`` parameters and ``user:pass@``)."""
    url = re.sub(r"(?i)(password=)[^&;]*", r"\1***", url)
    return re.sub(r"//([^/@:]+):[^/@]*@", r"//\1:***@", url)


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` (comments-only and empty pieces dropped)."""
    statements = []
    for statement in sqlparse.split(sql):
        stripped = sqlparse.format(statement, strip_comments=True).strip().rstrip(";").strip()
        if stripped:
            statements.append(statement.strip())
    return statements


def bind_named(sql: str, parameters: dict[str, Any], style: str) -> tuple[str, Any]:
    """Rewrite Kestra's ``:name`` placeholders for the driver; returns the SQL and its parameters.

    Quoted text, quoted identifiers, comments, PostgreSQL ``::`` casts and dollar-quoted bodies are
    left alone. A placeholder without a value in ``parameters`` is an error naming it.
    """
    out: list[str] = []
    used: dict[str, Any] = {}
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in ("'", '"', "`"):
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:  # doubled quote
                        end += 2
                        continue
                    break
                if sql[end] == "\\" and char != '"':
                    end += 1
                end += 1
            out.append(_escape_literal(sql[i:end + 1], style))
            i = end + 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(_escape_literal(sql[i:end], style))
            i = end
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(_escape_literal(sql[i:end], style))
            i = end
            continue
        if char == "$":
            match = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if match:
                tag = match.group(0)
                end = sql.find(tag, i + len(tag))
                end = n if end < 0 else end + len(tag)
                out.append(_escape_literal(sql[i:end], style))
                i = end
                continue
        if char == ":" and i + 1 < n and sql[i + 1] == ":":
            out.append("::")
            i += 2
            continue
        if char == ":" and (i == 0 or sql[i - 1] != ":"):
            match = re.match(r":([A-Za-z_][A-Za-z0-9_]*)", sql[i:])
            if match:
                name = match.group(1)
                if name not in parameters:
                    raise TaskFailure(f"Invalid property 'parameters': no value for the parameter ':{name}' "
                                      "of the SQL")
                used[name] = parameters[name]
                out.append({"pyformat": f"%({name})s", "named": f":{name}", "dollar": f"${name}"}[style])
                i += len(match.group(0))
                continue
        out.append("%%" if char == "%" and style == "pyformat" else char)
        i += 1
    return "".join(out), used


def _escape_literal(text: str, style: str) -> str:
    # pyformat drivers interpret every % of the query once parameters are given
    return text.replace("%", "%%") if style == "pyformat" else text


def param_value(value: Any) -> Any:
    """A rendered parameter as the driver binds it (maps and lists as JSON text)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


class JdbcConnection(Props):
    url: Text
    username: Optional[Text] = None
    password: Optional[Text] = None
    timeZoneId: Optional[Text] = None


class JdbcQueryProps(JdbcConnection):
    sql: Text
    parameters: Optional[dict[str, Any]] = None
    fetchType: FetchType = "NONE"
    fetchSize: int = 10000
    afterSQL: Optional[Text] = None
    connectionPooling: bool = True
    connectionPoolSize: int = 10
    # deprecated since Kestra 0.19, still read
    store: bool = False
    fetchOne: bool = False
    fetch: bool = False


class JdbcQueriesProps(JdbcQueryProps):
    transaction: bool = True


class _Run:
    """One task run: rendered properties, the connection and the output writer."""

    def __init__(self, plugin: "JdbcBase", ctx: RunContext):
        self.plugin = plugin
        self.ctx = ctx
        self.props = plugin.task.props
        self.dialect = plugin.dialect
        self.fetch_type = self._fetch_type()
        zone = render_text(ctx, self.props.get("timeZoneId"))
        try:
            self.zone = ZoneInfo(zone.strip()) if zone and zone.strip() else None
        except (ZoneInfoNotFoundError, ValueError):
            raise TaskFailure(f"Invalid property 'timeZoneId': unknown time zone '{zone}'") from None
        raw = self.props.get("parameters")
        parameters = ctx.render(raw) if raw is not None else None
        if isinstance(parameters, str):
            try:
                parameters = json.loads(parameters) if parameters.strip() else None
            except ValueError:
                raise TaskFailure("Invalid property 'parameters': expected a map of names to values") from None
        if parameters is not None and not isinstance(parameters, dict):
            raise TaskFailure("Invalid property 'parameters': expected a map of names to values")
        self.parameters = {k: param_value(v) for k, v in parameters.items()} if parameters is not None else None
        self.fetch_size = render_int(ctx, self.props.get("fetchSize"), "fetchSize") or 10000

    def _fetch_type(self) -> str:
        props = self.props
        if props.get("fetchOne"):
            return "FETCH_ONE"
        if props.get("store"):
            return "STORE"
        if props.get("fetch"):
            return "FETCH"
        value = self.ctx.render_string(props.get("fetchType") or "NONE").strip().upper()
        if value not in FETCH_TYPES:
            raise TaskFailure(f"Invalid property 'fetchType': '{value}' is not one of {', '.join(FETCH_TYPES)}")
        return value

    def connect(self, state: dict[str, Any]) -> Any:
        ctx, props = self.ctx, self.props
        url = check_url(render_text(ctx, props.get("url")), self.dialect.scheme)
        username = render_text(ctx, props.get("username"))
        password = render_text(ctx, props.get("password"))
        try:
            return self.dialect.connect(ctx, url, username, password, state)
        except TaskFailure:
            raise
        except self.dialect.errors() as exc:
            raise TaskFailure(f"Unable to connect to {redact_url(url)}: {_message(exc)}") from None

    def render_sql(self, value: Any, state: dict[str, Any]) -> str:
        extra = state.get("variables") or {}
        if extra:
            from orchestrator.engine import expressions

            return expressions.render_string(value, {**(self.ctx.variables or {}), **extra})
        return self.ctx.render_string(value)

    def execute(self, cursor: Any, statement: str) -> None:
        if self.parameters is not None:
            sql, params = bind_named(statement, self.parameters, self.dialect.paramstyle)
            log.debug("Starting query: %s", sql)
            cursor.execute(sql, params)
        else:
            log.debug("Starting query: %s", statement)
            cursor.execute(statement)

    def rows(self, cursor: Any, limit: int | None = None) -> Any:
        """Converted rows (dicts keyed by column label) of the cursor's current result."""
        labels = [column[0] for column in cursor.description]
        types = self.dialect.column_types(cursor)
        produced = 0
        while limit is None or produced < limit:
            batch = cursor.fetchmany(self.fetch_size if limit is None else 1)
            if not batch:
                return
            for values in batch:
                row = {}
                for label, column_type, value in zip(labels, types, values, strict=True):
                    converted = self.dialect.convert(value, column_type) if value is not None else None
                    if isinstance(converted, datetime) and converted.tzinfo:
                        # Kestra gives zoned timestamps in ``timeZoneId``, else in the worker's zone
                        converted = converted.astimezone(self.zone) if self.zone else converted.astimezone()
                    row[label] = converted
                yield row
                produced += 1

    def result(self, cursor: Any) -> dict[str, Any]:
        """The output of one statement's result set, as ``fetchType`` says."""
        fetch_type = self.fetch_type
        if fetch_type == "FETCH_ONE":
            row = next(iter(self.rows(cursor, limit=1)), None)
            return {"row": output_value(row), "size": 0 if row is None else 1} if row is not None else {"size": 0}
        if fetch_type == "FETCH":
            rows = [output_value(row) for row in self.rows(cursor)]
            return {"rows": rows, "size": len(rows)}
        if fetch_type == "STORE":
            lines = []
            for row in self.rows(cursor):
                lines.append(ion_dumps(row) + "\n")
            uri = platform_of(self.ctx).put_file("".join(lines).encode("utf-8"), extension=".ion")
            return {"uri": uri, "size": len(lines)}
        return {}


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return " ".join(text.split()) if "\n" in text and len(text) < 500 else text


class JdbcBase(CorePlugin):
    kind = RUNNABLE
    dialect: ClassVar[Dialect] = Dialect()

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        """Prepare the dialect's state (files of embedded databases...), run, and always clean up."""
        run = _Run(self, ctx)
        state = self.dialect.prepare(ctx, self.task.props)
        try:
            return self._run(ctx, run, state)
        finally:
            cleanup(state)

    def _run(self, ctx: RunContext, run: _Run, state: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _metric(self, ctx: RunContext, run: _Run, size: int) -> None:
        fetching = run.fetch_type in ("FETCH", "FETCH_ONE")
        ctx.metric("counter", "fetch.size", size,
                   {"fetch": "true" if fetching else "false", "store": "true" if run.fetch_type == "STORE" else "false"})


class _Watchdog:
    """Cancels the running statement when the attempt is killed or its ``timeout`` passes.

    A worker's run context carries a ``killed`` event and ``timed_out()``; the statement runs in the
    driver and does not look at them, so a thread does and asks the database to cancel it (Kestra's
    ``kill()`` cancels the JDBC statement the same way).
    """

    def __init__(self, ctx: RunContext, dialect: Dialect, connection: Any, state: dict[str, Any]):
        self.ctx, self.dialect, self.connection, self.state = ctx, dialect, connection, state
        self.fired: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "_Watchdog":
        if getattr(self.ctx, "killed", None) is not None or callable(getattr(self.ctx, "timed_out", None)):
            self._thread = threading.Thread(target=self._watch, name="celestra-sql-watchdog", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        killed = getattr(self.ctx, "killed", None)
        timed_out = getattr(self.ctx, "timed_out", None)
        while not self._stop.wait(0.1):
            reason = "Killed" if killed is not None and killed.is_set() else \
                "Timeout" if callable(timed_out) and timed_out() else None
            if reason:
                self.fired = reason
                try:
                    self.dialect.cancel(self.connection, self.state)
                except Exception:
                    log.debug("cancel failed", exc_info=True)
                return

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def check(self) -> None:
        if self.fired:
            raise TaskKilled(self.fired)


class JdbcQuery(JdbcBase):
    """One SQL statement (``afterSQL`` after it, in the same transaction)."""

    Props = JdbcQueryProps

    def _run(self, ctx: RunContext, run: _Run, state: dict[str, Any]) -> dict[str, Any]:
        sql = run.render_sql(self.task.props.get("sql"), state)
        statements = split_statements(sql)
        if len(statements) > 1:
            raise TaskFailure("Invalid property 'sql': Query task support only a single SQL statement. "
                              "Use the Queries task to run multiple statements.")
        after = self.task.props.get("afterSQL")
        after_sql = run.render_sql(after, state) if after is not None else None
        if after_sql is not None and len(split_statements(after_sql)) > 1:
            raise TaskFailure("Invalid property 'afterSQL': Query task afterSQL supports only a single SQL "
                              "statement. Use the Queries task to run multiple statements.")
        connection = run.connect(state)
        outputs: dict[str, Any] = {}
        watchdog = _Watchdog(ctx, self.dialect, connection, state)
        try:
            with watchdog:
                cursor = connection.cursor()
                try:
                    if statements:
                        run.execute(cursor, statements[0])
                        if self.dialect.has_result(cursor, statements[0]):
                            outputs = run.result(cursor)
                    if after_sql and after_sql.strip():
                        run.execute(cursor, after_sql)
                finally:
                    _close(cursor)
                watchdog.check()
                connection.commit()
        except (TaskFailure, TaskKilled):
            _rollback(connection)
            raise
        except self.dialect.errors() as exc:
            _rollback(connection)
            watchdog.check()
            raise TaskFailure(f"SQL query failed: {_message(exc)}") from None
        finally:
            _close(connection)
        self._metric(ctx, run, outputs.get("size") or 0)
        self.dialect.finish(ctx, self.task.props, state, outputs)
        return outputs


class JdbcQueries(JdbcBase):
    """Several statements; one transaction unless ``transaction: false``; ``outputs``: one per result."""

    Props = JdbcQueriesProps

    def _run(self, ctx: RunContext, run: _Run, state: dict[str, Any]) -> dict[str, Any]:
        statements = split_statements(run.render_sql(self.task.props.get("sql"), state))
        transactional = render_bool(ctx, self.task.props.get("transaction"), True)
        connection = run.connect(state)
        results: list[dict[str, Any]] = []
        total = 0
        watchdog = _Watchdog(ctx, self.dialect, connection, state)
        try:
            with watchdog:
                cursor = connection.cursor()
                try:
                    for index, statement in enumerate(statements):
                        try:
                            run.execute(cursor, statement)
                        except self.dialect.errors() as exc:
                            watchdog.check()
                            raise TaskFailure(f"SQL query failed on statement {index + 1} "
                                              f"({_shorten(statement)}): {_message(exc)}") from None
                        if self.dialect.has_result(cursor, statement):
                            result = run.result(cursor)
                            total += result.get("size") or 0
                            results.append(result)
                        if not transactional:
                            connection.commit()
                        watchdog.check()  # a killed attempt runs no further statement
                finally:
                    _close(cursor)
                connection.commit()
        except (TaskFailure, TaskKilled):
            _rollback(connection)
            raise
        except self.dialect.errors() as exc:
            _rollback(connection)
            watchdog.check()
            raise TaskFailure(f"SQL query failed: {_message(exc)}") from None
        finally:
            _close(connection)
        self._metric(ctx, run, total)
        outputs: dict[str, Any] = {"outputs": results}
        self.dialect.finish(ctx, self.task.props, state, outputs)
        return outputs


def _shorten(statement: str, limit: int = 80) -> str:
    text = " ".join(statement.split()).rstrip(";")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _rollback(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)


def _close(resource: Any) -> None:
    try:
        resource.close()
    except Exception:
        log.debug("close failed", exc_info=True)


def jdbc_parts(url: str, scheme: str) -> tuple[str, int | None, str, dict[str, str]]:
    """``jdbc:<db>://host[:port][/database][?k=v&...]`` → host, port, database, parameters.

    JDBC URLs may also carry parameters after ``;`` (``;user=x``) and may leave the host out.
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    rest = url[len(scheme):]
    if rest.startswith(":"):
        rest = rest[1:]
    if not rest.startswith("//"):
        raise TaskFailure(f"Invalid property 'url': expected `{scheme}://host:port/database` "
                          f"(got `{redact_url(url)}`)")
    rest, _, semicolon = rest.partition(";")
    parts = urlsplit("x:" + rest)
    params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    for item in semicolon.split(";") if semicolon else []:
        key, _, value = item.partition("=")
        if key:
            params[key] = value
    try:
        port = parts.port
    except ValueError:
        raise TaskFailure(f"Invalid property 'url': invalid port in `{redact_url(url)}`") from None
    if parts.username and "user" not in params:
        params["user"] = unquote(parts.username)
    if parts.password and "password" not in params:
        params["password"] = unquote(parts.password)
    host = parts.hostname or "localhost"
    return host, port, unquote(parts.path.lstrip("/")), params


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
