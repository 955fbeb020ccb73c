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


def classes() -> list[type]:
    """The plugin classes of these modules (importing them registers them the first time)."""
    from orchestrator.engine.plugins import Plugin

    found = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found += [obj for obj in vars(module).values()
                  if isinstance(obj, type) and issubclass(obj, Plugin) and "type" in vars(obj)
                  and obj.__module__ == module.__name__]
    return found


def load() -> None:
    """Register the test-only types (idempotent; again after :func:`unload`)."""
    from orchestrator.engine.plugins import register

    for cls in classes():
        register(cls)


def unload() -> None:
    """Take the test-only types out of the registry again (tests that ran the runner in-process)."""
    from orchestrator.engine.plugins import unregister

    for cls in classes():
        unregister(cls)


def types() -> list[str]:
    """Every type name and alias these modules register."""
    load()
    from orchestrator.engine.plugins import registered_types

    return sorted(name for name, cls in registered_types().items() if cls.__module__.startswith(__name__ + "."))
