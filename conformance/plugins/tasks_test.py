"""``io.kestra.core.tasks.test``: test-only tasks of Kestra's core tests."""
from __future__ import annotations

import os
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.engine.secrets_codec import ENCRYPTED_TYPE, encrypt, is_configured
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core.flow import Sequential, Subflow

_PREFIX = "io.kestra.core.tasks.test."


@register
class BadExecutable(Subflow):
    """A Subflow whose result cannot be built: the child runs, then the task run fails."""

    type = _PREFIX + "BadExecutable"
    aliases = ()

    @classmethod
    def subflow_execution_result(cls, task: Any, result: dict[str, Any]) -> None:
        # Kestra's createSubflowExecutionResult throws here
        raise RuntimeError("An error!")


@register
class BadSequential(Sequential):
    """A Sequential whose state cannot be resolved once its children ended."""

    type = _PREFIX + "BadSequential"
    aliases = ()

    @classmethod
    def resolve_state(cls, task: Any, state: str) -> str:
        # Kestra's resolveState throws here
        raise RuntimeError("BAM")


@register
class DynamicTask(CorePlugin):
    """Adds one dynamic task run (child of its own run, value = its run id), then fails if ``fail``."""

    type = _PREFIX + "DynamicTask"
    kind = RUNNABLE

    class Props(Props):
        fail: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        fail = bool(ctx.render(self.task.props.get("fail", False)))
        add = getattr(ctx, "add_dynamic_task_run", None)
        if add is None:
            raise TaskFailure("this run context cannot record dynamic task runs")
        taskrun_id = (ctx.variables.get("taskrun") or {}).get("id")
        add(value=taskrun_id, state="FAILED" if fail else "SUCCESS")
        if fail:
            raise TaskFailure("Task failed")
        return None


@register
class Encrypted(CorePlugin):
    """``value``: an EncryptedString of ``format`` (not rendered, as in Kestra's test class)."""

    type = _PREFIX + "Encrypted"
    kind = RUNNABLE

    class Props(Props):
        format: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        text = self.task.props.get("format")
        if text is None:
            return {"value": None}
        # EncryptedString.from keeps the plain text when no key is configured
        value = encrypt(str(text)) if is_configured() else str(text)
        return {"value": {"type": ENCRYPTED_TYPE, "value": value}}


@register
class NullOutputTask(CorePlugin):
    """Output ``value`` present and null."""

    type = _PREFIX + "NullOutputTask"
    kind = RUNNABLE

    class Props(Props):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"value": None}


@register
class Read(CorePlugin):
    """``value``: the text of ``<working directory>/<rendered path>``."""

    type = _PREFIX + "Read"
    kind = RUNNABLE

    class Props(Props):
        path: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        root = os.path.realpath(ctx.working_dir)  # type: ignore[attr-defined]  # a worker context has one
        relative = ctx.render_string(self.task.props.get("path")).lstrip("/")
        target = os.path.realpath(os.path.join(root, relative))
        if os.path.commonpath([root, target]) != root:
            raise TaskFailure(f"path '{relative}' is outside the working directory")
        try:
            with open(target, encoding="utf-8") as handle:
                return {"value": handle.read()}
        except FileNotFoundError:
            raise TaskFailure(f"{target} (No such file or directory)") from None
