"""``io.kestra.plugin.jdbc.mariadb``: Query and Queries on MariaDB (``jdbc:mariadb://host:3306/db``).

MariaDB speaks MySQL's protocol: the MySQL dialect (PyMySQL) serves both.
"""
from __future__ import annotations

from orchestrator.engine.plugins import register

from ._base import JdbcQueries, JdbcQuery
from .mysql import MysqlDialect, MysqlQueryProps


class MariadbDialect(MysqlDialect):
    scheme = "jdbc:mariadb"


_DIALECT = MariadbDialect()


@register
class Query(JdbcQuery):
    """Run one SQL statement on MariaDB."""

    type = "io.kestra.plugin.jdbc.mariadb.Query"
    dialect = _DIALECT
    Props = MysqlQueryProps


@register
class Queries(JdbcQueries):
    """Run several SQL statements on MariaDB, in one transaction by default."""

    type = "io.kestra.plugin.jdbc.mariadb.Queries"
    dialect = _DIALECT
