"""ForEachItem in the in-memory runner: split, one child execution per batch, merge."""
from __future__ import annotations

import json
import textwrap

from orchestrator.engine import memory, states

PARENT = textwrap.dedent("""
    id: parent
    namespace: tests
    tasks:
      - id: file
        type: io.kestra.plugin.core.storage.Write
        content: "a\\nb\\nc\\n"
        extension: .txt
      - id: each
        type: io.kestra.plugin.core.flow.ForEachItem
        items: "{{ outputs.file.uri }}"
        batch:
          rows: 2
        namespace: tests
        flowId: child
        inputs:
          batch: "{{ taskrun.items }}"
""")

CHILD = textwrap.dedent("""
    id: child
    namespace: tests
    inputs:
      - id: batch
        type: STRING
    tasks:
      - id: size
        type: io.kestra.plugin.core.storage.Size
        uri: "{{ inputs.batch }}"
    outputs:
      - id: bytes
        type: STRING
        value: "{{ outputs.size.size }}"
""")


def test_for_each_item_on_a_missing_subflow_fails():
    # when
    run = memory.run(PARENT)
    # then
    assert run.state == states.FAILED
    assert run.run("each_items").state.current == states.FAILED
    assert any("Unable to find flow 'tests'.'child'" in line.message for line in run.logs)


def test_for_each_item_runs_one_child_per_batch_and_merges_their_outputs():
    # when
    run = memory.run(PARENT, flows={("tests", "child"): CHILD})
    # then
    assert run.state == states.SUCCESS, [(line.task_id, line.message) for line in run.logs]
    assert run.run("each_split").outputs["uris"] and len(run.run("each_split").outputs["uris"]) == 2
    assert run.run("each_items").outputs["iterations"][states.SUCCESS] == 2
    assert [child.state for child in run.children] == [states.SUCCESS, states.SUCCESS]
    merged = run.run("each_merge").outputs["subflowOutputs"]
    lines = [json.loads(line) for line in _read(run, merged).splitlines()]
    assert lines == [{"bytes": "4"}, {"bytes": "2"}]  # "a\nb\n" and "c\n"


def _read(run: memory.MemoryRun, uri: str) -> str:
    assert run.platform is not None
    return run.platform.read_file(uri).decode("utf-8")
