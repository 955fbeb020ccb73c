"""Matchers of the conformance manifest: values, descriptions, operators, execution expectations."""
from __future__ import annotations

from typing import Any

import pytest

from conformance.expectations import (
    ExecutionView,
    check_execution,
    outputs_tree,
    reference_resolver,
)
from conformance.matchers import (
    MatchContext,
    Mismatch,
    check,
    first_mismatch,
    is_description,
    is_operator_mapping,
    typed_value_part,
)
from conformance.grammar import parse_call
from conformance.runner import (
    _request_body,
    resolve_task_run,
    check_input_error,
    check_violations,
    java_property_path,
    task_data,
)


def mismatch(expected: Any, actual: Any, ctx: MatchContext | None = None) -> str:
    with pytest.raises(Mismatch) as info:
        check(expected, actual, "", ctx)
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------
# Plain values
# ---------------------------------------------------------------------------------------------------------

class TestEquality:
    @pytest.mark.parametrize("expected, actual", [
        ("a", "a"), (1, 1), (1, 1.0), (42.42, 42.42), (True, True), (None, None), ([1, 2], [1, 2]),
        ({}, {}), ("PT60M", "PT1H"), ("PT15S", "PT15S"),
    ])
    def test_equal(self, expected, actual):
        check(expected, actual)

    @pytest.mark.parametrize("expected, actual", [
        ("1", 1), (1, "1"), (True, 1), (1, True), ("true", True), (None, ""), ("", None), (0, None),
        ("a", "A"), (1.5, 1.50001), ("PT60M", "PT61M"), (False, None),
    ])
    def test_strict(self, expected, actual):
        mismatch(expected, actual)

    def test_message_names_expected_and_actual(self):
        with pytest.raises(Mismatch) as info:
            check("SUCCESS", "FAILED", "state")
        assert str(info.value) == 'state: expected "SUCCESS", got "FAILED"'
        assert info.value.path == "state"

    def test_first_mismatch(self):
        assert first_mismatch({"a": 1}, {"a": 1, "b": 2}) is None
        assert first_mismatch({"a": 1}, {"a": 2}, "x") == "x.a: expected 1, got 2"


class TestMaps:
    def test_partial(self):
        check({"value": "x"}, {"value": "x", "other": 1})

    def test_missing_key_reads_as_null(self):
        check({"CREATED": None}, {"RUNNING": 0})
        assert "got no such key" in mismatch({"CREATED": 0}, {"RUNNING": 0})

    def test_nested_path(self):
        with pytest.raises(Mismatch) as info:
            check({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 3}]}}, "outputs")
        assert info.value.path == "outputs.a.b[1].c"

    def test_not_a_map(self):
        assert "expected a map" in mismatch({"a": 1}, [1])

    def test_empty_map_is_partial(self):
        check({}, {"a": 1})

    def test_seconds_of_a_duration(self):
        check({"intervalSeconds": 900}, {"interval": "PT15M"})
        assert "seconds" in mismatch({"intervalSeconds": 900}, {"interval": "PT16M"})


class TestLists:
    def test_length(self):
        assert "expected 3 elements" in mismatch([1, 2, 3], [1, 2])

    def test_order(self):
        mismatch([1, 2], [2, 1])

    def test_not_a_list(self):
        assert "expected a list" in mismatch([1], "1")


# ---------------------------------------------------------------------------------------------------------
# Typed values and descriptions
# ---------------------------------------------------------------------------------------------------------

class TestTypedValues:
    def test_value_part(self):
        assert typed_value_part("2019-10-06T18:27:49Z (Instant)") == "2019-10-06T18:27:49Z"
        assert typed_value_part("2013-08-09T14:19:00Z (Instant, from defaults)") == "2013-08-09T14:19:00Z"
        uri = "kestra:///a/b.yml (URI; stored content == uploaded file content)"
        assert typed_value_part(uri) == "kestra:///a/b.yml"
        assert typed_value_part("some text (not a type)") is None
        assert typed_value_part("call (Foo)") is None

    @pytest.mark.parametrize("expected, actual", [
        ("2019-10-06T18:27:49Z (Instant)", "2019-10-06T18:27:49Z"),
        ("2019-10-06 (LocalDate)", "2019-10-06"),
        ("18:27:49 (LocalTime)", "18:27:49"),
        ("PT5M6S (Duration)", "PT5M6S"),
    ])
    def test_compares_the_value(self, expected, actual):
        check(expected, actual)

    def test_wrong_value(self):
        mismatch("2019-10-06 (LocalDate)", "2019-10-07")

    def test_literal_parentheses_stay_literal(self):
        check("a (b)", "a (b)")
        mismatch("a (String)", "a (String) ")


class TestDescriptions:
    def test_is_description(self):
        assert is_description("<not null>")
        assert not is_description("a <b>")
        assert not is_description("<a> <b")

    def test_any_non_null(self):
        check("<parent execution id>", "abc")
        check("<the same string, unparsed>", {"x": 1})
        assert "got null" in mismatch("<not null>", None)

    def test_resolved(self):
        ctx = MatchContext(resolve=lambda d: (True, "id-1") if d == "execution id" else (False, None))
        check("<execution id>", "id-1", ctx=ctx)
        message = mismatch("<execution id>", "id-2", ctx)
        assert '"id-1"' in message and '"id-2"' in message

    def test_not_equal_to(self):
        check("<not equal to 'secret' (encrypted)>", "xyz")
        mismatch("<not equal to 'secret' (encrypted)>", "secret")
        mismatch("<ciphertext != 'Hello World', decrypts to 'Hello World'>", "Hello World")

    def test_iso_date_time(self):
        check("<ISO zoned date-time parseable by ZonedDateTime.parse>", "2024-01-01T10:00:00.123Z")
        mismatch("<ISO zoned date-time parseable by ZonedDateTime.parse>", "yesterday")

    def test_storage_content(self):
        files = {"kestra:///a/output.txt": b"Hello World", "kestra:///a/lines.txt": b"1\n2\n3\n"}
        ctx = MatchContext(read_file=lambda uri: files[uri])
        check("<storage URI whose content is 'Hello World'>", "kestra:///a/output.txt", ctx=ctx)
        mismatch("<storage URI whose content is 'Hello'>", "kestra:///a/output.txt", ctx)
        mismatch("<storage URI whose content is 'Hello World'>", "/tmp/output.txt", ctx)
        check("<storage URI ending with output.txt, content 'Hello World'>", "kestra:///a/output.txt", ctx=ctx)
        mismatch("<storage URI ending with input.txt, content 'Hello World'>", "kestra:///a/output.txt", ctx)
        check("<internal-storage URI of a file with exactly 3 lines>", "kestra:///a/lines.txt", ctx=ctx)
        mismatch("<internal-storage URI of a file with exactly 26 lines>", "kestra:///a/lines.txt", ctx)

    def test_storage_without_reader_is_noted(self):
        ctx = MatchContext()
        check("<storage URI whose content is 'x'>", "kestra:///a", ctx=ctx)
        assert ctx.loose

    def test_embedded(self):
        check("childs: from parents: <trigger-flow execution id>", "childs: from parents: 4XyZ")
        mismatch("childs: from parents: <trigger-flow execution id>", "childs: from parents: ")
        ctx = MatchContext(resolve=lambda d: (True, "E1"))
        check("childs: <execution id>", "childs: E1", ctx=ctx)
        mismatch("childs: <execution id>", "childs: E2", ctx)


# ---------------------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------------------

class TestOperators:
    def test_operator_mapping(self):
        assert is_operator_mapping({"contains": "x"})
        assert is_operator_mapping({"startsWith": "k", "fileContent": "x"})
        assert not is_operator_mapping({"contains": "x", "value": 1})
        assert not is_operator_mapping({})

    def test_contains(self):
        check({"contains": "value1"}, "second value1")
        assert "contains" in mismatch({"contains": "value2"}, "second value1")
        check({"contains": "b"}, ["a", "b"])
        mismatch({"contains": "c"}, ["a", "b"])
        mismatch({"contains": "1"}, 1)

    def test_starts_ends(self):
        check({"startsWith": "kestra://"}, "kestra:///x")
        mismatch({"startsWith": "kestra://"}, "file:///x")
        check({"endsWith": "'io.kestra.tests.invalid'"}, "Can't find flow template 'io.kestra.tests.invalid'")
        mismatch({"endsWith": "x"}, "xy")

    def test_regex_is_whole_value(self):
        check({"regex": r"kestra:///io/.*\.txt"}, "kestra:///io/a/b.txt")
        mismatch({"regex": r"kestra:///io/.*\.txt"}, "kestra:///io/a/b.txt.bak")
        check({"regex": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"}, "2024-01-02T03:04:05.678Z")
        mismatch({"regex": r"\d+"}, None)

    def test_has_items(self):
        check({"hasItems": ["1rstValue", "2ndValue"]}, ["0", "2ndValue", "1rstValue"])
        assert "missing item" in mismatch({"hasItems": ["x"]}, ["a"])

    def test_has_key(self):
        check({"hasKey": "hello.txt"}, {"hello.txt": "kestra:///x"})
        mismatch({"hasKey": "hello.txt"}, {})
        check({"hasKey": ["a", "b"]}, {"a": 1, "b": None})

    def test_contains_in_any_order(self):
        check({"containsInAnyOrder": ["RETRIED", "RETRIED", "FAILED"]}, ["FAILED", "RETRIED", "RETRIED"])
        mismatch({"containsInAnyOrder": ["RETRIED", "RETRIED", "FAILED"]}, ["FAILED", "FAILED", "RETRIED"])
        mismatch({"containsInAnyOrder": ["a"]}, ["a", "a"])
        check({"containsInAnyOrder": [{"key": "a", "value": "<x>"}]}, [{"key": "a", "value": "1"}])

    def test_any_of_and_equals(self):
        check({"anyOf": ["a", "b"]}, "b")
        mismatch({"anyOf": ["a", "b"]}, "c")
        check({"equals": "- task: failed"}, "- task: failed")
        mismatch({"equals": "x"}, "x ")

    def test_file_content(self):
        ctx = MatchContext(read_file=lambda uri: b"E1")
        check({"startsWith": "kestra://", "fileContent": "E1"}, "kestra:///f", ctx=ctx)
        mismatch({"fileContent": "E2"}, "kestra:///f", ctx)
        assert "no storage reader" in mismatch({"fileContent": "E2"}, "kestra:///f")


# ---------------------------------------------------------------------------------------------------------
# Execution expectations
# ---------------------------------------------------------------------------------------------------------

def run(task_id: str, state: str = "SUCCESS", *, id: str | None = None, parent: str | None = None,
        value: str | None = None, outputs: Any = None, attempts: int | None = 1,
        history: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": id or f"tr-{task_id}-{value}", "taskId": task_id, "parentTaskRunId": parent, "value": value,
        "outputs": outputs,
        "attempts": None if attempts is None else [{"state": {"current": state}} for _ in range(attempts)],
        "state": {"current": state, "histories": [{"state": s} for s in (history or ["CREATED", "RUNNING", state])]},
    }


def execution(runs: list[dict[str, Any]], state: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {"id": "E1", "flowId": "f", "state": {"current": state, "histories": [{"state": "CREATED"},
                                                                            {"state": state}]},
            "taskRunList": runs, "labels": [], "inputs": {}, "outputs": None, **extra}


def verify(expect: dict[str, Any], view: ExecutionView, original: ExecutionView | None = None) -> None:
    check_execution(expect, view, MatchContext(resolve=reference_resolver(view, original)), "", original)


def fails(expect: dict[str, Any], view: ExecutionView) -> Mismatch:
    with pytest.raises(Mismatch) as info:
        verify(expect, view)
    return info.value


class TestExecution:
    def view(self) -> ExecutionView:
        return ExecutionView(execution([
            run("first", "WARNING", id="a"),
            run("each", id="b", attempts=None),
            run("child", id="c", parent="b", value="v1", outputs={"value": "1"}),
            run("child", "FAILED", id="d", parent="b", value="v2", outputs={"value": "2"}, attempts=3,
                history=["CREATED", "RUNNING", "PAUSED", "RUNNING", "FAILED"]),
        ], state="FAILED", labels=[{"key": "system.correlationId", "value": "E1"}, {"key": "a", "value": "1"}]),
            logs=[{"message": "hello world", "level": "INFO", "taskId": "first", "taskRunId": "a"},
                  {"message": "Task failure", "level": "ERROR", "taskId": "child", "taskRunId": "d"}])

    def test_state_and_counts(self):
        verify({"state": "FAILED", "taskRunCount": 4, "taskRunCountMin": 2, "failedTaskRunCountMin": 1,
                "taskRunCounts": {"child": 2, "nope": 0}}, self.view())
        error = fails({"taskRunCount": 5}, self.view())
        assert error.path == "taskRunCount" and "got 4" in error.message

    def test_first_task_run(self):
        verify({"taskRuns": {"child": {"state": "SUCCESS", "attempts": 1, "outputs": {"value": "1"}},
                             "each": {"attempts": None}}}, self.view())
        assert fails({"taskRuns": {"missing": {"state": "SUCCESS"}}}, self.view()).path == "taskRuns.missing"

    def test_task_run_list(self):
        verify({"taskRunList": [{"index": 3, "attemptNumber": 3, "attemptState": "FAILED",
                                 "stateHistoryCounts": {"PAUSED": 1, "RUNNING": 2},
                                 "stateHistoryCount": 5}],
                "taskRunListLast": {"taskId": "child", "lastAttemptState": "FAILED"}}, self.view())
        assert "no task run at index 9" in fails({"taskRunList": [{"index": 9, "state": "X"}]}, self.view()).message
        error = fails({"taskRunList": [{"index": 0, "unknownThing": 1}]}, self.view())
        assert "unsupported" in error.message

    def test_by_value(self):
        verify({"taskRunsByValue": [{"taskId": "child", "values": ["v2"], "outputs": {"value": "2"}}]}, self.view())
        assert "values seen" in fails({"taskRunsByValue": [{"taskId": "child", "values": ["v9"]}]},
                                      self.view()).message

    def test_outputs(self):
        verify({"taskOutputs": {"child": {"value": "1"}}}, self.view())
        verify({"taskOutputsExact": {"child": {"value": "1"}}}, self.view())
        fails({"taskOutputsExact": {"child": {}}}, self.view())
        verify({"flowOutputs": None}, self.view())

    def test_labels(self):
        verify({"labels": {"a": "1"}, "labelCount": 2,
                "labelsExactly": {"system.correlationId": "<execution id>", "a": "1"},
                "labelsInOrder": [{"system.correlationId": "E1"}]}, self.view())
        fails({"labelsExactly": {"a": "1"}}, self.view())
        fails({"labelsExactly": {"system.correlationId": "<execution id>", "a": "2"}}, self.view())

    def test_logs(self):
        verify({"logs": [{"contains": "world"}, {"level": "ERROR", "equals": "Task failure"},
                         {"taskRunIndex": 3, "startsWith": "Task"}]}, self.view())
        error = fails({"logs": [{"level": "ERROR", "contains": "world"}]}, self.view())
        assert "no log entry" in error.message

    def test_unknown_key_is_reported(self):
        assert fails({"somethingNew": 1}, self.view()).message == "unsupported expectation"

    def test_children(self):
        grand = ExecutionView(execution([], flowId="grand", id="G",
                                        labels=[{"key": "system.correlationId", "value": "E1"}]))
        child = ExecutionView(execution([run("t")], flowId="child", id="C"), children=[grand])
        parent = ExecutionView(execution([]), children=[child])
        verify({"childExecutions": {"grand": {"labels": {"system.correlationId": "<top-level parent execution id>"}},
                                    "child": {"taskRunCount": 1}},
                "childExecutionCount": 1, "lastChildExecution": {"flowId": "child"}}, parent)
        assert "no child execution" in fails({"childExecutions": {"other": {}}}, parent).message

    def test_against_original(self):
        original = ExecutionView(execution([run("t", id="x")]))
        same = ExecutionView(execution([run("t", id="y")]))
        verify({"sameId": True, "newExecutionId": False, "taskRunIdsRegenerated": True}, same, original)
        with pytest.raises(Mismatch):
            verify({"taskRunIdsRegenerated": True}, original, original)

    def test_in_state_counts(self):
        verify({"taskRunsInStateFAILEDMin": 1, "allTaskRunsState": {"anyOf": ["SUCCESS", "WARNING", "FAILED"]},
                "attemptsByIndex": [1, None, 1, 3]}, self.view())
        fails({"taskRunsInStateRESTARTEDMin": 1}, self.view())

    def test_outputs_tree(self):
        runs = [
            run("each", id="e", attempts=None),
            run("inner", id="i1", parent="e", value="v11"),
            run("ret", id="r1", parent="i1", value="v21", outputs={"value": "a"}),
            run("ret", id="r2", parent="i1", value="v22", outputs={"value": "b"}),
            run("top", id="t", outputs={"value": "c"}),
        ]
        view = ExecutionView(execution(runs))
        assert outputs_tree(view) == {"ret": {"v11": {"v21": {"value": "a"}, "v22": {"value": "b"}}},
                                      "top": {"value": "c"}}


class TestReferences:
    def test_resolver(self):
        view = ExecutionView(execution([run("update-labels", id="TR")]))
        original = ExecutionView(execution([], id="O"))
        resolve = reference_resolver(view, original)
        assert resolve("execution id") == (True, "E1")
        assert resolve("parent execution id") == (True, "E1")
        assert resolve("top-level parent (subflow-parent) execution id") == (True, "E1")
        assert resolve("trigger-flow execution id") == (True, "E1")
        assert resolve("task run id of task update-labels") == (True, "TR")
        assert resolve("task run id of task other") == (False, None)
        assert resolve("original execution id") == (True, "O")
        assert resolve("not null") == (False, None)


# ---------------------------------------------------------------------------------------------------------
# Runner helpers that interpret the manifest (pure)
# ---------------------------------------------------------------------------------------------------------

class FakeError:
    def __init__(self, path: str, message: str, label: str | None = None):
        self.path, self.message, self.label = path, message, label if label is not None else path

    def __str__(self) -> str:
        return f"{self.label}: {self.message}" if self.label else self.message


class FlowValidationError(Exception):
    def __init__(self, errors: list[FakeError]):
        self.errors = errors
        super().__init__("Invalid Flow: " + ", ".join(map(str, errors)))


class InputValidationError(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__(", ".join(m for _, m in errors))


class TestViolations:
    error = FlowValidationError([FakeError("tasks[0].invalid", "Unrecognized field \"invalid\""),
                                 FakeError("", "must not be empty")])

    def test_counts_and_messages(self):
        check_violations({"violationCount": 2, "messageContains": ["Unrecognized field"],
                          "messageEquals": ["must not be empty"],
                          "propertyPath": 'io.kestra.core.models.flows.Flow["tasks"]->java.util.ArrayList[0]'
                                          '->io.kestra.plugin.core.debug.Return["invalid"]'}, self.error)
        with pytest.raises(Mismatch):
            check_violations({"violationCount": 1}, self.error)
        with pytest.raises(Mismatch):
            check_violations({"messageEquals": ["must not"]}, self.error)
        with pytest.raises(Mismatch, match="unsupported"):
            check_violations({"newKey": 1}, self.error)

    def test_message_contains_reads_kestra_s_violation_text(self):
        # a flow-level violation prints with an empty path in Kestra's exception message
        check_violations({"messageContains": [": must not be empty", "tasks[0].invalid: Unrecognized"]}, self.error)
        with pytest.raises(Mismatch):
            check_violations({"messageContains": ["x: must not be empty"]}, self.error)

    def test_messages_each_and_some(self):
        check_violations({"messages": [{"contains": "must not"}, {"contains": "Unrecognized"}]}, self.error)
        with pytest.raises(Mismatch):
            check_violations({"messages": [{"contains": "must not"}, {"equals": "must not be empty"}]}, self.error)
        check_violations({"someMessageContains": ["Unrecognized"], "violationsContaining": {"must not": 1}},
                         self.error)
        check_violations({"eachMessageOneOf": ["== 'must not be empty'", "contains: Unrecognized"]}, self.error)
        with pytest.raises(Mismatch):
            check_violations({"eachMessageOneOf": ["== 'must not be empty'"]}, self.error)

    def test_java_property_path(self):
        assert java_property_path('a.Flow["tasks"]->java.util.ArrayList[0]->x.Return["invalid"]') == "tasks[0].invalid"
        assert java_property_path('a.Flow["id"]') == "id"

    def test_input_errors(self):
        error = InputValidationError([("enum", "Invalid input for `enum`, it must match")])
        check_input_error({"type": "ConstraintViolationException", "contains": "it must match"}, error, "error")
        check_input_error({"equals": "enum: Invalid input for `enum`, it must match"}, error, "error")
        with pytest.raises(Mismatch):
            check_input_error({"type": "IllegalArgumentException"}, error, "error")
        with pytest.raises(Mismatch):
            check_input_error({"contains": "nope"}, error, "error")


class TestActions:
    def test_body(self):
        assert _request_body("with JSON body {a: 1, b: true}") == {"json_body": {"a": 1, "b": True}}
        assert _request_body("(no query) with JSON body [{a: 1}]") == {"json_body": [{"a": 1}]}
        assert _request_body("body {hello: world}") == {"json_body": {"hello": "world"}}
        assert _request_body("with raw text body 'bla'") == {"raw": "bla", "content_type": "text/plain"}
        assert _request_body("(no body)") == {}

    def test_task_run_id(self):
        view = ExecutionView(execution([
            run("each", id="e", attempts=None),
            run("seq", id="s1", parent="e", value="value 1"),
            run("seq", id="s2", parent="e", value="value 2"),
            run("2_end", id="end"),
        ]))
        def resolved(text: str) -> str | None:
            return resolve_task_run(view, parse_call(text).args["taskRunId"])

        assert resolved("replay(execution, taskRunId of (seq, ['value 2']))") == "s2"
        assert resolved("replay(execution, from task run of 2_end)") == "end"
        assert resolved("replay(execution, taskRunId of 2_end)") == "end"
        assert resolved("markAs(taskRun 'each', RUNNING)") == "e"
        assert resolved("replay(execution, taskRunId=<id of 2_end>)") == "end"
        assert resolved("replay(execution, taskRunId=null)") is None

    def test_unknown_task_run_fails_naming_it(self):
        from conformance.runner import CaseFailure

        view = ExecutionView(execution([run("a", id="x")]))
        with pytest.raises(CaseFailure, match="no task run of 'missing'"):
            resolve_task_run(view, parse_call("replay(execution, taskRunId of missing)").args["taskRunId"])
        with pytest.raises(CaseFailure, match=r"with values \['v'\]"):
            resolve_task_run(view, parse_call("replay(execution, taskRunId of (a, ['v']))").args["taskRunId"])

    def test_task_data(self):
        from dataclasses import dataclass, field

        @dataclass
        class Task:
            id: str
            type: str
            props: dict = field(default_factory=dict)
            allow_failure: bool = False
            timeout: str | None = None

        data = task_data(Task("t3", "io.kestra.plugin.core.log.Log", {"message": "m"}, timeout="PT60M"))
        assert data == {"id": "t3", "type": "io.kestra.plugin.core.log.Log", "allowFailure": False,
                        "timeout": "PT60M", "message": "m"}


class TestRunnerHelpers:
    def test_api_path(self):
        from conformance.runner import _api_path

        assert _api_path("/api/v1/executions/a/b") == "/api/v1/main/executions/a/b"
        assert _api_path("/api/v1/main/flows") == "/api/v1/main/flows"
        assert _api_path("/flows/validate") == "/api/v1/main/flows/validate"

    def test_seconds(self):
        from conformance.runner import CaseFailure, _seconds

        assert _seconds("15s") == 15 and _seconds("1m") == 60 and _seconds("500ms") == 0.5 and _seconds("2") == 2
        with pytest.raises(CaseFailure):
            _seconds("soon")

    def test_summarize(self):
        from conformance.runner import CaseResult, summarize

        totals = summarize([CaseResult("a", "engine", "passed"), CaseResult("b", "engine", "failed", "x", "timeout"),
                            CaseResult("c", "parse", "failed", "y", "timeout"),
                            CaseResult("d", "parse", "failed", "z", "mismatch state")])
        assert totals["passed"] == 1 and totals["failed"] == 3 and totals["passRate"] == 25.0
        assert list(totals["failureCategories"].items()) == [("timeout", 2), ("mismatch state", 1)]

    def test_validation_result(self):
        from conformance.runner import check_validation_result

        result = {"constraints": "Unrecognized field \"unknownProp\"", "outdated": False,
                  "deprecationPaths": ["tasks[1]", "tasks[0]"], "warnings": [], "infos": ["x"]}
        check_validation_result({"constraintsContains": "unknownProp", "outdated": False,
                                 "deprecationPathsExactly": ["tasks[0]", "tasks[1]"], "warnings": 0, "infos": 1},
                                result, "results[0]")
        with pytest.raises(Mismatch):
            check_validation_result({"constraintsContains": "other"}, result, "results[0]")
        with pytest.raises(Mismatch):
            check_validation_result({"constraints": None}, result, "results[0]")

    def test_parsed_flow(self):
        from types import SimpleNamespace

        from conformance.runner import check_parsed_flow

        task = SimpleNamespace(id="t")
        flow = SimpleNamespace(
            tasks=[task, task], triggers=[SimpleNamespace(id="tr")], all_tasks=lambda: [task, task, task],
            inputs=[{"id": "a", "type": "STRING", "validator": "^x$"}, {"id": "b", "type": "INT", "required": False,
                                                                        "defaults": 1}],
        )
        check_parsed_flow({"taskCount": 2, "inputCount": 2, "requiredCount": 1, "optionalCount": 1,
                           "withDefaultsCount": 1, "stringInputsWithValidator": 1, "valid": True,
                           "allTasksWithChildsAndTriggerIdsCount": 4,
                           "inputs": [{"id": "a"}, {"type": "INT"}]}, flow, "")
        with pytest.raises(Mismatch, match="unsupported"):
            check_parsed_flow({"somethingElse": 1}, flow, "")
        with pytest.raises(Mismatch):
            check_parsed_flow({"task[5]": {"id": "t"}}, flow, "")
