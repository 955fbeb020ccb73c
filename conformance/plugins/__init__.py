"""Kestra's test-only plugin types (``TEST_PLUGINS.md`` of the corpus), for the conformance runner only.

Kestra keeps these classes in its test sources; corpus flows name them. They are ordinary plugin
classes registered with :func:`orchestrator.engine.plugins.register`, but they live outside the
``orchestrator.plugins`` package so that a production registry never holds them: only
:func:`load` (called when the runner starts) imports them. Modules mirror Kestra's packages:

* :mod:`.tasks_test`: ``io.kestra.core.tasks.test`` (BadExecutable, BadSequential, DynamicTask,
  Encrypted, NullOutputTask, Read);
* :mod:`.runners_test`: ``io.kestra.core.runners.test`` and ``io.kestra.core.runners``
  (TaskThatFail, TaskWithAlias, TriggerWithAlias, WorkerTaskResultTooLarge, ListenersTestTask,
  PluginDefaultsCaseTest's DefaultSequential1..3);
* :mod:`.plugins_test`: ``io.kestra.core.plugins.test`` (DeprecatedTask).
"""
from __future__ import annotations

import importlib

MODULES = ("tasks_test", "runners_test", "plugins_test")


def load() -> None:
    """Register the test-only types (idempotent: a second import does not register again)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")


def types() -> list[str]:
    """Every type name and alias these modules register."""
    load()
    from orchestrator.engine.plugins import registered_types

    return sorted(name for name, cls in registered_types().items() if cls.__module__.startswith(__name__ + "."))
