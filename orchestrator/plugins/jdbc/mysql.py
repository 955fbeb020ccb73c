"""``io.kestra.plugin.jdbc.mysql``: Query and Queries on MySQL and MariaDB, with PyMySQL.

``url`` is ``jdbc:mysql://host:3306/db`` (MariaDB servers too; ``io.kestra.plugin.jdbc.mariadb``
has the same types for ``jdbc:mariadb://`` URLs); MySQL ``TIME``
values come back as times of day (PyMySQL reads them as durations), ``JSON`` columns as text, as
MySQL's JDBC driver returns them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from orchestrator.engine.plugins import RunContext, register
from orchestrator.plugins.core._common import Text
from orchestrator.plugins.core._render import render_text

from . import _files
from ._base import Dialect, JdbcQueries, JdbcQuery, JdbcQueryProps, common_value, jdbc_parts


class MysqlDialect(Dialect):
    scheme = "jdbc:mysql"
    paramstyle = "pyformat"

    def errors(self) -> tuple[type[BaseException], ...]:
        import pymysql

        return (pymysql.MySQLError,)

    def prepare(self, ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
        """``inputFile`` (a ``kestra://`` file) is copied to the working directory for
        ``LOAD DATA LOCAL INFILE '{{ inputFile }}'``."""
        state: dict[str, Any] = {}
        source = render_text(ctx, props.get("inputFile"))
        if source:
            target = _files.working_dir(ctx, state) / "inputFile"
            _files.fetch_into(ctx, source, target, "inputFile")
            state["variables"] = {"inputFile": str(target)}
            state["local_infile"] = True
        return state

    def cancel(self, connection: Any, state: dict[str, Any]) -> None:
        # MySQL cancels a statement from another connection: KILL QUERY <connection id>
        import pymysql

        killer = pymysql.connect(**state["connect_kwargs"])
        try:
            with killer.cursor() as cursor:
                cursor.execute("KILL QUERY %s", (connection.thread_id(),))
        finally:
            killer.close()

    def connect(self, ctx: RunContext, url: str, username: str | None, password: str | None,
                props: dict[str, Any]) -> Any:
        import pymysql

        host, port, database, params = jdbc_parts(url, url.split("://", 1)[0])
        kwargs: dict[str, Any] = {"host": host, "port": port or 3306, "connect_timeout": 10,
                                  "charset": params.get("characterEncoding", "utf8mb4").replace("UTF-8", "utf8mb4"),
                                  "autocommit": False}
        if database:
            kwargs["database"] = database
        user = username if username is not None else params.get("user")
        secret = password if password is not None else params.get("password")
        if user is not None:
            kwargs["user"] = user
        if secret is not None:
            kwargs["password"] = secret
        if str(params.get("useSSL", params.get("sslMode", ""))).lower() in ("true", "required", "verify_ca",
                                                                           "verify_identity"):
            kwargs["ssl"] = {}
        props["connect_kwargs"] = dict(kwargs, autocommit=True)
        if props.get("local_infile"):
            kwargs["local_infile"] = True
        return pymysql.connect(**kwargs)

    def convert(self, value: Any, column_type: Any) -> Any:
        if isinstance(value, timedelta) and column_type == _TIME:
            seconds = int(value.total_seconds())
            if 0 <= seconds < 86400:
                from datetime import time

                return time(seconds // 3600, seconds // 60 % 60, seconds % 60, value.microseconds)
        if isinstance(value, datetime) and column_type == _TIMESTAMP:
            # Kestra reads TIMESTAMP columns as instants (UTC), DATETIME ones as local date-times
            return value.replace(tzinfo=timezone.utc)
        return common_value(value)


_TIMESTAMP = 7  # pymysql.constants.FIELD_TYPE.TIMESTAMP
_TIME = 11  # pymysql.constants.FIELD_TYPE.TIME


_DIALECT = MysqlDialect()


class MysqlQueryProps(JdbcQueryProps):
    inputFile: Optional[Text] = None


@register
class Query(JdbcQuery):
    """Run one SQL statement on MySQL or MariaDB."""

    type = "io.kestra.plugin.jdbc.mysql.Query"
    dialect = _DIALECT
    Props = MysqlQueryProps


@register
class Queries(JdbcQueries):
    """Run several SQL statements on MySQL or MariaDB, in one transaction by default."""

    type = "io.kestra.plugin.jdbc.mysql.Queries"
    dialect = _DIALECT
