"""``io.kestra.plugin.jdbc.<db>.Trigger``: a polling trigger running a query every ``interval``.

Each poll runs the trigger's query exactly as the database's ``Query`` task does (the same properties:
``url``, ``username``, ``password``, ``sql``, ``parameters``, ``fetchType``...); when the result has rows,
an execution starts with the query's outputs as ``trigger.*`` (``row``, ``rows`` or ``uri``, and
``size``). The query decides what is new (``WHERE updated > ...``, or an UPDATE marking the rows it
returned, in ``afterSQL``): a poll with no rows fires nothing.
"""
from __future__ import annotations

from typing import Any

from orchestrator.engine.plugins import TRIGGER, RunContext, register
from orchestrator.plugins.core._common import Duration

from . import duckdb, mariadb, mysql, postgresql, sqlite
from ._base import JdbcQuery


class JdbcTrigger(JdbcQuery):
    kind = TRIGGER

    def evaluate(self, ctx: RunContext) -> dict[str, Any] | None:
        """One poll: the query's outputs when it returned at least one row, else ``None``."""
        outputs = self.run(ctx) or {}
        return outputs if (outputs.get("size") or 0) > 0 else None


def _trigger(module: Any, name: str) -> type[JdbcTrigger]:
    query = module.Query

    class Props(query.Props):  # type: ignore[name-defined,misc]
        interval: Duration = "PT60S"

    cls = type(f"{name.title()}Trigger", (JdbcTrigger,), {
        "__module__": __name__, "__doc__": f"Polling trigger: run a query on {name} every ``interval``.",
        "type": f"io.kestra.plugin.jdbc.{name}.Trigger", "dialect": query.dialect, "Props": Props})
    return register(cls)  # type: ignore[return-value]


PostgresqlTrigger = _trigger(postgresql, "postgresql")
MysqlTrigger = _trigger(mysql, "mysql")
MariadbTrigger = _trigger(mariadb, "mariadb")
SqliteTrigger = _trigger(sqlite, "sqlite")
DuckdbTrigger = _trigger(duckdb, "duckdb")
