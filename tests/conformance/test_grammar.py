"""The manifest's operation-call grammar and expectation paths (conformance.grammar)."""
from __future__ import annotations

import pytest

from conformance.grammar import (
    Description,
    ExecutionRef,
    GrammarError,
    TaskRunRef,
    expand_all,
    expand_paths,
    is_call,
    parse_call,
    path_parts,
    tokenize,
)

CURRENT = ExecutionRef("current")


class TestTokenizer:
    def test_kinds(self):
        tokens = tokenize("markAs(execution, taskRun (2-1_seq, ['value 1']), FAILED) <id of x> … →")
        kinds = [(t.kind, t.value) for t in tokens]
        assert ("WORD", "markAs") in kinds
        assert ("WORD", "2-1_seq") in kinds
        assert ("STRING", "value 1") in kinds
        assert ("DESC", Description("id of x")) in kinds
        assert kinds[-2][0] == "ELLIPSIS" and kinds[-1][0] == "ARROW"

    def test_numbers_and_ids(self):
        assert [(t.kind, t.value) for t in tokenize("2 -3 1.5 2_end")] == [
            ("NUMBER", 2), ("NUMBER", -3), ("NUMBER", 1.5), ("WORD", "2_end")]

    def test_escaped_quote(self):
        assert tokenize(r"'it\'s'")[0].value == "it's"


class TestCalls:
    @pytest.mark.parametrize("text, name, args", [
        ("restart(execution)", "restart", {"execution": CURRENT, "revision": None}),
        ("restart(execution, revision=2)", "restart", {"execution": CURRENT, "revision": 2}),
        ("restart(execution, 2)", "restart", {"execution": CURRENT, "revision": 2}),
        ("replay(execution, from task run of 2_end)", "replay",
         {"execution": CURRENT, "taskRunId": TaskRunRef("2_end"), "revision": None}),
        ("replay(execution, taskRunId of (2-1_seq, ['value 1']))", "replay",
         {"execution": CURRENT, "taskRunId": TaskRunRef("2-1_seq", ("value 1",)), "revision": None}),
        ("replay(execution, taskRunId of 1-3-2_par)", "replay",
         {"execution": CURRENT, "taskRunId": TaskRunRef("1-3-2_par"), "revision": None}),
        ("replay(execution, taskRunId=null)", "replay", {"execution": CURRENT, "taskRunId": None, "revision": None}),
        ("replay(execution, taskRunId=<id of task run 'instant'>, revision=3)", "replay",
         {"execution": CURRENT, "taskRunId": TaskRunRef("instant"), "revision": 3}),
        ("markAs(execution, taskRun (2-1_seq, ['value 1']), FAILED)", "markAs",
         {"execution": CURRENT, "taskRunId": TaskRunRef("2-1_seq", ("value 1",)), "newState": "FAILED"}),
        ("markAs(original execution, taskRun (t, ['a', 'b']), FAILED)", "markAs",
         {"execution": ExecutionRef("original"), "taskRunId": TaskRunRef("t", ("a", "b")), "newState": "FAILED"}),
        ("markAs(taskRun 'pause', RUNNING)", "markAs",
         {"execution": None, "taskRunId": TaskRunRef("pause"), "newState": "RUNNING"}),
        ("resume(execution, RUNNING)", "resume", {"execution": CURRENT, "newState": "RUNNING", "inputs": None}),
        ("resume(RUNNING)", "resume", {"execution": None, "newState": "RUNNING", "inputs": None}),
        ("kill(execution)", "kill", {"execution": CURRENT}),
        ("delete(execution, deleteLogs=false…)", "delete",
         {"execution": CURRENT, "deleteLogs": False, "deleteMetrics": True, "deleteStorage": True}),
        ("delete(execution, deleteLogs=false, deleteMetrics=false, deleteStorage=true)", "delete",
         {"execution": CURRENT, "deleteLogs": False, "deleteMetrics": False, "deleteStorage": True}),
        ("unqueue(execution, RUNNING)", "unqueue", {"execution": CURRENT, "state": "RUNNING"}),
    ])
    def test_forms(self, text, name, args):
        call = parse_call(text)
        assert (call.name, call.args) == (name, args)

    def test_rest_after_the_call(self):
        call = parse_call("resume(RUNNING) with form inputs: asked='restarted', data=<FILE upload>")
        assert call.rest == "with form inputs: asked='restarted', data=<FILE upload>"
        assert parse_call("restart(result) again").rest == "again"

    def test_given_parameters(self):
        assert parse_call("replay(execution, taskRunId=null)").given == {"execution", "taskRunId"}
        assert parse_call("restart(execution)").given == {"execution"}

    def test_update_the_flow(self):
        call = parse_call("update the flow → revision 2")
        assert (call.name, call.args["revision"]) == ("update", 2)
        assert parse_call("update the flow -> revision 3").args["revision"] == 3
        assert parse_call("update(flow, revision=2)").args["revision"] == 2

    @pytest.mark.parametrize("text, message", [
        ("frobnicate(execution)", "unknown operation 'frobnicate'"),
        ("replay(execution, banana split)", "unknown argument form 'banana split'"),
        ("restart(execution", "unexpected end"),
        ("restart(execution, foo=1)", "unknown argument 'foo'"),
        ("markAs(execution, taskRun 'x', BANANA)", "unknown state 'BANANA'"),
        ("restart(execution, 1, 2)", "too many arguments"),
        ("restart(execution, revision=1, revision=2)", "argument revision given twice"),
        ("kill(execution, FAILED)", "takes no state"),
        ("replay(execution, taskRunId=<the first one>)", "unknown task-run description"),
        ("replay(execution, taskRun (a, ['v'], 3))", "(taskId, [values])"),
        ("restart(execution ? )", "unexpected '?'"),
        ("", "an empty operation"),
    ])
    def test_unknown_forms_name_themselves(self, text, message):
        with pytest.raises(GrammarError) as info:
            parse_call(text)
        assert message in str(info.value)

    def test_is_call(self):
        assert is_call("restart(execution)")
        assert is_call("update the flow → revision 2")
        assert not is_call("POST /api/v1/executions/{id}/restart")
        assert not is_call("any method on /api/v1/x")
        assert not is_call(None)


class TestExpectationPaths:
    def test_parts(self):
        assert path_parts("taskRunList[2].outputs.value") == ["taskRunList", 2, "outputs", "value"]
        assert path_parts("taskRunList[-1].state") == ["taskRunList", -1, "state"]
        with pytest.raises(GrammarError, match="malformed expectation path"):
            path_parts("a..b[")

    def test_expand(self):
        assert expand_paths({
            "taskRunList[2].state": "FAILED", "taskRunList[3].outputs.value": "x",
            "taskRuns.t1.state": "SUCCESS", "taskRuns.t1.attempts": 2, "taskOutputs.t2.value": "v",
            "state": "SUCCESS",
        }) == {
            "taskRunList": [{"index": 2, "state": "FAILED"}, {"index": 3, "outputs": {"value": "x"}}],
            "taskRuns": {"t1": {"state": "SUCCESS", "attempts": 2}}, "taskOutputs": {"t2": {"value": "v"}},
            "state": "SUCCESS",
        }

    def test_merges_with_nested_form(self):
        assert expand_paths({"taskRunList": [{"index": 0, "state": "SUCCESS"}], "taskRunList[1].state": "FAILED"}) == {
            "taskRunList": [{"index": 0, "state": "SUCCESS"}, {"index": 1, "state": "FAILED"}]}
        assert expand_paths({"taskRuns": {"a": {"state": "SUCCESS"}}, "taskRuns.a.attempts": 1}) == {
            "taskRuns": {"a": {"state": "SUCCESS", "attempts": 1}}}

    def test_aliases_and_logs(self):
        assert expand_paths({"sameIdAsOriginal": True}) == {"sameId": True}
        assert expand_paths({"logsByTaskRunIndex": {0: [{"contains": "a"}], 2: "b"}}) == {
            "logs": [{"contains": "a", "taskRunIndex": 0}, {"contains": "b", "taskRunIndex": 2}]}
        assert expand_paths({"logsByTaskId": {"t": [{"equals": "x", "level": "INFO"}]}}) == {
            "logs": [{"equals": "x", "level": "INFO", "taskId": "t"}]}

    def test_nested_phases(self):
        assert expand_all({"final": {"taskRunList[0].state": "SUCCESS"}, "childExecutions": {
            "sub": {"taskRuns.t.state": "FAILED"}}}) == {
            "final": {"taskRunList": [{"index": 0, "state": "SUCCESS"}]},
            "childExecutions": {"sub": {"taskRuns": {"t": {"state": "FAILED"}}}}}

    def test_data_keys_are_left_alone(self):
        # a dotted key inside a value (input names, outputs) is data, not a path
        assert expand_paths({"inputs": {"nested.string": "a"}}) == {"inputs": {"nested.string": "a"}}

    def test_other_keys_keep_their_dots(self):
        # parse-case checks name the flow's own fields
        assert expand_paths({"task[2].retry.maxAttempt": 5, "flowOutputs.a": 1}) == {
            "task[2].retry.maxAttempt": 5, "flowOutputs": {"a": 1}}

    def test_bad_paths(self):
        with pytest.raises(GrammarError, match="only known after taskRunList"):
            expand_paths({"taskRuns.t[0]": 1})
        with pytest.raises(GrammarError, match="given twice"):
            expand_paths({"flowOutputs": "A", "flowOutputs.x": 1})
