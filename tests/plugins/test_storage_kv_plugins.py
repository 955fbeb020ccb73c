"""Platform-backed core tasks: KV, state, storage, namespace files, log fetch/purge, templating, Count/Purge.

Most tests run the plugins on a :class:`MemoryPlatform`; the ``django_db`` ones use the database
platform (``orchestrator.runtime.platform.Platform``) with a temporary storage directory, and one
runs flows end to end through the runtime.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import KVValue, MemoryPlatform, glob_match, slugify
from orchestrator.plugins.core.storage import ion_dumps, ion_line, ion_loads
from orchestrator.testing import TaskContext, parse_task, run_task

NS = "company.team"


#: the shared run context of plugin tests (real expressions, in-memory platform)
Ctx = TaskContext
task = parse_task
run = run_task


def read(ctx: Ctx, uri: str) -> str:
    return ctx.platform.read_file(uri).decode("utf-8")


# --- helpers ----------------------------------------------------------------------------------------------

def test_slugify_and_globs() -> None:
    assert slugify("My Task.v2") == "my-taskv2"
    assert glob_match("out/*", "out/stay.txt")
    assert not glob_match("out/*", "out/a/b.txt")
    assert glob_match("out/**", "out/a/b.txt")
    assert glob_match("{a,b}.txt", "b.txt")
    assert glob_match("/sql/*.sql", "/sql/q.sql")


def test_ion_round_trip_and_reader() -> None:
    record = {"id": 1, "name": 'say "hi"', "tags": ["a", None], "ok": True, "x y": 1.5,
              "at": datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)}
    text = ion_dumps(record)
    assert text == ('{id:1,name:"say \\"hi\\"",tags:["a",null],ok:true,\'x y\':1.5e0,'
                    'at:2024-01-02T03:04:05.123Z}')
    assert ion_line(text) == {**record, "at": "2024-01-02T03:04:05.123Z"}
    values = ion_loads("a::{b:1, 'c':'''x''' '''y''', d:0x10, e:1.5d1} // comment\n[1,2] /* c */ null.int")
    assert values == [{"b": 1, "c": "xy", "d": 16, "e": 15.0}, [1, 2], None]


# --- KV -------------------------------------------------------------------------------------------------

def test_kv_set_get_typed_values() -> None:
    ctx = Ctx(count=3)
    assert run("    type: io.kestra.plugin.core.kv.Set\n    key: number\n    value: '{{ count }}'\n", ctx) is None
    run("    type: io.kestra.plugin.core.kv.Set\n    key: text\n    value: hello {{ count }}\n", ctx)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: json\n    value: '{\"a\": [1, 2]}'\n    kvType: JSON\n", ctx)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: when\n    value: '2024-01-02T03:04:05+01:00'\n"
        "    kvType: DATETIME\n", ctx)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: flag\n    value: 'TRUE'\n    kvType: BOOLEAN\n", ctx)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: wait\n    value: PT90S\n    kvType: DURATION\n", ctx)
    kv = ctx.platform.kv
    assert (kv[(NS, "number")].value, kv[(NS, "number")].type) == (3, "NUMBER")
    assert (kv[(NS, "text")].value, kv[(NS, "text")].type) == ("hello 3", "STRING")
    assert (kv[(NS, "json")].value, kv[(NS, "json")].type) == ({"a": [1, 2]}, "JSON")
    assert (kv[(NS, "when")].value, kv[(NS, "when")].type) == ("2024-01-02T02:04:05Z", "DATETIME")
    assert kv[(NS, "flag")].value is True
    assert kv[(NS, "wait")].value == "PT1M30S"
    assert run("    type: io.kestra.plugin.core.kv.Get\n    key: json\n", ctx) == {"value": {"a": [1, 2]}}
    assert run("    type: io.kestra.plugin.core.kv.Get\n    key: nope\n", ctx) == {"value": None}


def test_kv_namespace_overwrite_ttl_and_errors() -> None:
    ctx = Ctx()
    run("    type: io.kestra.plugin.core.kv.Set\n    key: k\n    value: v1\n    namespace: company\n", ctx)
    assert ctx.platform.kv[("company", "k")].value == "v1"
    with pytest.raises(TaskFailure, match="Key already exists and `overwrite` is set to `false`"):
        run("    type: io.kestra.plugin.core.kv.Set\n    key: k\n    value: v2\n    namespace: company\n"
            "    overwrite: false\n", ctx)
    with pytest.raises(TaskFailure, match="No value found for key 'k' in namespace 'company.team'"):
        run("    type: io.kestra.plugin.core.kv.Get\n    key: k\n    errorOnMissing: true\n", ctx)
    with pytest.raises(TaskFailure, match="Key must start with an alphanumeric character"):
        run("    type: io.kestra.plugin.core.kv.Set\n    key: _bad\n    value: x\n", ctx)
    with pytest.raises(TaskFailure, match="Unable to read the value `abc` as NUMBER"):
        run("    type: io.kestra.plugin.core.kv.Set\n    key: n\n    value: abc\n    kvType: NUMBER\n", ctx)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: short\n    value: x\n    ttl: PT1H\n", ctx)
    entry = ctx.platform.kv[(NS, "short")]
    assert entry.expires is not None and entry.expires > datetime.now(timezone.utc) + timedelta(minutes=59)
    entry.expires = datetime.now(timezone.utc) - timedelta(seconds=1)  # now expired: reads as missing
    assert run("    type: io.kestra.plugin.core.kv.Get\n    key: short\n", ctx) == {"value": None}


def test_kv_delete_and_get_keys() -> None:
    ctx = Ctx()
    platform = ctx.platform
    for key in ("app.a", "app.b", "other"):
        platform.kv_set(key, 1)
    platform.kv[(NS, "gone")] = KVValue("x", expires=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert run("    type: io.kestra.plugin.core.kv.GetKeys\n", ctx) == {"keys": ["app.a", "app.b", "other"]}
    assert run("    type: io.kestra.plugin.core.kv.GetKeys\n    prefix: app.\n", ctx) == {"keys": ["app.a", "app.b"]}
    assert run("    type: io.kestra.plugin.core.kv.GetKeys\n    namespace: company\n", ctx) == {"keys": []}
    assert run("    type: io.kestra.plugin.core.kv.Delete\n    key: app.a\n", ctx) == {"deleted": True}
    assert run("    type: io.kestra.plugin.core.kv.Delete\n    key: app.a\n", ctx) == {"deleted": False}
    with pytest.raises(TaskFailure, match="`errorOnMissing` is set to true"):
        run("    type: io.kestra.plugin.core.kv.Delete\n    key: app.a\n    errorOnMissing: true\n", ctx)


# --- state (deprecated) ---------------------------------------------------------------------------------

def test_state_set_get_delete_merges_and_scopes_by_taskrun_value() -> None:
    ctx = Ctx(taskrun={"id": "run1", "value": "v1"})
    out = run("    type: io.kestra.plugin.core.state.Set\n    name: st\n    data:\n      a: 1\n"
              "      nested: {x: 1}\n", ctx)
    assert out["count"] == 2 and out["key"].startswith("kestra:///company/team/flow/states/st/")
    run("    type: io.kestra.plugin.core.state.Set\n    name: st\n    data:\n      b: '{{ taskrun.value }}'\n"
        "      nested: {y: 2}\n", ctx)
    got = run("    type: io.kestra.plugin.core.state.Get\n    name: st\n", ctx)
    assert got == {"count": 3, "data": {"a": 1, "b": "v1", "nested": {"x": 1, "y": 2}}}
    other_value = Ctx(ctx.platform, taskrun={"id": "run2", "value": "v2"})
    assert run("    type: io.kestra.plugin.core.state.Get\n    name: st\n", other_value) == {"count": 0, "data": {}}
    with pytest.raises(TaskFailure, match="Unable to find the state file 'st'"):
        run("    type: io.kestra.plugin.core.state.Get\n    name: st\n    errorOnMissing: true\n", other_value)
    assert run("    type: io.kestra.plugin.core.state.Delete\n    name: st\n", ctx) == {"deleted": True}
    assert run("    type: io.kestra.plugin.core.state.Delete\n    name: st\n", ctx) == {"deleted": False}


def test_state_namespace_scope_is_shared_between_flows() -> None:
    ctx = Ctx()
    run("    type: io.kestra.plugin.core.state.Set\n    name: shared\n    namespace: true\n    data: {k: v}\n", ctx)
    other_flow = Ctx(ctx.platform.share(flow_id="another", execution_id="exec2", taskrun_id="run9"))
    got = run("    type: io.kestra.plugin.core.state.Get\n    name: shared\n    namespace: true\n", other_flow)
    assert got == {"count": 1, "data": {"k": "v"}}


# --- storage --------------------------------------------------------------------------------------------

def test_write_size_delete() -> None:
    ctx = Ctx()
    uri = run("    type: io.kestra.plugin.core.storage.Write\n    content: 'hé {{ execution.id }}'\n"
              "    extension: .txt\n", ctx)["uri"]
    assert uri.startswith("kestra:///company/team/flow/executions/exec1/tasks/task/run1/") and uri.endswith(".txt")
    assert read(ctx, uri) == "hé exec1"
    ctx.variables["f"] = uri
    assert run("    type: io.kestra.plugin.core.storage.Size\n    uri: '{{ f }}'\n", ctx) == {"size": 9}
    deleted = run("    type: io.kestra.plugin.core.storage.Delete\n    uri: '{{ f }}'\n", ctx)
    assert deleted == {"uri": uri, "deleted": True}
    assert run("    type: io.kestra.plugin.core.storage.Delete\n    uri: '{{ f }}'\n", ctx)["deleted"] is False
    with pytest.raises(TaskFailure, match="Unable to find file"):
        run("    type: io.kestra.plugin.core.storage.Delete\n    uri: '{{ f }}'\n    errorOnMissing: true\n", ctx)


def test_concat_list_and_json_string() -> None:
    ctx = Ctx()
    a = ctx.platform.put_file(b"a", "a.txt")
    b = ctx.platform.put_file(b"b", "b.txt")
    ctx.variables.update(a=a, b=b, all=[a, b])
    out = run("    type: io.kestra.plugin.core.storage.Concat\n    files:\n      - '{{ a }}'\n      - '{{ b }}'\n"
              "    separator: '|'\n    extension: .csv\n", ctx)
    assert out["uri"].endswith(".csv") and read(ctx, out["uri"]) == "a|b|"
    out = run("    type: io.kestra.plugin.core.storage.Concat\n    files: '{{ all | json }}'\n", ctx)
    assert read(ctx, out["uri"]) == "ab"


def test_split_by_rows_partitions_and_bytes() -> None:
    ctx = Ctx()
    ctx.variables["f"] = ctx.platform.put_file("\n".join(f"line{i}" for i in range(1, 6)) + "\n", "in.csv")
    rows = run("    type: io.kestra.plugin.core.storage.Split\n    from: '{{ f }}'\n    rows: 2\n", ctx)["uris"]
    assert [read(ctx, u) for u in rows] == ["line1\nline2\n", "line3\nline4\n", "line5\n"]
    assert all(u.endswith(".csv") for u in rows)
    parts = run("    type: io.kestra.plugin.core.storage.Split\n    from: '{{ f }}'\n    partitions: 2\n", ctx)["uris"]
    assert [read(ctx, u) for u in parts] == ["line1\nline3\nline5\n", "line2\nline4\n"]
    sized = run("    type: io.kestra.plugin.core.storage.Split\n    from: '{{ f }}'\n    bytes: '12'\n", ctx)["uris"]
    assert [read(ctx, u) for u in sized] == ["line1\nline2\n", "line3\nline4\n", "line5\n"]
    with pytest.raises(Exception, match="Exactly one of"):
        task("    type: io.kestra.plugin.core.storage.Split\n    from: x\n    rows: 1\n    partitions: 2\n")


def test_reverse() -> None:
    ctx = Ctx()
    ctx.variables["f"] = ctx.platform.put_file(b"1\r\n2\n3", "in.txt")
    out = run("    type: io.kestra.plugin.core.storage.Reverse\n    from: '{{ f }}'\n    separator: ';'\n", ctx)
    assert out["uri"].endswith(".txt") and read(ctx, out["uri"]) == "3;2;1;"


def test_deduplicate_items_keeps_last_per_key() -> None:
    ctx = Ctx()
    lines = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}, {"k": "c", "v": 4}, {"k": "b", "v": 5}]
    ctx.variables["f"] = ctx.platform.put_file("".join(ion_dumps(r) + "\n" for r in lines), "in.ion")
    out = run("    type: io.kestra.plugin.core.storage.DeduplicateItems\n    from: '{{ f }}'\n"
              "    expr: '{{ k }}'\n", ctx)
    assert [ion_line(l) for l in read(ctx, out["uri"]).splitlines()] == [lines[2], lines[3], lines[4]]
    assert (out["numKeys"], out["processedItemsTotal"], out["droppedItemsTotal"]) == (3, 5, 2)


def test_filter_items_include_exclude_and_errors() -> None:
    ctx = Ctx(limit=2)
    lines = [{"n": 1}, {"n": 2}, {"n": 3}, {"other": True}]
    ctx.variables["f"] = ctx.platform.put_file("".join(ion_dumps(r) + "\n" for r in lines), "in.ion")
    base = "    type: io.kestra.plugin.core.storage.FilterItems\n    from: '{{ f }}'\n"
    condition = "    filterCondition: '{{ n > limit }}'\n"
    with pytest.raises(Exception):  # `n` is undefined on the last item: FAIL by default
        run(base + condition, ctx)
    out = run(base + condition + "    errorOrNullBehavior: EXCLUDE\n", ctx)
    assert read(ctx, out["uri"]).splitlines() == ["{n:3}"]
    assert (out["processedItemsTotal"], out["droppedItemsTotal"]) == (4, 3)
    out = run(base + condition + "    filterType: EXCLUDE\n    errorOrNullBehavior: INCLUDE\n", ctx)
    assert read(ctx, out["uri"]).splitlines() == ["{n:1}", "{n:2}", "{other:true}"]


def test_local_files_with_and_without_working_dir(tmp_path: Path) -> None:
    ctx = Ctx(working_dir=str(tmp_path))
    ctx.variables["src"] = ctx.platform.put_file(b"from storage", "src.txt")
    out = run("    type: io.kestra.plugin.core.storage.LocalFiles\n    inputs:\n"
              "      out/a.txt: 'run {{ taskrun.id }}'\n"
              "      out/sub/b.txt: '{{ src }}'\n      c.txt: c\n", ctx)
    assert out == {"uris": {}}
    assert (tmp_path / "out" / "a.txt").read_text() == "run run1"
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "from storage"
    out = run("    type: io.kestra.plugin.core.storage.LocalFiles\n    outputs:\n      - out/*\n", ctx)
    assert list(out["uris"]) == ["out/a.txt"] and out["uris"]["out/a.txt"].endswith("-a.txt")
    assert read(ctx, out["uris"]["out/a.txt"]) == "run run1"
    alone = Ctx(ctx.platform)
    out = run("    type: io.kestra.plugin.core.storage.LocalFiles\n    inputs: '{\"x.txt\": \"X\"}'\n"
              "    outputs: ['**.txt']\n", alone)
    assert list(out["uris"]) == ["x.txt"] and read(alone, out["uris"]["x.txt"]) == "X"


def test_purge_current_execution_files_and_access_rules() -> None:
    ctx = Ctx()
    platform = ctx.platform
    mine = platform.put_file(b"1", "a.txt")
    other_task = platform.share(task_id="other", taskrun_id="run2").put_file(b"2", "b.txt")
    foreign = platform.share(namespace="elsewhere", execution_id="exec9").put_file(b"3", "c.txt")
    with pytest.raises(TaskFailure, match="it is not from the current execution/namespace"):
        platform.read_file(foreign)
    out = run("    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles\n", ctx)
    assert sorted(out["uris"]) == sorted([mine, other_task])
    assert platform.execution_files() == []
    assert platform.share(namespace="elsewhere", execution_id="exec9").read_file(foreign) == b"3"


# --- namespace files -------------------------------------------------------------------------------------

def test_namespace_upload_download_delete(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "q.sql").write_text("select 1")
    (tmp_path / "readme.md").write_text("doc")
    ctx = Ctx(working_dir=str(tmp_path))
    ctx.variables["f"] = ctx.platform.put_file(b"stored", "data.csv")
    out = run("    type: io.kestra.plugin.core.namespace.UploadFiles\n    namespace: '{{ flow.namespace }}'\n"
              "    files:\n      - 'sql/**'\n      - '{{ f }}'\n    destination: /app\n", ctx)
    assert sorted(out["files"]) == ["/app/data.csv", "/app/sql/q.sql"]
    assert out["files"]["/app/sql/q.sql"] == "kestra:///company/team/_files/app/sql/q.sql"
    assert ctx.platform.read_file(out["files"]["/app/sql/q.sql"]) == b"select 1"
    out = run("    type: io.kestra.plugin.core.namespace.UploadFiles\n    namespace: company.team\n"
              "    filesMap:\n      /cfg/a.txt: '{{ f }}'\n      /cfg/b.txt: inline text\n", ctx)
    assert ctx.platform.nsfile_read(NS, "/cfg/b.txt") == b"inline text"
    with pytest.raises(TaskFailure, match="already exists"):
        run("    type: io.kestra.plugin.core.namespace.UploadFiles\n    namespace: company.team\n"
            "    filesMap:\n      /cfg/b.txt: again\n    conflict: ERROR\n", ctx)
    out = run("    type: io.kestra.plugin.core.namespace.UploadFiles\n    namespace: company.team\n"
              "    filesMap:\n      /cfg/b.txt: again\n    conflict: SKIP\n", ctx)
    assert out == {"files": {}} and ctx.platform.nsfile_read(NS, "/cfg/b.txt") == b"inline text"

    out = run("    type: io.kestra.plugin.core.namespace.DownloadFiles\n    namespace: company.team\n"
              "    files: /cfg/*\n", ctx)
    assert sorted(out["files"]) == ["/cfg/a.txt", "/cfg/b.txt"]
    assert read(ctx, out["files"]["/cfg/a.txt"]) == "stored"
    assert out["files"]["/cfg/a.txt"].endswith("/tasks/task/run1/cfg/a.txt")
    assert ("counter", "downloaded", 2.0, None) in ctx.metrics

    out = run("    type: io.kestra.plugin.core.namespace.DeleteFiles\n    namespace: company.team\n"
              "    files:\n      - '/app/**'\n", ctx)
    assert sorted(out["files"]) == ["/app/data.csv", "/app/sql/q.sql"]
    assert ctx.platform.nsfile_list(NS) == ["/cfg/a.txt", "/cfg/b.txt"]


# --- logs -----------------------------------------------------------------------------------------------

def _log(execution: str, task_id: str | None, level: str, message: str, second: int) -> dict[str, Any]:
    return {"namespace": NS, "flowId": "flow", "executionId": execution, "taskId": task_id, "level": level,
            "message": message, "timestamp": f"2024-01-01T00:00:{second:02d}Z", "taskRunId": None}


def test_log_fetch_filters_by_task_and_level() -> None:
    ctx = Ctx()
    ctx.platform.logs.extend([
        _log("exec1", None, "INFO", "Flow started", 0), _log("exec1", "t1", "INFO", "one", 1),
        _log("exec1", "t1", "DEBUG", "debug", 2), _log("exec1", "t2", "ERROR", "two", 3),
        _log("other", "t1", "INFO", "elsewhere", 4),
    ])
    out = run("    type: io.kestra.plugin.core.log.Fetch\n", ctx)
    assert out["size"] == 3 and out["uri"].endswith(".ion")
    records = [ion_line(l) for l in read(ctx, out["uri"]).splitlines()]
    assert [r["message"] for r in records] == ["Flow started", "one", "two"]
    assert records[1]["timestamp"] == "2024-01-01T00:00:01Z" and "taskRunId" not in records[1]
    assert run("    type: io.kestra.plugin.core.log.Fetch\n    tasksId: [t1]\n", ctx)["size"] == 1
    assert run("    type: io.kestra.plugin.core.log.Fetch\n    tasksId: [t1]\n    level: DEBUG\n", ctx)["size"] == 2
    assert run("    type: io.kestra.plugin.core.log.Fetch\n    level: ERROR\n", ctx)["size"] == 1
    assert run("    type: io.kestra.plugin.core.log.Fetch\n    executionId: other\n", ctx)["size"] == 1


def test_purge_logs() -> None:
    ctx = Ctx()
    ctx.platform.logs.extend([_log("e", "t", "INFO", "a", 1), _log("e", "t", "ERROR", "b", 2),
                              _log("e", "t", "INFO", "c", 40)])
    out = run("    type: io.kestra.plugin.core.log.PurgeLogs\n    logLevels: [INFO]\n"
              "    endDate: '2024-01-01T00:00:30Z'\n", ctx)
    assert out == {"count": 1}
    assert [l["message"] for l in ctx.platform.logs] == ["b", "c"]


# --- templating, executions -----------------------------------------------------------------------------

def test_templated_task_runs_the_rendered_task() -> None:
    ctx = Ctx(kind="Return", who="world")
    out = run("    type: io.kestra.plugin.core.templating.TemplatedTask\n    spec: |\n"
              "      type: io.kestra.plugin.core.debug.{{ kind }}\n      format: hello {{ '{{ who }}' }}\n", ctx)
    assert out == {"value": "hello world"}
    with pytest.raises(TaskFailure, match="must be a runnable task"):
        run("    type: io.kestra.plugin.core.templating.TemplatedTask\n    spec: |\n"
            "      type: io.kestra.plugin.core.flow.Sequential\n      tasks:\n        - id: a\n"
            "          type: io.kestra.plugin.core.log.Log\n          message: x\n", ctx)
    with pytest.raises(TaskFailure, match="with a `type`"):
        run("    type: io.kestra.plugin.core.templating.TemplatedTask\n    spec: 'just text'\n", ctx)


def _executions() -> list[dict[str, Any]]:
    day = "2024-01-0{}T10:00:00Z"
    return [{"id": "x1", "namespace": NS, "flowId": "a", "state": "SUCCESS", "startDate": day.format(1)},
            {"id": "x2", "namespace": NS, "flowId": "a", "state": "FAILED", "startDate": day.format(2)},
            {"id": "x3", "namespace": NS + ".sub", "flowId": "b", "state": "SUCCESS", "startDate": day.format(3)},
            {"id": "x4", "namespace": NS, "flowId": "a", "state": "RUNNING", "startDate": day.format(4)}]


def test_count_executions() -> None:
    ctx = Ctx(platform=MemoryPlatform(NS, "flow", "exec1", "task", "run1", executions=_executions()))
    out = run("    type: io.kestra.plugin.core.execution.Count\n    namespaces: [company.team]\n"
              "    startDate: '2024-01-01T00:00:00Z'\n    expression: '{{ count >= 1 }}'\n", ctx)
    assert out == {"results": [{"namespace": NS, "flowId": "a", "count": 3},
                               {"namespace": NS + ".sub", "flowId": "b", "count": 1}], "total": 4}
    out = run("    type: io.kestra.plugin.core.execution.Count\n    flows:\n"
              "      - {namespace: company.team, flowId: a}\n"
              "      - {namespace: company.team, flowId: zzz}\n    states: [SUCCESS]\n"
              "    startDate: '2024-01-01T00:00:00Z'\n    expression: '{{ count == 0 }}'\n", ctx)
    assert out == {"results": [{"namespace": NS, "flowId": "zzz", "count": 0}], "total": 0}


def test_purge_executions_only_terminated() -> None:
    platform = MemoryPlatform(NS, "flow", "exec1", "task", "run1", executions=_executions())
    platform.logs.append(_log("x1", "t", "INFO", "old", 1))
    platform.share(flow_id="a", execution_id="x1").put_file(b"x", "f.txt")
    ctx = Ctx(platform=platform)
    out = run("    type: io.kestra.plugin.core.execution.PurgeExecutions\n    namespace: company.team\n"
              "    flowId: a\n    endDate: '2024-02-01T00:00:00Z'\n", ctx)
    assert out == {"executionsCount": 2, "logsCount": 1, "storagesCount": 1, "metricsCount": 0}
    assert [e["id"] for e in platform.executions] == ["x3", "x4"]


# --- the database platform ------------------------------------------------------------------------------

@pytest.fixture
def storage_dir(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.mark.django_db
def test_database_platform_kv_storage_nsfiles_and_logs(storage_dir: Path) -> None:
    from flows_app.models import LogEntry
    from orchestrator.runtime.platform import Platform
    from storage_app.models import KVEntry, NamespaceFile

    platform = Platform(NS, "flow", "exec1", "task", "run1")
    ctx = Ctx(platform)
    run("    type: io.kestra.plugin.core.kv.Set\n    key: k\n    value: '{{ [1, 2] }}'\n    ttl: PT1H\n", ctx)
    entry = KVEntry.objects.get(namespace=NS, key="k")
    assert (entry.value, entry.type) == ([1, 2], "JSON") and entry.expires is not None
    assert run("    type: io.kestra.plugin.core.kv.Get\n    key: k\n", ctx) == {"value": [1, 2]}
    assert run("    type: io.kestra.plugin.core.kv.GetKeys\n", ctx) == {"keys": ["k"]}
    assert run("    type: io.kestra.plugin.core.kv.Delete\n    key: k\n", ctx) == {"deleted": True}

    uri = run("    type: io.kestra.plugin.core.storage.Write\n    content: abc\n    extension: .txt\n", ctx)["uri"]
    assert (storage_dir / Platform.path_of(uri)).read_bytes() == b"abc"
    assert platform.execution_files() == [uri]

    NamespaceFile.objects.create(namespace=NS, path="/q.sql", content=b"select 1")
    out = run("    type: io.kestra.plugin.core.namespace.DownloadFiles\n    namespace: company.team\n"
              "    files: ['*.sql']\n", ctx)
    assert platform.read_file(out["files"]["/q.sql"]) == b"select 1"
    assert platform.read_file("kestra:///company/team/_files/q.sql") == b"select 1"

    LogEntry.objects.create(execution_id="exec1", namespace=NS, flow_id="flow", task_id="t1", level="INFO",
                            message="hello", timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc))
    out = run("    type: io.kestra.plugin.core.log.Fetch\n", ctx)
    assert out["size"] == 1 and ion_line(read(ctx, out["uri"]).strip())["message"] == "hello"

    out = run("    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles\n", ctx)
    assert len(out["uris"]) == 3 and platform.execution_files() == []


@pytest.mark.django_db
def test_database_platform_count_and_purge_executions(storage_dir: Path) -> None:
    from flows_app.models import Execution, LogEntry
    from orchestrator.runtime.platform import Platform

    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for index, state in enumerate(["SUCCESS", "FAILED", "RUNNING"]):
        Execution.objects.create(id=f"x{index}", namespace=NS, flow_id="a", flow_revision=1, state=state,
                                 created=start + timedelta(hours=index), start_date=start + timedelta(hours=index))
    LogEntry.objects.create(execution_id="x0", namespace=NS, flow_id="a", level="INFO", message="m", timestamp=start)
    platform = Platform(NS, "flow", "exec1", "task", "run1")
    Platform(NS, "a", "x0", "t", "r").put_file(b"1", "f.txt")
    ctx = Ctx(platform)
    out = run("    type: io.kestra.plugin.core.execution.Count\n    flows: [{namespace: company.team, flowId: a}]\n"
              "    startDate: '2023-12-31T00:00:00Z'\n    expression: '{{ count > 1 }}'\n", ctx)
    assert out == {"results": [{"namespace": NS, "flowId": "a", "count": 3}], "total": 3}
    out = run("    type: io.kestra.plugin.core.execution.PurgeExecutions\n    namespace: company.team\n"
              "    endDate: '2025-01-01T00:00:00Z'\n", ctx)
    assert out == {"executionsCount": 2, "logsCount": 1, "storagesCount": 1, "metricsCount": 0}
    assert list(Execution.objects.values_list("id", flat=True)) == ["x2"]


KV_FLOW = """id: kv-flow
namespace: company.team
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: greeting
    value: "{{ {'who': 'world'} }}"
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: greeting
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "hello {{ outputs.get.value.who }}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.write.uri }}"
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(outputs.write.uri) }}"
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
    tasksId: [say]
"""


def test_platform_tasks_through_the_runtime(run_flow, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    execution = run_flow(KV_FLOW)
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["get"] == {"value": {"who": "world"}}
    assert outputs["size"] == {"size": 11}
    assert outputs["fetch"]["size"] == 1
    assert outputs["write"]["uri"].startswith(f"kestra:///company/team/kv-flow/executions/{execution.id}/tasks/write/")
