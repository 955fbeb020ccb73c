"""Flow validation: one test per rule (message, path, line), and the corpus' invalid flows."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.engine.flow import Flow, FlowError, FlowValidationError, parse_flow, parse_flow_documents

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("KESTRA_FLOWS", ROOT.parent / "shared" / "kestra-flows"))
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")

HEAD = "id: f\nnamespace: company.team\n"
RETURN = "io.kestra.plugin.core.debug.Return"


def invalid(source: str, **kwargs: Any) -> FlowValidationError:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(source, **kwargs)
    return caught.value


def only(source: str) -> FlowError:
    errors = invalid(source).errors
    assert len(errors) == 1, errors
    return errors[0]


def find(error: FlowValidationError, fragment: str) -> FlowError:
    matches = [e for e in error.errors if fragment in e.message]
    assert matches, f"no error containing {fragment!r} in {error.errors}"
    return matches[0]


# --------------------------------------------------------------------------------------------------
# Document and top level


def test_yaml_syntax_error_is_a_parse_error_with_a_line():
    error = invalid(HEAD + "tasks:\n  - id: [\n")
    assert error.kind == "parse"
    assert error.errors[0].line == 5  # where the parser noticed: the end of the text
    assert error.errors[0].message.startswith("Invalid YAML:")


def test_duplicate_key_is_a_parse_error():
    error = invalid(HEAD + "tasks:\n  - id: a\n    id: b\n    type: " + RETURN + "\n")
    assert error.kind == "parse"
    assert (error.errors[0].message, error.errors[0].line) == ("Duplicate field 'id'", 5)


@pytest.mark.parametrize("source, message", [
    ("", "The flow is empty"),
    ("- a\n- b\n", "A flow must be a YAML mapping (id, namespace, tasks...)"),
    ("just text", "A flow must be a YAML mapping (id, namespace, tasks...)"),
])
def test_document_must_be_a_mapping(source, message):
    error = invalid(source)
    assert error.kind == "parse" and error.errors[0].message == message


def test_unknown_top_level_key():
    error = invalid(HEAD + "taks: []\ntasks:\n  - {id: a, type: " + RETURN + "}\n")
    problem = error.errors[0]
    assert error.kind == "parse"
    assert problem.path == "taks" and problem.line == 3
    assert problem.message.startswith('Unrecognized field "taks" (class io.kestra.core.models.flows.Flow)')


def test_required_id_namespace_tasks():
    error = invalid("description: nothing\n")
    assert {(e.path, e.message) for e in error.errors} == {
        ("id", "must not be null"), ("namespace", "must not be null"), ("tasks", "must not be empty")}
    assert str(error) == "Invalid Flow: id: must not be null, namespace: must not be null, tasks: must not be empty"


@pytest.mark.parametrize("body, path, message", [
    ("id: my#flow\nnamespace: ok\n", "id", 'must match "^[a-zA-Z0-9][a-zA-Z0-9._-]*"'),
    ("id: " + "x" * 101 + "\nnamespace: ok\n", "id", "size must be between 1 and 100"),
    ("id: ok\nnamespace: My.Team\n", "namespace", 'must match "^[a-z0-9][a-z0-9._-]*"'),
    ("id: ok\nnamespace: " + "n" * 151 + "\n", "namespace", "size must be between 1 and 150"),
    ("id: ''\nnamespace: ok\n", "id", "must not be blank"),
])
def test_flow_id_and_namespace_rules(body, path, message):
    problem = only(body + "tasks:\n  - {id: a, type: " + RETURN + "}\n")
    assert (problem.path, problem.message) == (path, message)
    assert problem.line == (1 if path == "id" else 2)


def test_revision_must_be_positive():
    assert only(HEAD + "revision: 0\ntasks:\n  - {id: a, type: " + RETURN + "}\n").message == \
        "must be greater than or equal to 1"


# --------------------------------------------------------------------------------------------------
# Tasks


def test_task_id_rules():
    error = invalid(HEAD + "tasks:\n  - id: has.dot\n    type: " + RETURN + "\n  - type: " + RETURN + "\n")
    dotted = find(error, "must match")
    assert (dotted.path, dotted.line, dotted.message) == ("tasks[0].id", 4, 'must match "^[a-zA-Z0-9][a-zA-Z0-9_-]*"')
    missing = find(error, "must not be null")
    assert (missing.path, missing.line) == ("tasks[1].id", 6)


def test_unknown_type_names_close_matches():
    error = invalid(HEAD + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Lgo\n    message: x\n")
    problem = error.errors[0]
    assert error.kind == "parse"
    assert (problem.path, problem.line) == ("tasks[0].type", 5)
    assert problem.message.startswith("Invalid type: io.kestra.plugin.core.log.Lgo")
    assert "io.kestra.plugin.core.log.Log" in problem.message
    assert str(error) == f"Invalid Flow: a.type: {problem.message}"


def test_missing_type():
    problem = only(HEAD + "tasks:\n  - id: a\n")
    assert problem.message == "missing type id property 'type' (for POJO property 'tasks')"


def test_trigger_type_cannot_be_a_task():
    problem = only(HEAD + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n")
    assert problem.message == "Invalid type: io.kestra.plugin.core.trigger.Schedule is a trigger type, not a task"


def test_unknown_property_names_it_and_its_line():
    error = invalid(HEAD + "tasks:\n  - id: taskInvalid\n    type: " + RETURN + "\n    invalid: x\n")
    problem = error.errors[0]
    assert error.kind == "parse"
    assert (problem.path, problem.line, problem.subject) == ("tasks[0].invalid", 6, "taskInvalid.invalid")
    assert problem.message.startswith(
        f'Unrecognized field "invalid" (class {RETURN}), not marked as ignorable (')
    assert '"format"' in problem.message and '"allowFailure"' in problem.message


def test_required_property_missing():
    problem = only(HEAD + "tasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n")
    assert (problem.path, problem.line, problem.message) == ("tasks[0].message", 4, "must not be null")
    assert str(problem) == "hello.message: must not be null"


def test_wrong_type_names_property_and_expected_type():
    error = invalid(HEAD + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    concurrent: many\n"
                    "    tasks:\n      - {id: a, type: " + RETURN + "}\n")
    problem = error.errors[0]
    assert (problem.path, problem.line) == ("tasks[0].concurrent", 6)
    assert "valid integer" in problem.message
    assert error.kind == "validate"


def test_enum_property_lists_allowed_values():
    problem = only(HEAD + "tasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: x\n    level: LOUD\n")
    assert problem.path == "tasks[0].level" and "'WARN'" in problem.message


def test_nested_unknown_property():
    problem = only(HEAD + """tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ true }}"
    checkFrequency:
      interval: PT1S
      often: true
    tasks:
      - {id: a, type: io.kestra.plugin.core.debug.Return}
""")
    assert (problem.path, problem.line, problem.message) == ("tasks[0].checkFrequency.often", 9,
                                                             'Unrecognized field "often"')


def test_duration_properties_are_checked():
    error = invalid(HEAD + "tasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: 5 minutes\n"
                    "    timeout: soon\n")
    assert {(e.path, e.line) for e in error.errors} == {("tasks[0].duration", 6), ("tasks[0].timeout", 7)}
    assert all("ISO-8601" in e.message for e in error.errors)


@pytest.mark.parametrize("field, value, message", [
    ("disabled", "maybe", "must be a boolean (true or false)"),
    ("logLevel", "LOUD", "must be one of ERROR, WARN, INFO, DEBUG, TRACE, not 'LOUD'"),
    ("workerGroup", "{key: 'bad key'}", 'must match "^[a-zA-Z0-9][a-zA-Z0-9_-]*"'),
    ("workerGroup", "{key: gpu, fallback: NEVER}", "must be one of FAIL, WAIT, CANCEL, not 'NEVER'"),
    ("taskCache", "{ttl: PT1H}", "must not be null"),
])
def test_common_property_rules(field, value, message):
    problem = only(HEAD + f"tasks:\n  - id: a\n    type: {RETURN}\n    {field}: {value}\n")
    assert problem.message == message
    assert problem.path.startswith(f"tasks[0].{field}")


def test_required_task_list_must_not_be_empty():
    error = invalid(HEAD + """tasks:
  - id: p1
    type: io.kestra.plugin.core.flow.Parallel
  - id: p2
    type: io.kestra.plugin.core.flow.Parallel
    tasks: []
  - id: i
    type: io.kestra.plugin.core.flow.If
    condition: x
""")
    assert [(e.path, e.line, str(e)) for e in error.errors] == [
        ("tasks[0].tasks", 4, "p1.tasks: must not be empty"),
        ("tasks[1].tasks", 8, "p2.tasks: must not be empty"),
        ("tasks[2].then", 9, "i.then: must not be empty"),
    ]


def test_all_errors_are_reported_at_once():
    error = invalid("id: bad#id\nnamespace: ok\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
                    "  - id: b\n    type: nope.Nope\n")
    assert [e.path for e in error.errors] == ["id", "tasks[0].message", "tasks[1].type"]


# --------------------------------------------------------------------------------------------------
# Flow-wide rules (no label, like Kestra's FlowValidator)


def test_duplicate_task_ids_everywhere():
    error = invalid(HEAD + f"""tasks:
  - id: a
    type: {RETURN}
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: a
        type: {RETURN}
    errors:
      - id: local
        type: {RETURN}
errors:
  - id: local
    type: {RETURN}
finally:
  - id: fin
    type: {RETURN}
afterExecution:
  - id: fin
    type: {RETURN}
listeners:
  - tasks:
      - id: seq
        type: {RETURN}
""")
    problem = error.errors[0]
    assert len(error.errors) == 1
    assert problem.message == "Duplicate task id with name [a, seq, local, fin]"
    assert (problem.path, problem.line, problem.subject) == ("tasks[1].tasks[0]", 9, "")
    assert str(error) == "Invalid Flow: Duplicate task id with name [a, seq, local, fin]"


def test_kestra_text_and_count_fold_flow_wide_rules():
    error = invalid(HEAD + f"""labels:
  system.x: y
tasks:
  - {{id: a, type: {RETURN}}}
  - {{id: a, type: io.kestra.plugin.core.log.Log}}
""")
    assert len(error.errors) == 3 and error.violation_count == 2
    assert error.kestra_message == (": Invalid Flow: System labels can only be set by Kestra itself, offending label: "
                                    "system.x=y, Duplicate task id with name [a], a.message: must not be null")


def test_duplicate_trigger_ids():
    problem = only(HEAD + f"""tasks:
  - {{id: a, type: {RETURN}}}
triggers:
  - {{id: t, type: io.kestra.plugin.core.trigger.Schedule, cron: "@daily"}}
  - {{id: t, type: io.kestra.plugin.core.trigger.Webhook, key: k}}
""")
    assert (problem.message, problem.path, problem.line) == ("Duplicate trigger id with name [t]", "triggers[1]", 7)


@pytest.mark.parametrize("task", [
    "{id: call, type: io.kestra.plugin.core.flow.Subflow, namespace: company.team, flowId: f}",
    "{id: call, type: io.kestra.core.tasks.flows.Flow, namespace: company.team, flowId: f}",
    "{id: call, type: io.kestra.plugin.core.flow.ForEachItem, items: x, namespace: company.team, flowId: f}",
])
def test_recursive_call(task):
    problem = only(HEAD + f"tasks:\n  - {task}\n")
    assert (problem.message, problem.path, problem.line) == ("Recursive call to flow [company.team.f]", "tasks[0]", 4)


def test_call_to_another_flow_is_fine():
    parse_flow(HEAD + "tasks:\n  - {id: c, type: io.kestra.plugin.core.flow.Subflow, namespace: company.team, "
                      "flowId: other}\n")


def test_system_labels():
    error = invalid(HEAD + f"labels:\n  system.readOnly: 'true'\n  system.id: x\n  team: a\n"
                           f"tasks:\n  - {{id: a, type: {RETURN}}}\n")
    problem = error.errors[0]
    assert len(error.errors) == 1
    assert problem.message == "System labels can only be set by Kestra itself, offending label: system.id=x"
    assert (problem.path, problem.line) == ("labels.system.id", 5)


def test_system_labels_of_a_labels_task():
    problem = only(HEAD + "tasks:\n  - id: l\n    type: io.kestra.plugin.core.execution.Labels\n"
                          "    labels:\n      system.correlationId: x\n")
    assert problem.message == "System labels can only be set by Kestra itself, offending label: system.correlationId=x"


def test_dashed_input_reference():
    error = invalid(HEAD + f"""inputs:
  - id: my-input
    type: STRING
tasks:
  - id: ok
    type: {RETURN}
    format: "{{{{ inputs['my-input'] }}}}"
  - id: bad
    type: {RETURN}
    format: "{{{{ inputs.my-input }}}}"
""")
    problem = error.errors[0]
    assert len(error.errors) == 1
    assert problem.message.startswith("Invalid input reference: use inputs[key-name] instead of inputs.key-name")
    assert problem.message.endswith("offending tasks: [bad]")
    assert problem.line == 10


def test_dashed_output_reference():
    problem = only(HEAD + f"""tasks:
  - id: my-task
    type: {RETURN}
  - id: reader
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ outputs.my-task.value }}}}"
""")
    assert problem.message.startswith("Invalid output reference: use outputs[key-name] instead of outputs.key-name")
    assert problem.message.endswith("offending tasks: [reader]")


def test_missing_trigger_inputs_is_a_warning():
    parsed = parse_flow(HEAD + f"""inputs:
  - {{id: needed, type: STRING}}
  - {{id: optional, type: STRING, required: false}}
  - {{id: defaulted, type: STRING, defaults: x}}
tasks:
  - {{id: a, type: {RETURN}}}
triggers:
  - {{id: nightly, type: io.kestra.plugin.core.trigger.Schedule, cron: "@daily"}}
  - {{id: fed, type: io.kestra.plugin.core.trigger.Schedule, cron: "@daily", inputs: {{needed: 1}}}}
""")
    assert [str(w) for w in parsed.warnings] == [
        "Missing inputs for Schedule Trigger 'nightly', missing inputs: 'needed'"]
    assert parsed.warnings[0].path == "triggers[0]"


# --------------------------------------------------------------------------------------------------
# Type-specific rules


def test_switch_needs_cases_or_defaults():
    problem = only(HEAD + "tasks:\n  - id: sw\n    type: io.kestra.plugin.core.flow.Switch\n    value: x\n"
                          "    cases: {}\n")
    assert str(problem) == "sw: No task defined, neither cases or default have any tasks"
    assert problem.line == 4


def test_dag_unknown_dependency_then_cycles():
    problem = only(HEAD + f"""tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {{id: a, type: {RETURN}}}
        dependsOn: [zz, b]
      - task: {{id: b, type: {RETURN}}}
        dependsOn: [yy]
""")
    assert str(problem) == "dag: Not existing task id in dependency: zz, yy"
    problem = only(HEAD + f"""tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {{id: a, type: {RETURN}}}
        dependsOn: [c]
      - task: {{id: b, type: {RETURN}}}
        dependsOn: [a]
      - task: {{id: c, type: {RETURN}}}
        dependsOn: [b]
      - task: {{id: d, type: {RETURN}}}
        dependsOn: [a]
""")
    assert str(problem) == "dag: Cyclic dependency detected: a, b, c"
    assert problem.line == 4


def test_dag_entry_shape():
    error = invalid(HEAD + f"""tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - dependsOn: []
      - task: {{id: a, type: {RETURN}}}
        after: [x]
""")
    assert [(e.path, e.message[:20]) for e in error.errors] == [
        ("tasks[0].tasks[0].task", "must not be null"), ("tasks[0].tasks[1].after", 'Unrecognized field "')]


def test_working_directory_rules():
    assert str(only(HEAD + "tasks:\n  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n")) == \
        "wd: The 'tasks' property cannot be empty"
    error = invalid(HEAD + f"""tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks: [{{id: a, type: {RETURN}}}]
      - id: routed
        type: {RETURN}
        workerGroup: {{key: gpu}}
""")
    assert [str(e) for e in error.errors] == [
        "wd: Only runnable tasks are allowed as children of a WorkingDirectory task",
        "wd: Cannot set a Worker Group in any WorkingDirectory sub-tasks, it is only supported at the "
        "WorkingDirectory level",
    ]


@pytest.mark.parametrize("cron, seconds", [
    ("* * * * *", False), ("*/5 0-6 1,15 JAN-MAR MON-FRI", False), ("0 0 L * *", False), ("0 0 * * 5L", False),
    ("0 0 * * MON#1", False), ("0 0 ? * MON", False), ("@hourly", False), ("@daily", False), ("@annually", False),
    ("30 0 0 * * *", True),
])
def test_valid_crons(cron, seconds):
    parse_flow(HEAD + f"tasks:\n  - {{id: a, type: {RETURN}}}\ntriggers:\n  - id: s\n"
                      f"    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n"
                      f"    withSeconds: {str(seconds).lower()}\n")


@pytest.mark.parametrize("cron", ["61 * * * *", "0 0 * * * *", "@reboot", "every day", "* * * *"])
def test_invalid_crons(cron):
    problem = only(HEAD + f"tasks:\n  - {{id: a, type: {RETURN}}}\ntriggers:\n  - id: s\n"
                          f"    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n")
    assert problem.message.startswith(f"invalid cron expression '{cron}': ")
    assert (problem.path, problem.line, problem.subject) == ("triggers[0].cron", 8, "s.cron")


def test_webhook_refuses_multiple_condition():
    problem = only(HEAD + f"""tasks:
  - {{id: a, type: {RETURN}}}
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k
    conditions:
      - id: m
        type: io.kestra.plugin.core.condition.MultipleCondition
        conditions:
          ok: {{type: io.kestra.plugin.core.condition.ExecutionStatus, in: [SUCCESS]}}
""")
    assert (problem.path, problem.message) == ("triggers[0].conditions[0]",
                                               "A Webhook trigger cannot use a MultipleCondition")


def test_condition_and_trigger_kinds_are_checked():
    error = invalid(HEAD + f"""tasks:
  - {{id: a, type: {RETURN}}}
triggers:
  - id: t
    type: {RETURN}
  - id: f
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.log.Log
      - type: io.kestra.plugin.core.condition.Not
""")
    assert [e.message for e in error.errors] == [
        f"Invalid type: {RETURN} is a runnable type, not a trigger",
        "Invalid type: io.kestra.plugin.core.log.Log is a runnable type, not a condition",
        "must not be empty",
    ]


@pytest.mark.parametrize("retry, message", [
    ("{maxAttempts: 2}", "missing type id property 'type' (for POJO property 'retry')"),
    ("{type: sometimes}", "Invalid type: sometimes (expected constant, exponential or random)"),
    ("{type: constant}", "must not be null"),
    ("{type: constant, interval: PT10S, maxDuration: PT5S}", "'interval' must be less than 'maxDuration' but is PT10S"),
    ("{type: exponential, interval: PT10S, maxInterval: PT5S}",
     "'interval' must be less than 'maxInterval' but is PT10S"),
    ("{type: random, minInterval: PT10S, maxInterval: PT5S}",
     "'minInterval' must be less than 'maxInterval' but is PT10S"),
    ("{type: random, minInterval: PT1S, maxInterval: PT5S, maxDuration: PT3S}",
     "'maxInterval' must be less than 'maxDuration' but is PT5S"),
    ("{type: constant, interval: PT1S, maxAttempt: 0}", "must be greater than or equal to 1"),
    ("{type: constant, interval: PT1S, delayFactor: 2}", 'Unrecognized field "delayFactor"'),
    ("{type: constant, interval: PT1S, behavior: LATER}",
     "must be one of RETRY_FAILED_TASK, CREATE_NEW_EXECUTION, not 'LATER'"),
])
def test_retry_rules(retry, message):
    problem = only(HEAD + f"tasks:\n  - id: a\n    type: {RETURN}\n    retry: {retry}\n")
    assert problem.message.startswith(message)
    assert problem.line == 6
    assert problem.path.startswith("tasks[0].retry")


def test_flow_level_retry_is_checked_too():
    assert only(HEAD + f"retry: {{type: constant}}\ntasks:\n  - {{id: a, type: {RETURN}}}\n").path == "retry.interval"


@pytest.mark.parametrize("defaults, path, message", [
    ("pluginDefaults: {type: x}", "pluginDefaults", "must be a list of {type, values, forced}"),
    ("pluginDefaults:\n  - values: {a: 1}", "pluginDefaults[0].type", "must not be null"),
    ("pluginDefaults:\n  - type: io.kestra", "pluginDefaults[0].values", "must not be null"),
    ("pluginDefaults:\n  - type: io.kestra\n    values: {a: null}", "pluginDefaults[0].values.a", "must not be null"),
    ("taskDefaults:\n  - type: io.kestra\n    values: {}\n    force: true", "taskDefaults[0].force",
     'Unrecognized field "force"'),
])
def test_plugin_defaults_shape(defaults, path, message):
    problem = only(HEAD + defaults + f"\ntasks:\n  - {{id: a, type: {RETURN}}}\n")
    assert problem.path == path and problem.message.startswith(message)


# --------------------------------------------------------------------------------------------------
# Inputs and outputs


def test_input_structure_rules():
    error = invalid(HEAD + f"""inputs:
  - id: first
    type: STRING
  - id: first
    type: STRING
  - id: "wrong one"
    type: FOO
  - id: untyped
tasks:
  - {{id: a, type: {RETURN}}}
""")
    messages = [str(e) for e in error.errors]
    assert "Duplicate input with name [first]" in messages
    assert find(error, "Invalid type: FOO").path == "inputs[2].type"
    assert find(error, "Invalid type: FOO").line == 9
    assert find(error, "must match").path == "inputs[2].id"
    assert find(error, "Invalid type: null").path == "inputs[3].type"
    assert error.kind == "parse"


def test_input_depends_on_rules():
    error = invalid(HEAD + f"""inputs:
  - id: a
    type: STRING
    dependsOn: {{inputs: [ghost]}}
tasks:
  - {{id: t, type: {RETURN}}}
""")
    assert find(error, "Input with id 'a' depends on a non-existent input 'ghost'.")


def test_output_definitions_need_a_value():
    error = invalid(HEAD + f"outputs:\n  - id: o\n    type: STRING\ntasks:\n  - {{id: t, type: {RETURN}}}\n")
    assert "must not be null" in error.errors[0].message
    assert error.errors[0].path.startswith("outputs[0]")


def test_pause_on_resume_inputs_are_checked():
    error = invalid(HEAD + """tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: answer
        type: NOPE
""")
    problem = find(error, "Invalid type: NOPE")
    assert problem.path == "tasks[0].onResume[0].type"
    assert problem.line == 8


# --------------------------------------------------------------------------------------------------
# Robustness: only FlowValidationError comes out of parse_flow


def _mutations(value: Any, rng: random.Random) -> Any:
    junk = [None, 0, -1, 3.5, True, "", "{{ x }}", "text", [], {}, [None], {"a": None}, {"type": "x"}, [1, [2]]]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = rng.choice(junk) if rng.random() < 0.12 else _mutations(item, rng)
        return out
    if isinstance(value, list):
        return [rng.choice(junk) if rng.random() < 0.12 else _mutations(item, rng) for item in value]
    return value


@needs_corpus
def test_mutated_corpus_flows_never_crash():
    rng = random.Random(1234)
    crashes = []
    for source in sorted((CORPUS / "valids").glob("*.y*ml")):
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        for _ in range(8):
            text = yaml.safe_dump(_mutations(document, rng), sort_keys=False)
            try:
                parse_flow(text)
            except FlowValidationError as exc:
                assert exc.errors and str(exc).startswith("Invalid Flow: ")
            except Exception as exc:  # noqa: BLE001 - the point of the test
                crashes.append(f"{source.name}: {exc.__class__.__name__}: {exc}")
    assert not crashes, "\n".join(crashes[:20])


# --------------------------------------------------------------------------------------------------
# The corpus' invalid flows (manifest cases of kind `invalid`)


#: cases where Celestra reports more (or other) violations than Kestra on purpose, see docs/compatibility.md
_COUNT_DIFFERS = {
    "invalid.invalid-parallel": "Kestra adds must-not-be-null next to must-not-be-empty and three id/namespace rules",
    "invalid.invalid-task": "each unknown type is reported, Kestra stops at the first of a list",
}


def _invalid_cases() -> list[dict]:
    if not CORPUS.is_dir():
        return []
    manifest = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
    return [case for case in manifest["cases"] if case["kind"] == "invalid"]


@needs_corpus
@pytest.mark.parametrize("case", _invalid_cases(), ids=lambda case: case["case"])
def test_invalid_corpus_case(case: dict):
    source = (CORPUS / case["file"]).read_text(encoding="utf-8")
    expect = case.get("expect") or {}
    if expect.get("invalid") == "update":
        pytest.skip("id/namespace immutability is checked when a flow is updated, not when it is parsed")
    if "results" in expect:  # bulk validation of a multi-document text
        results = parse_flow_documents(source)
        assert len(results) == expect["resultCount"]
        for result, wanted in zip(results, expect["results"]):
            assert isinstance(result, FlowValidationError)
            assert wanted["constraintsContains"] in str(result)
        return

    with pytest.raises(FlowValidationError) as caught:
        parse_flow(source)
    error = caught.value
    text = str(error)
    messages = [e.message for e in error.errors]
    if expect.get("invalid") in ("parse", "validate"):
        assert error.kind == expect["invalid"]
    for expected in expect.get("messageContains", []):
        assert expected in error.kestra_message
        assert expected.removeprefix(": ") in text  # Kestra's empty property path is not printed
    for expected in expect.get("messageEquals", []):
        if "not marked as ignorable" in expected:  # the known-property list is Celestra's own
            expected = expected.split(" (13 known properties")[0]
            assert any(m.startswith(expected) for m in messages), messages
        else:
            assert expected in messages
    for expected in expect.get("someMessageContains", []):
        assert any(expected in m for m in messages)
    for fragment, count in (expect.get("violationsContaining") or {}).items():
        assert sum(fragment in m for m in messages) == count
    for option in expect.get("messages", []):
        if "equals" in option:
            assert option["equals"] in messages
        else:
            assert any(option["contains"] in m for m in messages)
    if "eachMessageOneOf" in expect:  # "== 'text'" or "contains: text"; the missing type must be one of them
        equals = [o[3:].strip("'") for o in expect["eachMessageOneOf"] if o.startswith("== ")]
        contains = [o[len("contains: "):] for o in expect["eachMessageOneOf"] if o.startswith("contains: ")]
        assert any(m in equals or any(c in m for c in contains) for m in messages), messages
    if "violationCount" in expect and case["case"] not in _COUNT_DIFFERS:
        assert error.violation_count == expect["violationCount"], error.errors


@needs_corpus
def test_worker_group_flow_of_the_corpus_is_accepted():
    """Kestra OSS rejects ``workerGroup`` (Enterprise); Celestra routes tasks with it."""
    parsed = parse_flow((CORPUS / "invalids" / "worker-group.yaml").read_text(encoding="utf-8"))
    assert isinstance(parsed, Flow) and parsed.tasks[0].worker_group == "toto"


@needs_corpus
def test_every_invalid_file_is_rejected():
    accepted = {"worker-group.yaml", "simpleInvalidFlowUpdate.yaml"}  # see the two tests above
    for path in sorted((CORPUS / "invalids").rglob("*.y*ml")):
        if path.name in accepted:
            continue
        with pytest.raises(FlowValidationError):
            parse_flow(path.read_text(encoding="utf-8"))
