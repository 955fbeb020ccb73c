"""``io.kestra.plugin.jdbc.*`` against the PostgreSQL and MariaDB servers of this machine (on databases
of the test's own) and SQLite / DuckDB files in temporary directories."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pymysql
import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.plugins.core.storage import ion_loads
from orchestrator.plugins.jdbc._base import bind_named, split_statements

from .test_storage_kv_plugins import Ctx, read, run

PG_HOST = os.environ.get("CELESTRA_TEST_PG_HOST", "127.0.0.1")
MY_HOST = os.environ.get("CELESTRA_TEST_MYSQL_HOST", "127.0.0.1")
DB = f"celestra_plugins_a_jdbc_{os.getpid()}"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    admin = psycopg.connect(host=PG_HOST, port=5432, user="postgres", dbname="postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{DB}"')
    admin.execute(f'CREATE DATABASE "{DB}"')
    try:
        yield f"jdbc:postgresql://{PG_HOST}:5432/{DB}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def my_url() -> Iterator[str]:
    admin = pymysql.connect(host=MY_HOST, port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{DB}`")
        cursor.execute(f"CREATE DATABASE `{DB}`")
    try:
        yield f"jdbc:mysql://{MY_HOST}:3306/{DB}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{DB}`")
        admin.close()


def ion_rows(ctx: Ctx, uri: str) -> list[Any]:
    return ion_loads(read(ctx, uri))


# --- helpers --------------------------------------------------------------------------------------------

def test_named_parameters_skip_literals_comments_and_casts() -> None:
    sql, params = bind_named("SELECT ':x', :x::int, $$ :y $$ -- :z\n, 100 % 3, :y", {"x": 1, "y": "a"}, "pyformat")
    assert sql == "SELECT ':x', %(x)s::int, $$ :y $$ -- :z\n, 100 %% 3, %(y)s"
    assert params == {"x": 1, "y": "a"}
    with pytest.raises(TaskFailure, match="':missing'"):
        bind_named("SELECT :missing", {}, "named")


def test_split_statements_drops_empty_and_comment_only_pieces() -> None:
    assert split_statements("CREATE TABLE a(x int);\n-- nothing\n;INSERT INTO a VALUES (';');") == [
        "CREATE TABLE a(x int);", "INSERT INTO a VALUES (';');"]


# --- PostgreSQL -----------------------------------------------------------------------------------------

def test_postgres_fetch_types_and_value_conversion(pg_url: str) -> None:
    ctx = Ctx()
    run(f"""    type: io.kestra.plugin.jdbc.postgresql.Queries
    url: {pg_url}
    username: postgres
    sql: |
      DROP TABLE IF EXISTS pg_types;
      CREATE TABLE pg_types (id int, name text, amount numeric(10,2), day date, at timestamp,
        at_tz timestamptz, doc jsonb, tags text[], span interval, uid uuid);
      INSERT INTO pg_types VALUES
        (1, 'a', 12.50, '2024-01-02', '2024-01-02 10:11:12', '2024-01-02 10:11:12+02', '{{"k": [1, 2]}}',
         ARRAY['x','y'], '1 day 2 hours 3 minutes 4 seconds', '6f1c3cb4-4ff5-4a3b-9f35-3b7f0d3a1e10'),
        (2, 'b', 3, '2024-02-03', '2024-02-03 00:00:00', '2024-02-03 00:00:00+00', '[]', '{{}}', '0', NULL);
""", ctx)
    one = run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT * FROM pg_types ORDER BY id
    fetchType: FETCH_ONE
    timeZoneId: UTC
""", ctx)
    assert one["size"] == 1
    assert one["row"] == {"id": 1, "name": "a", "amount": 12.5, "day": "2024-01-02", "at": "2024-01-02T10:11:12",
                          "at_tz": "2024-01-02T08:11:12Z", "doc": {"k": [1, 2]}, "tags": ["x", "y"],
                          "span": "P0Y0M1DT2H3M4S", "uid": "6f1c3cb4-4ff5-4a3b-9f35-3b7f0d3a1e10"}
    every = run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT id, amount FROM pg_types ORDER BY id
    fetchType: FETCH
""", ctx)
    assert every == {"rows": [{"id": 1, "amount": 12.5}, {"id": 2, "amount": 3}], "size": 2}
    stored = run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT id, amount, day, at_tz FROM pg_types ORDER BY id
    fetchType: STORE
""", ctx)
    assert stored["size"] == 2 and stored["uri"].startswith("kestra:///") and stored["uri"].endswith(".ion")
    text = read(ctx, stored["uri"])
    assert text.splitlines()[0] == "{id:1,amount:12.50,day:2024-01-02,at_tz:2024-01-02T08:11:12Z}"
    none = run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT 1
""", ctx)
    assert none == {}
    sizes = [(kind, name, value) for kind, name, value, _tags in ctx.metrics]
    assert ("counter", "fetch.size", 0) in sizes and ("counter", "fetch.size", 2) in sizes


def test_postgres_parameters_and_single_statement_rule(pg_url: str) -> None:
    ctx = Ctx(inputs={"who": "it's me"})
    out = run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}?sslmode=disable&ApplicationName=celestra
    username: postgres
    sql: "SELECT :who AS who, :n::int + 1 AS next, '%' AS pct, current_setting('application_name') AS app"
    parameters:
      who: "{{{{ inputs.who }}}}"
      n: 41
    fetchType: FETCH_ONE
""", ctx)
    assert out["row"] == {"who": "it's me", "next": 42, "pct": "%", "app": "celestra"}
    with pytest.raises(TaskFailure, match="Query task support only a single SQL statement"):
        run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT 1; SELECT 2
""", ctx)


def test_postgres_queries_transaction_rolls_back_on_error(pg_url: str) -> None:
    ctx = Ctx()
    body = f"""    type: io.kestra.plugin.jdbc.postgresql.Queries
    url: {pg_url}
    username: postgres
    fetchType: FETCH
"""
    run(body + "    sql: DROP TABLE IF EXISTS tx; CREATE TABLE tx (v int primary key);\n", ctx)
    with pytest.raises(TaskFailure, match=r"statement 2 \(INSERT INTO tx VALUES \(1\)\).*duplicate key"):
        run(body + "    sql: INSERT INTO tx VALUES (1); INSERT INTO tx VALUES (1);\n", ctx)
    assert run(body + "    sql: SELECT count(*) AS n FROM tx\n", ctx)["outputs"] == [{"rows": [{"n": 0}], "size": 1}]
    with pytest.raises(TaskFailure):
        run(body + "    transaction: false\n    sql: INSERT INTO tx VALUES (1); INSERT INTO tx VALUES (1);\n", ctx)
    out = run(body + "    sql: SELECT count(*) AS n FROM tx; SELECT 'x' AS y;\n", ctx)
    assert out == {"outputs": [{"rows": [{"n": 1}], "size": 1}, {"rows": [{"y": "x"}], "size": 1}]}


def test_postgres_copy_in_and_out(pg_url: str) -> None:
    ctx = Ctx()
    base = f"""    url: {pg_url}
    username: postgres
"""
    run("    type: io.kestra.plugin.jdbc.postgresql.Queries\n" + base
        + "    sql: DROP TABLE IF EXISTS people; CREATE TABLE people (id int, name text);\n", ctx)
    source = ctx.platform.put_file(b"id,name\n1,Ada\n2,\"Grace, H\"\n", "people.csv")
    copied = run("    type: io.kestra.plugin.jdbc.postgresql.CopyIn\n" + base + f"""    table: people
    from: "{source}"
    format: CSV
    header: true
""", ctx)
    assert copied == {"rowCount": 2}
    out = run("    type: io.kestra.plugin.jdbc.postgresql.CopyOut\n" + base + """    sql: SELECT name FROM people ORDER BY id
    format: CSV
    header: true
""", ctx)
    assert out["rowCount"] == 2
    assert read(ctx, out["uri"]) == 'name\nAda\n"Grace, H"\n'


def test_postgres_errors_name_the_problem(pg_url: str) -> None:
    ctx = Ctx()
    with pytest.raises(TaskFailure, match="URL should start with `jdbc:postgresql`"):
        run("    type: io.kestra.plugin.jdbc.postgresql.Query\n    url: jdbc:mysql://x/y\n    sql: SELECT 1\n", ctx)
    with pytest.raises(TaskFailure, match=r"Unable to connect to jdbc:postgresql://127\.0\.0\.1:5432/no_such_db"):
        run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: jdbc:postgresql://{PG_HOST}:5432/no_such_db
    username: postgres
    sql: SELECT 1
""", ctx)
    with pytest.raises(TaskFailure, match="Unable to connect.*no_such_role"):
        run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: no_such_role
    password: "secret-value"
    sql: SELECT 1
""", ctx)
    with pytest.raises(TaskFailure, match='SQL query failed: relation "missing_table" does not exist'):
        run(f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT * FROM missing_table
""", ctx)


# --- MySQL / MariaDB ------------------------------------------------------------------------------------

def test_mysql_fetch_types_parameters_and_errors(my_url: str) -> None:
    ctx = Ctx()
    body = f"""    url: {my_url}
    username: root
"""
    run("    type: io.kestra.plugin.jdbc.mysql.Queries\n" + body + """    sql: |
      DROP TABLE IF EXISTS items;
      CREATE TABLE items (id int primary key, name varchar(20), price decimal(8,2), day date, at datetime,
        t time, doc json, ts timestamp NULL);
      INSERT INTO items VALUES (1, 'pen', 1.25, '2024-05-06', '2024-05-06 07:08:09', '10:11:12', '{"a": 1}',
          '2024-05-06 07:08:09'),
        (2, 'ink', 10, '2024-05-07', '2024-05-07 00:00:00', '00:00:01', '[]', NULL);
""", ctx)
    one = run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body + """    sql: SELECT * FROM items WHERE name = :name
    parameters:
      name: pen
    fetchType: FETCH_ONE
""", ctx)
    assert one == {"row": {"id": 1, "name": "pen", "price": 1.25, "day": "2024-05-06", "at": "2024-05-06T07:08:09",
                           "t": "10:11:12", "doc": '{"a": 1}', "ts": "2024-05-06T07:08:09Z"}, "size": 1}
    stored = run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body
                 + "    sql: SELECT id, price FROM items ORDER BY id\n    fetchType: STORE\n", ctx)
    assert stored["size"] == 2
    assert read(ctx, stored["uri"]) == "{id:1,price:1.25}\n{id:2,price:10.00}\n"
    maria = run(f"""    type: io.kestra.plugin.jdbc.mariadb.Query
    url: jdbc:mariadb://{MY_HOST}:3306/{DB}
    username: root
    sql: SELECT count(*) AS n FROM items
    fetchType: FETCH
""", ctx)
    assert maria == {"rows": [{"n": 2}], "size": 1}
    csv = ctx.platform.put_file(b"7,bag,3.5\n8,cap,2\n", "more.csv")
    loaded = run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body + f"""    inputFile: "{csv}"
    sql: LOAD DATA LOCAL INFILE '{{{{ inputFile }}}}' INTO TABLE items FIELDS TERMINATED BY ',' (id, name, price)
""", ctx)
    assert loaded == {}
    assert run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body
               + "    sql: SELECT name FROM items WHERE id > 6 ORDER BY id\n    fetchType: FETCH\n", ctx)["rows"] == [
        {"name": "bag"}, {"name": "cap"}]
    assert run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body + "    sql: DELETE FROM items WHERE id IN (7, 8)\n",
               ctx) == {}
    with pytest.raises(TaskFailure, match="SQL query failed.*Duplicate entry"):
        run("    type: io.kestra.plugin.jdbc.mysql.Queries\n" + body
            + "    sql: INSERT INTO items (id) VALUES (3); INSERT INTO items (id) VALUES (1);\n", ctx)
    assert run("    type: io.kestra.plugin.jdbc.mysql.Query\n" + body
               + "    sql: SELECT count(*) AS n FROM items\n    fetchType: FETCH_ONE\n", ctx)["row"] == {"n": 2}
    with pytest.raises(TaskFailure, match="Unable to connect.*Access denied"):
        run(f"""    type: io.kestra.plugin.jdbc.mysql.Query
    url: {my_url}
    username: root
    password: wrong-password
    sql: SELECT 1
""", ctx)


# --- SQLite ---------------------------------------------------------------------------------------------

def test_sqlite_file_queries_and_database_files(tmp_path: Path) -> None:
    ctx = Ctx()
    url = f"jdbc:sqlite:{tmp_path / 'app.db'}"
    run(f"""    type: io.kestra.plugin.jdbc.sqlite.Queries
    url: {url}
    sql: |
      CREATE TABLE t (id INTEGER, name TEXT, score REAL);
      INSERT INTO t VALUES (1, 'x', 1.5), (2, 'y', NULL);
""", ctx)
    out = run(f"""    type: io.kestra.plugin.jdbc.sqlite.Query
    url: {url}
    sql: SELECT * FROM t WHERE id >= :low ORDER BY id
    parameters:
      low: 1
    fetchType: FETCH
""", ctx)
    assert out == {"rows": [{"id": 1, "name": "x", "score": 1.5}, {"id": 2, "name": "y", "score": None}], "size": 2}
    # a database of internal storage, changed and given back
    uri = ctx.platform.put_file((tmp_path / "app.db").read_bytes(), "app.db")
    changed = run(f"""    type: io.kestra.plugin.jdbc.sqlite.Query
    sqliteFile: "{uri}"
    outputDbFile: true
    sql: DELETE FROM t WHERE id = 1
""", ctx)
    target = tmp_path / "back.db"
    target.write_bytes(ctx.platform.read_file(changed["databaseUri"]))
    import sqlite3

    assert sqlite3.connect(target).execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert len(list(tmp_path.iterdir())) == 2  # no working directory left behind
    with pytest.raises(TaskFailure, match="SQL query failed: no such table: nope"):
        run(f"    type: io.kestra.plugin.jdbc.sqlite.Query\n    url: {url}\n    sql: SELECT * FROM nope\n", ctx)


# --- DuckDB ---------------------------------------------------------------------------------------------

def test_duckdb_input_and_output_files(tmp_path: Path) -> None:
    ctx = Ctx()
    csv = ctx.platform.put_file(b"id,amount\n1,2.5\n2,4\n", "in.csv")
    out = run(f"""    type: io.kestra.plugin.jdbc.duckdb.Queries
    inputFiles:
      data.csv: "{csv}"
    outputFiles:
      - out.csv
    sql: |
      CREATE TABLE d AS SELECT * FROM read_csv_auto('data.csv');
      COPY (SELECT id * 10 AS id FROM d ORDER BY id) TO '{{{{ outputFiles["out.csv"] }}}}' (HEADER);
      SELECT sum(amount) AS total, {{'k': 1}} AS s, [1, 2] AS l, DATE '2024-01-01' AS day,
        TIMESTAMP '2024-01-01 10:00:00' AS ts, TIMESTAMPTZ '2024-01-01 10:00:00+02' AS tz FROM d;
    fetchType: FETCH_ONE
    timeZoneId: Etc/UTC
""", ctx)
    assert out["outputs"] == [{"row": {"total": 6.5, "s": {"k": 1}, "l": [1, 2], "day": "2024-01-01",
                                       "ts": "2024-01-01T10:00:00Z", "tz": "2024-01-01T08:00:00Z"}, "size": 1}]
    assert read(ctx, out["outputFiles"]["out.csv"]) == "id\n10\n20\n"


def test_duckdb_file_database_store_and_errors(tmp_path: Path) -> None:
    ctx = Ctx()
    url = f"jdbc:duckdb:{tmp_path / 'w.duckdb'}"
    run(f"""    type: io.kestra.plugin.jdbc.duckdb.Queries
    url: {url}
    sql: |
      CREATE TABLE w (id INTEGER, doc JSON); INSERT INTO w VALUES (1, '{{"a": [1]}}'), (2, NULL);
""", ctx)
    stored = run(f"""    type: io.kestra.plugin.jdbc.duckdb.Query
    url: {url}
    sql: SELECT * FROM w WHERE id <= :max ORDER BY id
    parameters:
      max: 5
    fetchType: STORE
""", ctx)
    assert stored["size"] == 2
    assert ion_rows(ctx, stored["uri"]) == [{"id": 1, "doc": {"a": [1]}}, {"id": 2, "doc": None}]
    with pytest.raises(TaskFailure, match="SQL query failed on statement 2"):
        run(f"""    type: io.kestra.plugin.jdbc.duckdb.Queries
    url: {url}
    sql: INSERT INTO w VALUES (3, NULL); SELECT * FROM nowhere;
""", ctx)
    count = run(f"    type: io.kestra.plugin.jdbc.duckdb.Query\n    url: {url}\n"
                "    sql: SELECT count(*) AS n FROM w\n    fetchType: FETCH_ONE\n", ctx)
    assert count["row"] == {"n": 2}  # the failed Queries rolled its INSERT back


def test_flow_validation_reports_bad_properties() -> None:
    from orchestrator.engine.errors import CelestraError
    from orchestrator.engine.flow import parse_flow

    with pytest.raises(CelestraError, match="fetchTyp"):
        parse_flow("id: f\nnamespace: company.team\ntasks:\n  - id: q\n    type: io.kestra.plugin.jdbc.sqlite.Query\n"
                   "    sql: SELECT 1\n    fetchTyp: FETCH\n")
    with pytest.raises(CelestraError, match="url"):
        parse_flow("id: f\nnamespace: company.team\ntasks:\n  - id: q\n    type: io.kestra.plugin.jdbc.postgresql.Query\n"
                   "    sql: SELECT 1\n")



# --- kill and timeout -----------------------------------------------------------------------------------

class KillableCtx(Ctx):
    """A run context with a worker's kill flag."""

    def __init__(self, **kwargs: Any):
        import threading

        super().__init__(**kwargs)
        self.killed = threading.Event()

    def kill_when(self, condition: Any) -> None:
        import threading
        import time

        def watch() -> None:
            deadline = time.monotonic() + 30
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.killed.set()

        threading.Thread(target=watch, daemon=True).start()


def _pg_sleeping() -> bool:
    with psycopg.connect(host=PG_HOST, port=5432, user="postgres", dbname=DB) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'"
                                 " AND state = 'active'").fetchone()[0])


def _my_sleeping() -> bool:
    conn = pymysql.connect(host=MY_HOST, port=3306, user="root", password="")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT sleep(60)%'")
            return bool(cursor.fetchone()[0])
    finally:
        conn.close()


def test_killing_the_attempt_cancels_the_running_statement(pg_url: str, my_url: str) -> None:
    from orchestrator.engine.errors import TaskKilled

    ctx = KillableCtx()
    ctx.kill_when(_pg_sleeping)
    with pytest.raises(TaskKilled, match="Killed"):
        run(f"    type: io.kestra.plugin.jdbc.postgresql.Query\n    url: {pg_url}\n    username: postgres\n"
            "    sql: SELECT pg_sleep(60)\n", ctx)
    ctx = KillableCtx()
    ctx.kill_when(_my_sleeping)
    with pytest.raises(TaskKilled, match="Killed"):
        run(f"    type: io.kestra.plugin.jdbc.mysql.Queries\n    url: {my_url}\n    username: root\n"
            "    sql: SELECT sleep(60); SELECT 1;\n", ctx)
    ctx = KillableCtx()
    ctx.kill_when(lambda: True)
    with pytest.raises(TaskKilled, match="Killed"):
        run("    type: io.kestra.plugin.jdbc.duckdb.Query\n"
            "    sql: SELECT count(*) FROM range(100000000000) a\n", ctx)


def test_postgres_ssl_properties_reach_libpq(pg_url: str) -> None:
    # the server here has no TLS: sslMode REQUIRE must fail, DISABLE must work, and PEM files go
    import glob
    import tempfile

    def pem_dirs() -> set[str]:
        return set(glob.glob(os.path.join(tempfile.gettempdir(), "celestra-pg-*")))

    before = pem_dirs()
    ctx = Ctx()
    body = f"""    type: io.kestra.plugin.jdbc.postgresql.Query
    url: {pg_url}
    username: postgres
    sql: SELECT 1 AS one
    fetchType: FETCH_ONE
"""
    with pytest.raises(TaskFailure, match="Unable to connect.*SSL"):
        run(body + "    sslMode: REQUIRE\n", ctx)
    assert run(body + "    sslMode: DISABLE\n    sslRootCert: |\n      -----BEGIN CERTIFICATE-----\n", ctx)["row"] == {"one": 1}
    assert pem_dirs() == before
