"""Polling triggers: ``http.Trigger`` against an HTTP endpoint of the test's own, ``aws.s3.Trigger`` against a
local S3 server; trigger state in the database, compare-and-set claims, items fired once.

The polls are run with explicit dates in the future (the stored next poll is moved there first), so that
a timer sweep running in the background with the real clock never polls these triggers itself; one test
lets the real sweep poll, end to end.
"""
from __future__ import annotations

import json
import textwrap
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from flows_app import models
from flows_app.services import deploy_flow, wait_for
from orchestrator.runtime import polling
from orchestrator.runtime.flows import clear_cache

FUTURE = datetime(datetime.now(timezone.utc).year + 2, 1, 1, tzinfo=timezone.utc)


class Endpoint:
    """An HTTP server on a free port answering ``{"status": ...}`` and counting its calls."""

    def __init__(self) -> None:
        self.status = "pending"
        self.calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.calls += 1
                body = json.dumps({"status": owner.status}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def ns(transactional_db) -> Iterator[str]:
    from tests.conftest import wait_until_idle

    clear_cache()
    yield f"company.poll{uuid.uuid4().hex[:8]}"
    wait_until_idle()  # a runtime of the session may be running what the polls created: let it end


def deploy(namespace: str, flow_id: str, body: str) -> None:
    deploy_flow(f"id: {flow_id}\nnamespace: {namespace}\n" + textwrap.dedent(body))


def state(namespace: str, flow_id: str, trigger_id: str = "poll") -> models.TriggerState:
    return models.TriggerState.objects.get(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, condition_id="")


def plan(namespace: str, flow_id: str, moment: datetime, trigger_id: str = "poll") -> None:
    """Move the next poll to ``moment`` (out of reach of a background sweep on the real clock)."""
    models.TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).update(
        next_execution_date=moment)


def tick(namespace: str, flow_id: str, moment: datetime, trigger_id: str = "poll") -> list[str]:
    row = state(namespace, flow_id, trigger_id)
    if row.next_execution_date is None or row.next_execution_date > moment:
        return []
    return polling.poll_one(row.pk, row.next_execution_date, moment)


def executions(namespace: str, flow_id: str) -> list[models.Execution]:
    return list(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id).order_by("created", "id"))


HTTP_FLOW = """\
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.body }}}}"
triggers:
  - id: poll
    type: io.kestra.plugin.core.http.Trigger
    uri: {url}
    interval: PT10M
    responseCondition: "{{{{ response.statusCode == 200 and (response.body | jq('.status') | first) == 'ready' }}}}"
    allowConcurrent: true
"""


def test_http_trigger_fires_when_the_condition_holds(ns: str, endpoint: Endpoint) -> None:
    deploy(ns, "watch", HTTP_FLOW.format(url=endpoint.url))
    assert state(ns, "watch").type == "io.kestra.plugin.core.http.Trigger"
    plan(ns, "watch", FUTURE)
    assert tick(ns, "watch", FUTURE) == [] and endpoint.calls == 1  # polled: not ready yet
    assert state(ns, "watch").next_execution_date == FUTURE + timedelta(minutes=10)
    endpoint.status = "ready"
    assert tick(ns, "watch", FUTURE + timedelta(minutes=5)) == [] and endpoint.calls == 1  # not due
    created = tick(ns, "watch", FUTURE + timedelta(minutes=10))
    assert len(created) == 1 and endpoint.calls == 2
    execution = models.Execution.objects.get(pk=created[0])
    assert execution.trigger["id"] == "poll" and execution.trigger["type"] == "io.kestra.plugin.core.http.Trigger"
    assert execution.trigger["variables"]["code"] == 200
    assert json.loads(execution.trigger["variables"]["body"]) == {"status": "ready"}
    assert len(tick(ns, "watch", FUTURE + timedelta(minutes=20))) == 1  # no items: each true poll fires


def test_one_poll_per_interval_across_scheduler_replicas(ns: str, endpoint: Endpoint) -> None:
    endpoint.status = "ready"
    deploy(ns, "watch", HTTP_FLOW.format(url=endpoint.url))
    plan(ns, "watch", FUTURE)
    row = state(ns, "watch")
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def replica() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(polling.poll_one(row.pk, row.next_execution_date, FUTURE))
        finally:
            connection.close()

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]  # one replica won the compare-and-set
    assert endpoint.calls == 1 and len(executions(ns, "watch")) == 1


def test_the_lock_holds_while_the_execution_runs(ns: str, endpoint: Endpoint) -> None:
    endpoint.status = "ready"
    flow = HTTP_FLOW.format(url=endpoint.url).replace("    allowConcurrent: true\n", "")
    # the execution pauses: it cannot end by itself, even when a runtime of the session runs it
    paused = flow.replace("type: io.kestra.plugin.core.log.Log\n    message: \"{{ trigger.body }}\"",
                          "type: io.kestra.plugin.core.flow.Pause")
    assert "Pause" in paused
    deploy(ns, "watch", paused)
    plan(ns, "watch", FUTURE)
    first = tick(ns, "watch", FUTURE)
    assert len(first) == 1 and state(ns, "watch").execution_id == first[0]
    assert tick(ns, "watch", FUTURE + timedelta(minutes=10)) == []  # still locked: nothing created
    models.Execution.objects.filter(pk=first[0]).update(state="SUCCESS")
    assert len(tick(ns, "watch", FUTURE + timedelta(minutes=20))) == 1


def test_http_trigger_end_to_end_with_the_sweep(runtime, ns: str, endpoint: Endpoint) -> None:
    endpoint.status = "ready"
    deploy(ns, "watch", HTTP_FLOW.format(url=endpoint.url).replace("PT10M", "PT1S").replace(
        "    allowConcurrent: true\n", "    stopAfter: [SUCCESS]\n"))
    deadline = time.monotonic() + 60
    while not executions(ns, "watch"):
        assert time.monotonic() < deadline, "the sweep did not poll the trigger"
        time.sleep(0.1)
    execution = wait_for(executions(ns, "watch")[0].id, timeout=60)
    assert execution.state.current == "SUCCESS"
    while not state(ns, "watch").disabled:  # stopAfter: SUCCESS disables the trigger
        assert time.monotonic() < deadline, "stopAfter did not disable the trigger"
        time.sleep(0.1)
    assert polling.poll_one(state(ns, "watch").pk, state(ns, "watch").next_execution_date,
                            datetime.now(timezone.utc) + timedelta(hours=1)) == []  # disabled: no more polls


# --- S3 ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from tests.plugins.test_s3 import s3_server

    with s3_server() as url:
        yield url


def s3_flow(endpoint: str, bucket: str, action: str) -> str:
    return f"""\
        tasks:
          - id: each
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ trigger.objects | jq('.[].key') }}}}"
        triggers:
          - id: poll
            type: io.kestra.plugin.aws.s3.Trigger
            endpointOverride: {endpoint}
            region: us-east-1
            accessKeyId: test
            secretKeyId: test
            bucket: {bucket}
            prefix: in/
            interval: PT5M
            action: {action}
            allowConcurrent: true
        """


def test_s3_trigger_fires_each_new_object_once(ns: str, s3_endpoint: str) -> None:
    from tests.plugins.test_s3 import boto

    s3 = boto(s3_endpoint)
    bucket = "poll-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a")
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=b"bb")
    s3.put_object(Bucket=bucket, Key="other/c.csv", Body=b"c")
    deploy(ns, "files", s3_flow(s3_endpoint, bucket, "NONE"))
    plan(ns, "files", FUTURE)
    first = tick(ns, "files", FUTURE)
    assert len(first) == 1
    objects = models.Execution.objects.get(pk=first[0]).trigger["variables"]["objects"]
    assert sorted((o["key"], o["size"]) for o in objects) == [("in/a.csv", 1), ("in/b.csv", 2)]
    from storage_app.storage import get

    assert sorted(get(o["uri"]) for o in objects) == [b"a", b"bb"]  # downloaded for the execution
    from orchestrator.runtime.platform import Platform

    task_platform = Platform(ns, "files", first[0], "each", "run1")  # a task of the execution may read them
    assert sorted(task_platform.read_file(o["uri"]) for o in objects) == [b"a", b"bb"]
    assert tick(ns, "files", FUTURE + timedelta(minutes=5)) == []  # already fired
    clear_cache()  # as after a restart: only the database remembers
    assert tick(ns, "files", FUTURE + timedelta(minutes=10)) == []
    s3.put_object(Bucket=bucket, Key="in/d.csv", Body=b"dddd")
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"changed")  # updated: CREATE_OR_UPDATE fires it
    again = tick(ns, "files", FUTURE + timedelta(minutes=15))
    assert len(again) == 1
    keys = sorted(o["key"] for o in models.Execution.objects.get(pk=again[0]).trigger["variables"]["objects"])
    assert keys == ["in/a.csv", "in/d.csv"]
    assert sorted(state(ns, "files").results["seen"]) == ["in/a.csv", "in/b.csv", "in/d.csv"]


def test_s3_trigger_moves_what_it_fired(ns: str, s3_endpoint: str) -> None:
    from tests.plugins.test_s3 import boto

    s3 = boto(s3_endpoint)
    bucket = "move-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a")
    deploy(ns, "files", s3_flow(s3_endpoint, bucket, "MOVE\n            moveTo:\n              key: archive"))
    plan(ns, "files", FUTURE)
    assert len(tick(ns, "files", FUTURE)) == 1
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == ["archive/a.csv"]
    assert tick(ns, "files", FUTURE + timedelta(minutes=5)) == []


# --- local files ----------------------------------------------------------------------------------------

def test_local_files_trigger_fires_new_and_changed_files_then_moves_them(ns: str, tmp_path, settings) -> None:
    import os

    watched, archive = tmp_path / "in", tmp_path / "archive"
    watched.mkdir()
    settings.CELESTRA = {**settings.CELESTRA, "LOCAL_FILES_ALLOWED_PATHS": [str(tmp_path)]}
    (watched / "a.csv").write_text("a")
    (watched / "skip.txt").write_text("x")
    deploy(ns, "files", f"""\
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ trigger.count }}}}"
        triggers:
          - id: poll
            type: io.kestra.plugin.fs.local.Trigger
            from: {watched}
            regExp: .*\\.csv
            interval: PT1M
            allowConcurrent: true
        """)
    plan(ns, "files", FUTURE)
    first = tick(ns, "files", FUTURE)
    variables = models.Execution.objects.get(pk=first[0]).trigger["variables"]
    assert variables["count"] == 1
    assert [(f["name"], f["changeType"], f["size"]) for f in variables["files"]] == [("a.csv", "CREATE", 1)]
    assert tick(ns, "files", FUTURE + timedelta(minutes=1)) == []
    (watched / "a.csv").write_text("changed")
    stat = (watched / "a.csv").stat()
    os.utime(watched / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = tick(ns, "files", FUTURE + timedelta(minutes=2))
    changed = models.Execution.objects.get(pk=second[0]).trigger["variables"]["files"]
    assert [(f["name"], f["changeType"]) for f in changed] == [("a.csv", "UPDATE")]

    deploy(ns, "moved", f"""\
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: moved
        triggers:
          - id: poll
            type: io.kestra.plugin.fs.local.Trigger
            from: {watched}
            action: MOVE
            moveDirectory: {archive}
            allowConcurrent: true
        """)
    plan(ns, "moved", FUTURE)
    assert len(tick(ns, "moved", FUTURE)) == 1
    assert sorted(p.name for p in archive.iterdir()) == ["a.csv", "skip.txt"] and not list(watched.iterdir())


def test_local_files_trigger_refuses_paths_not_allowed(ns: str, tmp_path, settings) -> None:
    settings.CELESTRA = {**settings.CELESTRA, "LOCAL_FILES_ALLOWED_PATHS": []}
    deploy(ns, "files", f"""\
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: x
        triggers:
          - id: poll
            type: io.kestra.plugin.fs.local.Trigger
            from: {tmp_path}
        """)
    plan(ns, "files", FUTURE)
    assert tick(ns, "files", FUTURE) == []
    logged = models.LogEntry.objects.filter(namespace=ns, flow_id="files", level="ERROR").values_list("message",
                                                                                                       flat=True)
    assert any("is not authorized" in message for message in logged)


# --- SQL ------------------------------------------------------------------------------------------------

def sql_flow(kind: str, url: str, extra: str = "") -> str:
    return f"""\
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ trigger.rows }}}}"
        triggers:
          - id: poll
            type: io.kestra.plugin.jdbc.{kind}.Trigger
            url: {url}
{extra}            sql: SELECT id, name FROM jobs WHERE done = 0 ORDER BY id
            afterSQL: UPDATE jobs SET done = 1 WHERE done = 0
            fetchType: FETCH
            interval: PT1M
            allowConcurrent: true
        """


def test_sqlite_trigger_fires_when_the_query_returns_rows(ns: str, tmp_path) -> None:
    import sqlite3

    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE jobs (id INTEGER, name TEXT, done INTEGER)")
        db.execute("INSERT INTO jobs VALUES (1, 'a', 0), (2, 'b', 0)")
    deploy(ns, "jobs", sql_flow("sqlite", f"jdbc:sqlite:{path}"))
    plan(ns, "jobs", FUTURE)
    first = tick(ns, "jobs", FUTURE)
    variables = models.Execution.objects.get(pk=first[0]).trigger["variables"]
    assert variables["size"] == 2 and variables["rows"] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert tick(ns, "jobs", FUTURE + timedelta(minutes=1)) == []  # afterSQL marked them: no rows
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO jobs VALUES (3, 'c', 0)")
    again = tick(ns, "jobs", FUTURE + timedelta(minutes=2))
    assert models.Execution.objects.get(pk=again[0]).trigger["variables"]["rows"] == [{"id": 3, "name": "c"}]


def test_postgresql_trigger_stores_rows(ns: str) -> None:
    import psycopg

    from orchestrator.runtime.platform import Platform

    name = "celestra_plugins_b_sqltrigger"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f"CREATE DATABASE {name}")
    table = "jobs_" + uuid.uuid4().hex[:8]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as db:
        db.execute(f"CREATE TABLE {table} (id int, name text, done int)")
        db.execute(f"INSERT INTO {table} VALUES (1, 'a', 0)")
    try:
        flow = sql_flow("postgresql", f"jdbc:postgresql://127.0.0.1:5432/{name}", "            username: postgres\n")
        deploy(ns, "jobs", flow.replace("FROM jobs", f"FROM {table}").replace("UPDATE jobs", f"UPDATE {table}")
               .replace("fetchType: FETCH", "fetchType: STORE"))
        plan(ns, "jobs", FUTURE)
        first = tick(ns, "jobs", FUTURE)
        variables = models.Execution.objects.get(pk=first[0]).trigger["variables"]
        assert variables["size"] == 1 and variables["uri"].endswith(".ion")
        stored = Platform(ns, "jobs", first[0], "log", "run1").read_file(variables["uri"]).decode()
        assert stored.strip() == '{id:1,name:"a"}'
        assert tick(ns, "jobs", FUTURE + timedelta(minutes=1)) == []
    finally:
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as db:
            db.execute(f"DROP TABLE {table}")
