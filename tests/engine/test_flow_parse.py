"""Flow parsing: YAML loading, the parsed model, plugin defaults, and the conformance corpus."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import yaml

from orchestrator.engine import plugins
from orchestrator.engine.flow import (
    Flow,
    FlowValidationError,
    Task,
    UnknownTask,
    deep_merge,
    parse_flow,
    parse_flow_documents,
)
from orchestrator.engine.yamlload import LineDict, LineList, YamlError, load, load_all, split_documents

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("KESTRA_FLOWS", ROOT.parent / "shared" / "kestra-flows"))
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")

HEAD = "id: f\nnamespace: company.team\n"


def flow(body: str, **kwargs) -> Flow:
    return parse_flow(HEAD + body, **kwargs)


def corpus_files(*folders: str) -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for folder in folders for p in (CORPUS / folder).iterdir() if p.suffix in (".yaml", ".yml"))


# --------------------------------------------------------------------------------------------------
# YAML loading


class TestYamlLoad:
    def test_records_lines_of_keys_and_items(self):
        data = load("a: 1\nb:\n  - x\n  - y: 2\n")
        assert isinstance(data, LineDict) and isinstance(data["b"], LineList)
        assert data.lines == {"a": 1, "b": 2}
        assert data["b"].lines == [3, 4]
        assert data["b"][1].line == 4

    def test_scalars_follow_yaml_1_2_core_schema(self):
        data = load("a: yes\nb: 2023-01-01\nc: 11:59:59\nd: true\ne: 0x1F\nf: 1.5\ng: ~\ntrue: key\n1: one\n")
        assert data == {"a": "yes", "b": "2023-01-01", "c": "11:59:59", "d": True, "e": 31, "f": 1.5,
                        "g": None, "true": "key", "1": "one"}

    def test_duplicate_key_is_reported_with_its_line(self):
        with pytest.raises(YamlError) as caught:
            load("tasks:\n  - data:\n      variables.tf: a\n      variables.tf: b\n")
        problem = caught.value.problems[0]
        assert problem.message == "Duplicate field 'variables.tf'"
        assert problem.line == 4
        assert problem.path == "tasks[0].data"

    def test_every_duplicate_is_reported(self):
        with pytest.raises(YamlError) as caught:
            load("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n")
        assert [p.line for p in caught.value.problems] == [2, 5]

    def test_merge_keys_are_not_duplicates(self):
        assert load("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n")["m"] == {"x": 1, "y": 3}

    @pytest.mark.parametrize("text", ["a: [1,\n", "a: b: c\n", "x: !unknown 1\n", "- &a [*a]\n", "\t- x\n"])
    def test_malformed_yaml_is_a_yaml_error_with_a_line(self, text):
        with pytest.raises(YamlError) as caught:
            load(text)
        assert caught.value.problems and caught.value.problems[0].line is not None

    def test_first_non_empty_document_is_the_flow(self):
        assert load("---\n---\na: 1\n---\nb: 2\n") == {"a": 1}
        assert load_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]

    def test_split_documents_ignores_dashes_inside_strings(self):
        pieces = split_documents('a: "x---y"\n---\nb: |\n  ---\n  text\n')
        assert [first for _, first in pieces] == [1, 3]
        assert load(pieces[1][0]) == {"b": "---\ntext\n"}

    def test_line_containers_pickle(self):
        data = load("a:\n  - 1\n")
        copy = pickle.loads(pickle.dumps(data))
        assert copy == data and copy.lines == data.lines and copy["a"].lines == [2]


# --------------------------------------------------------------------------------------------------
# The parsed model


class TestModel:
    def test_minimal_flow(self):
        parsed = flow("tasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        assert (parsed.id, parsed.namespace, parsed.revision) == ("f", "company.team", None)
        task = parsed.tasks[0]
        assert isinstance(task, Task)
        assert (task.id, task.type, task.raw_type, task.path, task.line) == (
            "hello", "io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.log.Log", "tasks[0]", 4)
        assert task.props == {"message": "hi", "level": "INFO"}  # the declared default is filled in
        assert task.kind == plugins.RUNNABLE and task.is_runnable and not task.is_flowable
        assert parsed.source.startswith("id: f")

    def test_alias_resolves_to_canonical_type(self):
        parsed = flow("tasks:\n  - id: a\n    type: io.kestra.core.tasks.debugs.Return\n    format: x\n")
        task = parsed.tasks[0]
        assert task.type == "io.kestra.plugin.core.debug.Return"
        assert task.raw_type == "io.kestra.core.tasks.debugs.Return"
        assert parsed.infos == ["io.kestra.core.tasks.debugs.Return is replaced by io.kestra.plugin.core.debug.Return"]

    def test_common_properties_are_attributes(self):
        parsed = flow("""tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: hi
    description: says hi
    disabled: true
    allowFailure: true
    allowWarning: true
    runIf: "{{ inputs.go }}"
    timeout: PT5M
    logLevel: WARN
    logToFile: true
    workerGroup: {key: gpu, fallback: WAIT}
    taskCache: {enabled: true, ttl: PT1H}
    version: "1.0"
    retry: {type: exponential, maxAttempt: 3, interval: PT1S, maxInterval: PT10S, maxDuration: PT1M}
""")
        task = parsed.tasks[0]
        assert task.props == {"message": "hi", "level": "INFO"}
        assert task.description == "says hi"
        assert task.disabled and task.allow_failure and task.allow_warning and task.log_to_file
        assert task.run_if == "{{ inputs.go }}"
        assert task.timeout == "PT5M"
        assert task.log_level == "WARN"
        assert (task.worker_group, task.worker_group_fallback) == ("gpu", "WAIT")
        assert task.task_cache == {"enabled": True, "ttl": "PT1H"}
        assert task.version == "1.0"
        assert task.retry == {"type": "exponential", "maxAttempts": 3, "interval": "PT1S", "maxInterval": "PT10S",
                              "maxDuration": "PT1M", "warningOnRetry": False}

    def test_run_if_scalar_is_text(self):
        assert flow("tasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    runIf: false\n"
                    ).tasks[0].run_if == "false"

    def test_nested_task_fields_are_parsed(self):
        parsed = flow("""tasks:
  - id: sw
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.x }}"
    cases:
      "true":
        - id: t
          type: io.kestra.plugin.core.debug.Return
      B: []
    defaults:
      - id: d
        type: io.kestra.plugin.core.debug.Return
    errors:
      - id: e
        type: io.kestra.plugin.core.debug.Return
    finally:
      - id: fin
        type: io.kestra.plugin.core.debug.Return
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {id: d1, type: io.kestra.plugin.core.debug.Return}
      - task: {id: d2, type: io.kestra.plugin.core.debug.Return}
        dependsOn: [d1]
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1S
    onPause: {id: op, type: io.kestra.plugin.core.log.Log, message: paused}
    onResume:
      - name: answer
        type: STRING
""")
        switch, dag, pause = parsed.tasks
        assert [t.id for t in switch.props["cases"]["true"]] == ["t"]
        assert switch.props["cases"]["B"] == []
        assert [t.id for t in switch.props["defaults"]] == ["d"]
        assert [t.id for t in switch.errors] == ["e"] and switch.errors is switch.props["errors"]
        assert [t.id for t in switch.finally_] == ["fin"]
        assert [[t.id for t in tasks] for tasks in switch.child_lists()] == [["t"], ["d"], ["e"], ["fin"]]
        assert [(e["task"].id, e["dependsOn"]) for e in dag.props["tasks"]] == [("d1", []), ("d2", ["d1"])]
        assert dag.props["tasks"][1]["task"].path == "tasks[1].tasks[1].task"
        assert pause.props["onPause"].id == "op"
        assert pause.props["pauseDuration"] == "PT1S" and "delay" not in pause.props
        assert pause.props["onResume"][0]["id"] == "answer"
        assert "tasks[2].delay" in parsed.deprecated_paths
        assert [t.id for t in parsed.all_tasks()] == ["sw", "t", "d", "e", "fin", "dag", "d1", "d2", "pause", "op"]

    def test_find_task_and_parent_of(self):
        parsed = flow("""tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: child
        type: io.kestra.plugin.core.debug.Return
errors:
  - id: handler
    type: io.kestra.plugin.core.debug.Return
afterExecution:
  - id: after
    type: io.kestra.plugin.core.debug.Return
finally:
  - id: fin
    type: io.kestra.plugin.core.debug.Return
""")
        assert parsed.find_task("child").path == "tasks[0].tasks[0]"
        assert parsed.parent_of("child") is parsed.find_task("seq")
        assert parsed.parent_of("seq") is None
        assert parsed.find_task("handler") is parsed.errors[0]
        assert parsed.find_task("after") is parsed.after_execution[0]
        assert parsed.find_task("fin") is parsed.finally_[0]
        with pytest.raises(UnknownTask) as caught:
            parsed.find_task("nope")
        assert isinstance(caught.value, KeyError)
        assert "nope" in str(caught.value)

    def test_labels_map_and_list_forms(self):
        assert flow("labels:\n  a: 1\n  b: true\n  c: x\ntasks: [{id: t, type: io.kestra.plugin.core.debug.Return}]\n"
                    ).labels == {"a": "1", "b": "true", "c": "x"}
        assert flow("labels:\n  - {key: a, value: 1.5}\n  - {key: a, value: second}\n"
                    "tasks: [{id: t, type: io.kestra.plugin.core.debug.Return}]\n").labels == {"a": "1.5"}

    def test_flow_level_objects(self):
        parsed = flow("""revision: 3
description: hi
disabled: true
variables: {x: 1}
concurrency: {limit: 2}
retry: {type: constant, interval: PT1S, behavior: CREATE_NEW_EXECUTION}
workerGroup: {key: eu}
sla:
  - {id: s, type: MAX_DURATION, behavior: FAIL, duration: PT1H}
checks:
  - {condition: "{{ true }}", message: ok}
outputs:
  - {id: o, type: STRING, value: "{{ 1 }}"}
tasks: [{id: t, type: io.kestra.plugin.core.debug.Return}]
""")
        assert parsed.revision == 3 and parsed.description == "hi" and parsed.disabled
        assert parsed.variables == {"x": 1}
        assert parsed.concurrency == {"limit": 2, "behavior": "QUEUE"}
        assert parsed.retry["behavior"] == "CREATE_NEW_EXECUTION"
        assert parsed.worker_group == {"key": "eu", "fallback": None}
        assert parsed.sla == [{"id": "s", "type": "MAX_DURATION", "behavior": "FAIL", "labels": {}, "duration": "PT1H"}]
        assert parsed.checks == [{"condition": "{{ true }}", "message": "ok", "style": "INFO",
                                  "behavior": "BLOCK_EXECUTION"}]
        assert parsed.outputs[0]["id"] == "o"

    def test_triggers_and_conditions(self):
        parsed = flow("""tasks: [{id: t, type: io.kestra.plugin.core.debug.Return}]
triggers:
  - id: sched
    type: io.kestra.core.models.triggers.types.Schedule
    cron: "0 2 * * *"
    inputs: {a: 1}
    labels: {team: data}
    stopAfter: [FAILED]
    disabled: true
    scheduleConditions:
      - type: io.kestra.plugin.core.condition.Weekend
  - id: upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.Not
        conditions:
          - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition
            in: [FAILED]
""")
        sched, upstream = parsed.triggers
        assert (sched.id, sched.type, sched.raw_type) == (
            "sched", "io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
        assert sched.inputs == {"a": 1} and sched.labels == {"team": "data"} and sched.stop_after == ["FAILED"]
        assert sched.disabled and sched.props["cron"] == "0 2 * * *"
        assert [c.type for c in sched.conditions] == ["io.kestra.plugin.core.condition.Weekend"]
        assert sched.conditions[0].props == {"date": "{{ trigger.date }}"}
        negation = upstream.conditions[0]
        assert negation.props["conditions"][0].type == "io.kestra.plugin.core.condition.ExecutionStatus"
        assert negation.props["conditions"][0].props == {"in": ["FAILED"]}
        assert parsed.find_trigger("upstream") is upstream

    def test_listeners(self):
        parsed = flow("""tasks: [{id: t, type: io.kestra.plugin.core.debug.Return}]
listeners:
  - conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
    tasks:
      - id: l
        type: io.kestra.plugin.core.debug.Return
""")
        listener = parsed.listeners[0]
        assert [c.type for c in listener["conditions"]] == ["io.kestra.plugin.core.condition.ExecutionStatus"]
        assert parsed.find_task("l") is listener["tasks"][0]
        assert "listeners" in parsed.deprecated_paths

    def test_expressions_are_accepted_for_typed_values(self):
        parsed = flow("""tasks:
  - id: p
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: "{{ inputs.n }}"
    timeout: "{{ inputs.t }}"
    tasks:
      - id: l
        type: io.kestra.plugin.core.log.Log
        message: hi
        level: "{{ inputs.level }}"
      - id: s
        type: io.kestra.plugin.core.flow.Subflow
        namespace: a
        flowId: b
        wait: "{{ inputs.wait }}"
        revision: "{{ inputs.revision }}"
      - id: labels
        type: io.kestra.plugin.core.execution.Labels
        labels: "{{ inputs.labels }}"
""")
        assert parsed.tasks[0].props["concurrent"] == "{{ inputs.n }}"
        assert parsed.tasks[0].timeout == "{{ inputs.t }}"

    def test_worker_group_is_accepted(self):
        assert flow("tasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n"
                    "    workerGroup:\n      key: toto\n").tasks[0].worker_group == "toto"

    def test_non_strict_drops_unknown_properties(self):
        parsed = flow("extra: 1\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
                      "    nope: 1\n", strict=False)
        assert parsed.tasks[0].props == {"message": "x", "level": "INFO"}

    def test_flow_pickles(self):
        parsed = flow("tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
        copy = pickle.loads(pickle.dumps(parsed))
        assert copy.find_task("a").props == {"message": "x", "level": "INFO"}

    def test_multi_document_validation(self):
        results = parse_flow_documents(HEAD + "tasks: [{id: a, type: io.kestra.plugin.core.debug.Return}]\n---\n"
                                       + HEAD + "tasks: [{id: b, type: io.kestra.plugin.core.debug.Nope}]\n")
        assert isinstance(results[0], Flow)
        assert isinstance(results[1], FlowValidationError)
        assert results[1].errors[0].line == 7  # absolute line in the whole text


# --------------------------------------------------------------------------------------------------
# Plugin defaults


class TestPluginDefaults:
    def test_non_forced_goes_under_forced_goes_over(self):
        parsed = flow("""pluginDefaults:
  - type: io.kestra.plugin.core.log.Log
    values: {level: WARN, message: default}
  - type: io.kestra.plugin.core.log.Log
    forced: true
    values: {level: ERROR}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, level: DEBUG}
  - {id: b, type: io.kestra.plugin.core.log.Log, message: mine}
""")
        assert parsed.tasks[0].props == {"level": "ERROR", "message": "default"}
        assert parsed.tasks[1].props == {"level": "ERROR", "message": "mine"}

    def test_prefix_and_alias_matching(self):
        parsed = flow("""pluginDefaults:
  - type: io.kestra.plugin.core.log
    values: {message: by-prefix}
  - type: io.kestra.core.tasks.debugs.Return
    values: {format: by-alias}
tasks:
  - {id: a, type: io.kestra.core.tasks.log.Log}
  - {id: b, type: io.kestra.plugin.core.debug.Return}
""")
        assert parsed.tasks[0].props["message"] == "by-prefix"
        assert parsed.tasks[1].props["format"] == "by-alias"

    def test_first_source_wins_flow_before_global(self):
        parsed = flow("""taskDefaults:
  - type: io.kestra.plugin.core.log.Log
    values: {message: flow}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log}
""", global_defaults=[{"type": "io.kestra.plugin.core.log.Log", "values": {"message": "global", "level": "TRACE"}},
                      {"type": "io.kestra.plugin.core.log.Log", "forced": True, "values": {"level": "WARN"}}])
        assert parsed.tasks[0].props == {"message": "flow", "level": "WARN"}
        assert parsed.plugin_defaults == [{"type": "io.kestra.plugin.core.log.Log", "values": {"message": "flow"},
                                           "forced": False}]
        assert "taskDefaults" in parsed.deprecated_paths
        assert "values: {message: flow}" in parsed.source  # the source is unchanged

    def test_defaults_reach_triggers_conditions_and_nested_tasks(self):
        parsed = flow("""pluginDefaults:
  - type: io.kestra.plugin.core.trigger.Schedule
    values: {timezone: Europe/Paris}
  - type: io.kestra.plugin.core.condition.ExecutionStatus
    values: {in: [FAILED]}
  - type: io.kestra.plugin.core.debug.Return
    values: {format: nested}
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks: [{id: r, type: io.kestra.plugin.core.debug.Return}]
triggers:
  - id: s
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
  - id: f
    type: io.kestra.plugin.core.trigger.Flow
    conditions: [{type: io.kestra.plugin.core.condition.ExecutionStatus}]
""")
        assert parsed.find_task("r").props["format"] == "nested"
        assert parsed.triggers[0].props["timezone"] == "Europe/Paris"
        assert parsed.triggers[1].conditions[0].props["in"] == ["FAILED"]

    def test_unknown_default_property_is_a_warning_not_an_error(self):
        parsed = flow("""pluginDefaults:
  - type: io.kestra.plugin.core.log.Log
    values: {level: WARN, invalid: Default}
tasks:
  - {id: first, type: io.kestra.plugin.core.log.Log, message: hi}
""")
        assert parsed.tasks[0].props == {"level": "WARN", "message": "hi"}
        assert [str(w) for w in parsed.warnings] == [
            "first.invalid: No property 'invalid' exists in plugin 'io.kestra.plugin.core.log.Log'"]
        assert parsed.warnings[0].line == 5

    def test_deep_merge_follows_kestra(self):
        merged = deep_merge({"a": {"x": 1, "y": 1}, "l": [1, 2], "s": "base", "n": 1},
                           {"a": {"y": 2}, "l": [2, 3], "s": "over", "n": None})
        assert merged == {"a": {"x": 1, "y": 2}, "l": [1, 2, 3], "s": "over", "n": 1}


# --------------------------------------------------------------------------------------------------
# Conformance corpus


@needs_corpus
@pytest.mark.parametrize("path", corpus_files("valids", "tests", "templates"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_core_corpus_flow_parses(path: Path):
    parsed = parse_flow(path.read_text(encoding="utf-8"))
    assert parsed.id and parsed.namespace and parsed.tasks


@needs_corpus
@pytest.mark.parametrize("path", corpus_files("test-plugins"), ids=lambda p: p.name)
def test_flows_needing_test_only_plugins_name_the_unknown_types(path: Path):
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(path.read_text(encoding="utf-8"))
    assert caught.value.kind == "parse"
    for error in caught.value.errors:
        assert error.path.endswith(".type")
        assert error.message.startswith("Invalid type: io.kestra.core.")


def _case(name: str) -> dict:
    manifest = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
    return next(case for case in manifest["cases"] if case["case"] == name)


def _corpus_flow(name: str) -> Flow:
    return parse_flow((CORPUS / name).read_text(encoding="utf-8"))


@needs_corpus
class TestManifestParseCases:
    def test_full(self):
        expected = _case("parse.full")["expect"]
        parsed = _corpus_flow("valids/full.yaml")
        assert len(parsed.tasks) == expected["taskCount"]
        third = parsed.tasks[2]
        assert third.timeout == expected["task[2]"]["timeout"]
        assert third.retry["type"] == expected["task[2]"]["retry"]["type"]
        assert third.retry["maxAttempts"] == expected["task[2]"]["retry"]["maxAttempt"]
        assert third.retry["interval"] == "PT15M"  # 900 seconds

    def test_all_flowable(self):
        assert len(_corpus_flow("valids/all-flowable.yaml").tasks) == _case("parse.all-flowable")["expect"]["taskCount"]

    def test_inputs(self):
        expected = _case("parse.inputs")["expect"]
        inputs = _corpus_flow("valids/inputs.yaml").inputs
        assert len(inputs) == expected["inputCount"]
        assert sum(1 for i in inputs if i.get("required", True)) == expected["requiredCount"]
        assert sum(1 for i in inputs if i.get("required", True) is False) == expected["optionalCount"]
        assert sum(1 for i in inputs if i.get("defaults") is not None) == expected["withDefaultsCount"]
        assert sum(1 for i in inputs if i["type"] == "STRING" and i.get("validator")) == \
            expected["stringInputsWithValidator"]
        assert all("id" in i and "name" not in i for i in inputs)

    def test_inputs_old(self):
        expected = _case("parse.inputs-old")["expect"]
        inputs = _corpus_flow("tests/inputs-old.yaml").inputs
        assert len(inputs) == expected["inputCount"]
        assert [{"id": i["id"], "type": i["type"]} for i in inputs] == expected["inputs"]

    def test_minimal_labels_are_normalised(self):
        parsed = _corpus_flow("valids/minimal.yaml")
        assert parsed.revision == 2
        assert parsed.labels == {"system.readOnly": "true"}

    def test_ids_of_tasks_and_triggers(self):
        expected = _case("parse.trigger-flow-listener-no-inputs.ids")["expect"]
        parsed = _corpus_flow("valids/trigger-flow-listener-no-inputs.yaml")
        ids = [t.id for t in parsed.all_tasks()] + [t.id for t in parsed.triggers]
        assert len(ids) == expected["allTasksWithChildsAndTriggerIdsCount"]

    def test_warnings_and_infos_of_the_validation_flows(self):
        expected = _case("validate.warnings-and-infos")["expect"]
        parsed = _corpus_flow("validation/warningsAndInfos.yaml")
        assert parsed.deprecated_paths == expected["deprecationPaths"]
        assert parsed.infos == expected["infos"]

    def test_aliases_of_the_corpus_are_registered(self):
        listing = yaml.safe_load((CORPUS / "aliases.yaml").read_text(encoding="utf-8"))
        registered = plugins.registered_types()
        for core_type in listing["coreTypes"]:
            assert core_type in registered, core_type
        for alias, canonical in listing["aliases"].items():
            assert registered[alias].type == canonical or (
                alias.endswith("WaitFor") and canonical.endswith("LoopUntil")), alias
