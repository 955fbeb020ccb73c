"""What a task type of one's own imports: the base class, the Props base, value types, errors, helpers.

A plugin package depends on these names only; see docs/plugin-api.md::

    from orchestrator.plugins.sdk import RUNNABLE, Props, RunContext, Task, TaskFailure, Text, register
"""
from __future__ import annotations

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin as Task
from orchestrator.plugins.core._common import Duration, Props, Text, TextOrList
from orchestrator.plugins.core._render import render_bool, render_int, render_text, render_text_list

__all__ = ["RUNNABLE", "Duration", "Props", "RunContext", "Task", "TaskFailure", "Text", "TextOrList", "platform_of",
           "register", "render_bool", "render_int", "render_text", "render_text_list"]
