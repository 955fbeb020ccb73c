"""Runnable core tasks, run in a real run context on the in-memory platform (no worker, no database)."""
from __future__ import annotations

from typing import Any

import pytest

from orchestrator.engine import plugins
from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.flow import Task, parse_flow
from orchestrator.engine.truthy import is_truthy
from orchestrator.testing import TaskContext

def task(body: str) -> Task:
    """Parse one task the way the executor hands it to a worker (defaults filled in)."""
    return parse_flow("id: f\nnamespace: company.team\ntasks:\n  - id: t\n" + body).tasks[0]


def run(body: str, ctx: TaskContext) -> Any:
    return task(body).instance().run(ctx)


class TestLog:
    def test_message_at_default_level(self):
        ctx = TaskContext(inputs={"who": "world"})
        assert run("    type: io.kestra.plugin.core.log.Log\n    message: Hello {{ inputs.who }}\n", ctx) is None
        assert ctx.logs == [("INFO", "Hello world")]

    def test_each_item_of_a_list_at_a_rendered_level(self):
        ctx = TaskContext(level="warn")
        run("    type: io.kestra.core.tasks.log.Log\n    level: \"{{ level }}\"\n    message:\n      - one\n      - two\n", ctx)
        assert ctx.logs == [("WARN", "one"), ("WARN", "two")]

    def test_unknown_level_fails(self):
        with pytest.raises(TaskFailure, match="Invalid log level 'LOUD'"):
            run("    type: io.kestra.plugin.core.log.Log\n    message: x\n    level: \"{{ level }}\"\n",
                TaskContext(level="loud"))


class TestReturnAndEcho:
    def test_return_value_and_metrics(self):
        ctx = TaskContext(taskrun={"id": "abc"})
        assert run("    type: io.kestra.plugin.core.debug.Return\n    format: \"id={{ taskrun.id }}\"\n", ctx) == \
            {"value": "id=abc"}
        (counter, timer) = ctx.metrics
        assert counter == ("counter", "length", 6.0, {"format": "foo"})
        assert timer[0:2] == ("timer", "duration") and timer[2] >= 0

    def test_return_without_format(self):
        assert run("    type: io.kestra.plugin.core.debug.Return\n", TaskContext()) == {"value": None}

    def test_echo_logs_at_level(self):
        ctx = TaskContext(x=1)
        run("    type: io.kestra.core.tasks.debugs.Echo\n    format: \"x={{ x }}\"\n    level: ERROR\n", ctx)
        assert ctx.logs == [("ERROR", "x=1")]


class TestOutputValues:
    def test_values_are_rendered_with_types_kept(self):
        ctx = TaskContext(inputs={"n": 3, "name": "a"})
        outputs = run("    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      n: \"{{ inputs.n }}\"\n"
                      "      text: \"name={{ inputs.name }}\"\n      nested: [\"{{ inputs.n }}\"]\n", ctx)
        assert outputs == {"values": {"n": 3, "text": "name=a", "nested": [3]}}

    def test_no_values(self):
        assert run("    type: io.kestra.plugin.core.output.OutputValues\n", TaskContext()) == {"values": {}}


class TestSleep:
    @pytest.mark.parametrize("duration, seconds", [("PT2S", 2.0), ("PT1M30S", 90.0), ("PT0.5S", 0.5)])
    def test_sleeps_for_the_duration(self, duration, seconds):
        ctx = TaskContext()
        run(f"    type: io.kestra.plugin.core.flow.Sleep\n    duration: {duration}\n", ctx)
        assert ctx.slept == [seconds]

    def test_rendered_duration(self):
        ctx = TaskContext(inputs={"d": "PT3S"})
        run("    type: io.kestra.plugin.core.flow.Sleep\n    duration: \"{{ inputs.d }}\"\n", ctx)
        assert ctx.slept == [3.0]

    def test_bad_rendered_duration_fails(self):
        with pytest.raises(TaskFailure, match="Invalid duration"):
            run("    type: io.kestra.plugin.core.flow.Sleep\n    duration: \"{{ d }}\"\n", TaskContext(d="soon"))


class TestFail:
    def test_fails_without_condition(self):
        with pytest.raises(TaskFailure, match="^Task failure$"):
            run("    type: io.kestra.plugin.core.execution.Fail\n", TaskContext())

    @pytest.mark.parametrize("value", ["true", "1", "yes", "anything", " TRUE "])
    def test_fails_when_condition_truthy(self, value):
        with pytest.raises(TaskFailure, match="^boom a$"):
            run("    type: io.kestra.core.tasks.executions.Fail\n    condition: \"{{ c }}\"\n"
                "    errorMessage: \"boom {{ who }}\"\n", TaskContext(c=value, who="a"))

    @pytest.mark.parametrize("value", ["false", "FALSE", "0", "-0", "", "  ", None, False])
    def test_succeeds_when_condition_falsy(self, value):
        assert run("    type: io.kestra.plugin.core.execution.Fail\n    condition: \"{{ c }}\"\n",
                   TaskContext(c=value)) is None


class TestAssert:
    def test_all_true(self):
        ctx = TaskContext(a="ok", b=1)
        assert run("    type: io.kestra.plugin.core.execution.Assert\n    conditions:\n      - \"{{ a }}\"\n"
                   "      - \"{{ b }}\"\n", ctx) is None
        assert ctx.metrics == [("counter", "success", 2.0, None), ("counter", "failed", 0.0, None)]
        assert ctx.logs == []

    def test_failures_are_counted_logged_and_fail_the_task(self):
        ctx = TaskContext(a="false", b="0")
        with pytest.raises(TaskFailure) as caught:
            run("    type: io.kestra.plugin.core.execution.Assert\n    conditions:\n      - \"{{ a }}\"\n"
                "      - \"{{ b }}\"\n      - \"{{ missing }}\"\n      - ok\n    errorMessage: \"see {{ a }}\"\n", ctx)
        assert str(caught.value) == "3 assertions failed!\nsee false"
        assert ctx.logs[0] == ("ERROR", "Assertion `{{ a }}` failed!")
        assert ctx.logs[2][1].startswith("Assertion `{{ missing }}` failed, failed to render `")
        assert ctx.metrics == [("counter", "success", 1.0, None), ("counter", "failed", 3.0, None)]

    def test_single_failure_message(self):
        with pytest.raises(TaskFailure, match="^1 assertion failed!$"):
            run("    type: io.kestra.plugin.core.execution.Assert\n    conditions: [\"{{ a }}\"]\n",
                TaskContext(a=""))


@pytest.mark.parametrize("value, expected", [
    ("false", False), ("False", False), (" false ", False), ("0", False), ("-0", False), ("", False), (None, False),
    (False, False), (0, False), ("true", True), ("no", True), ("null", True), ("[]", True), ("0.0", True),
    (0.0, True), (1, True), (True, True),
])
def test_truthiness(value, expected):
    assert is_truthy(value) is expected


def test_every_registered_type_has_a_kind_and_props():
    for name, plugin in plugins.registered_types().items():
        assert plugin.kind in plugins.KINDS, name
        assert plugin.Props is not None, name


@pytest.mark.parametrize("name", ["Sequential", "Parallel", "If", "Switch", "ForEach", "EachSequential",
                                  "EachParallel", "AllowFailure", "Dag", "LoopUntil", "Pause", "ForEachItem",
                                  "WorkingDirectory", "Template"])
def test_flowable_kinds(name):
    assert plugins.lookup(f"io.kestra.plugin.core.flow.{name}").kind == plugins.FLOWABLE


def test_other_kinds():
    lookup = plugins.lookup
    assert lookup("io.kestra.plugin.core.flow.Sleep").kind == plugins.RUNNABLE
    assert lookup("io.kestra.plugin.core.flow.Subflow").kind == plugins.EXECUTABLE
    assert lookup("io.kestra.plugin.core.flow.WaitFor") is lookup("io.kestra.plugin.core.flow.LoopUntil")
    for name in ("Labels", "Exit", "SetVariables", "UnsetVariables"):
        assert lookup(f"io.kestra.plugin.core.execution.{name}").kind == plugins.EXECUTION_UPDATABLE
    assert lookup("io.kestra.plugin.core.trigger.Schedule").kind == plugins.TRIGGER
    assert lookup("io.kestra.plugin.core.http.Trigger").kind == plugins.TRIGGER
    assert lookup("io.kestra.plugin.core.trigger.Toggle").kind == plugins.RUNNABLE
    assert lookup("io.kestra.plugin.core.condition.Expression").kind == plugins.CONDITION
    assert lookup("io.kestra.plugin.core.runner.Process").kind == plugins.OTHER
    assert lookup("io.kestra.plugin.core.dashboard.chart.Bar").kind == plugins.OTHER
