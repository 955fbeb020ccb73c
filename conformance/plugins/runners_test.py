"""``io.kestra.core.runners.test`` and ``io.kestra.core.runners``: test-only types of Kestra's runner tests."""
from __future__ import annotations

import time
from typing import Any, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, TRIGGER, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Duration, Props, Text
from orchestrator.plugins.core.flow import Sequential

_PREFIX = "io.kestra.core.runners.test."
#: ListenersTestTask gives up after this long, as Kestra's test class does
LISTENER_WAIT_SECONDS = 600.0


class TaskFailureWithOutputs(TaskFailure):
    """Kestra's RunnableTaskException: the attempt fails and the task run keeps ``outputs``."""

    def __init__(self, message: str, outputs: dict[str, Any]):
        super().__init__(message)
        self.outputs = outputs


@register
class TaskThatFail(CorePlugin):
    """Fails with "An exception occurs" and the output ``message``."""

    type = _PREFIX + "TaskThatFail"
    kind = RUNNABLE

    class Props(Props):
        message: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        message = self.task.props.get("message")
        raise TaskFailureWithOutputs("An exception occurs",
                                     {"message": None if message is None else ctx.render_string(message)})


@register
class TaskWithAlias(CorePlugin):
    """Logs ``message`` at INFO; known under a second (alias) type name."""

    type = _PREFIX + "TaskWithAlias"
    aliases = (_PREFIX + "task.Alias",)
    kind = RUNNABLE

    class Props(Props):
        message: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        message = self.task.props.get("message")
        if message is not None:
            ctx.log("INFO", ctx.render_string(message))
        return None


@register
class TriggerWithAlias(CorePlugin):
    """A polling trigger (every hour) that never creates an execution."""

    type = _PREFIX + "TriggerWithAlias"
    aliases = (_PREFIX + "trigger.Alias",)
    kind = TRIGGER

    class Props(Props):
        interval: Duration = "PT1H"

    def evaluate(self, ctx: RunContext) -> dict[str, Any] | None:
        return None


@register
class WorkerTaskResultTooLarge(CorePlugin):
    """``value``: 1,100,000 times ``a``, more than a 1 MiB queue message."""

    type = _PREFIX + "WorkerTaskResultTooLarge"
    kind = RUNNABLE

    class Props(Props):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"value": "a" * 1_100_000}


def execution_to_string(execution: Any) -> str:
    """A text of the execution in the shape of Lombok's ``Execution.toString()`` (key fields only)."""
    state = execution.state
    labels = ", ".join(f"Label(key={label['key']}, value={label['value']})" for label in execution.labels or [])
    return (f"Execution(id={execution.id}, namespace={execution.namespace}, flowId={execution.flow_id}, "
            f"flowRevision={execution.flow_revision}, labels=[{labels}], "
            f"state=State(current={state.current}), parentId={getattr(execution, 'parent_id', None)})")


@register
class ListenersTestTask(CorePlugin):
    """Waits until its own execution is terminated in the repository; ``value`` = that execution's text."""

    type = "io.kestra.core.runners.ListenersTestTask"
    kind = RUNNABLE

    class Props(Props):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from flows_app.services import load_execution

        deadline = time.monotonic() + LISTENER_WAIT_SECONDS
        delay = 0.05
        while True:
            execution = load_execution(ctx.execution_id)
            if execution.state.is_terminated():
                return {"value": execution_to_string(execution)}
            if time.monotonic() >= deadline:
                raise TaskFailure(f"execution {ctx.execution_id} was not terminated within "
                                  f"{LISTENER_WAIT_SECONDS:.0f} s")
            ctx.sleep(delay)
            delay = min(delay * 2, 5.0)  # exponential backoff, as Kestra's test task


class _DefaultSequential(Sequential):
    """PluginDefaultsCaseTest's flowables: a Sequential with a ``def`` property, output ``{def}``."""

    aliases = ()

    class Props(Props):
        # `def` is a Python keyword: the field is def_, read under its alias
        def_: Optional[Text] = Field(None, alias="def")

    @classmethod
    def resolve(cls, step: Any, task: Any, run: Any) -> Any:
        main = super().resolve(step, task, run)
        if main is None:
            return None

        def with_outputs() -> str | None:
            state = main()
            if state is not None and run.outputs is None:
                value = task.props.get("def")
                rendered = None if value is None else step.render(value, run)
                # a String property: its text, whatever the expression's type
                step.set_outputs(run, {"def": rendered if rendered is None or isinstance(rendered, str)
                                       else str(rendered)})
            return state

        return with_outputs


_CASE = "io.kestra.core.runners.PluginDefaultsCaseTest$"


@register
class DefaultSequential1(_DefaultSequential):
    type = _CASE + "DefaultSequential1"


@register
class DefaultSequential2(_DefaultSequential):
    type = _CASE + "DefaultSequential2"


@register
class DefaultSequential3(_DefaultSequential):
    type = _CASE + "DefaultSequential3"
