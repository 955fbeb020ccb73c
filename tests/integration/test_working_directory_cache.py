"""WorkingDirectory ``cache``: files matching the patterns kept in internal storage after a successful
run and restored into the next run's directory before its first child, until the ttl expires."""
from __future__ import annotations

import os
import uuid

from django.core.files.storage import default_storage

from orchestrator.engine import states
from orchestrator.runtime.wd_cache import archive_path, matching_files

FLOW = r"""id: {flow_id}
namespace: company.wdcache
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    cache:
      patterns:
        - deps/**
      ttl: PT1H
    tasks:
      - id: build
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - test -f deps/lib.txt || {{ mkdir -p deps/.hidden; cat /proc/sys/kernel/random/uuid > deps/lib.txt; echo x > deps/.hidden/h; echo y > other.txt; }}
          - test -f other.txt && echo '::{{"outputs":{{"fresh":true}}}}::' || true
          - echo "::{{\"outputs\":{{\"lib\":\"$(cat deps/lib.txt)\",\"hidden\":\"$(cat deps/.hidden/h)\"}}}}::"
{extra}"""

FAILING_CHILD = """      - id: boom
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - exit 1
"""


def source(extra: str = "") -> tuple[str, str]:
    flow_id = f"wdcache-{uuid.uuid4().hex[:8]}"
    return flow_id, FLOW.format(flow_id=flow_id, extra=extra)


def build_vars(execution) -> dict:
    return next(r for r in execution.task_runs if r.task_id == "build").outputs["vars"]


def test_files_are_restored_into_the_next_run_until_the_ttl_expires(run_flow):
    flow_id, yaml = source()
    archive = archive_path("company.wdcache", flow_id, "wd", None)

    first = run_flow(yaml)
    assert first.state.current == states.SUCCESS
    assert build_vars(first)["fresh"] is True
    assert default_storage.exists(archive)
    written = default_storage.get_modified_time(archive)

    second = run_flow(yaml)
    assert second.state.current == states.SUCCESS
    restored = build_vars(second)
    # the cached files came back (hidden ones included), the file outside the patterns did not
    assert restored["lib"] == build_vars(first)["lib"]
    assert restored["hidden"] == "x"
    assert "fresh" not in restored
    # nothing changed: the archive is not written again (its ttl runs from the first write)
    assert default_storage.get_modified_time(archive) == written

    # past its ttl the archive is dropped and the files are built again
    old = os.path.getmtime(default_storage.path(archive)) - 2 * 3600
    os.utime(default_storage.path(archive), (old, old))
    third = run_flow(yaml)
    assert third.state.current == states.SUCCESS
    assert build_vars(third)["fresh"] is True
    assert build_vars(third)["lib"] != build_vars(first)["lib"]


def test_a_failed_run_stores_no_cache(run_flow):
    flow_id, yaml = source(FAILING_CHILD)

    execution = run_flow(yaml)

    assert execution.state.current == states.FAILED
    assert build_vars(execution)["fresh"] is True
    assert not default_storage.exists(archive_path("company.wdcache", flow_id, "wd", None))


def test_loop_values_cache_apart():
    assert archive_path("a.b", "f", "wd", None) == "a/b/f/wd/cache/cache.zip"
    assert archive_path("a.b", "f", "wd", "x") != archive_path("a.b", "f", "wd", "y")


def test_patterns_match_relative_globs_and_hidden_files(tmp_path):
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "tool").write_text("t")
    (tmp_path / "node_modules" / "a.js").write_text("a")
    (tmp_path / "top.txt").write_text("t")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("d")

    found = [os.path.relpath(p, tmp_path) for p in matching_files(str(tmp_path), ["node_modules/**", "*.txt"])]

    assert found == ["node_modules/.bin/tool", "node_modules/a.js", "top.txt"]
