"""Task types from installed Python packages: the ``celestra.plugins`` entry-point group.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."celestra.plugins"]
    text = "celestra_plugin_example"

Each entry point names a module (its ``@register`` decorators run when it is imported), a plugin class,
a list of plugin classes, or a function returning them. They are loaded once, after the built-in
plugins, by every process that looks up a task type (web, executor, worker, scheduler, CLI). A package
whose entry point fails to load stops the loading with an error that names the package and the entry
point: a task type that silently disappears would only fail later, at run time.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import logging
from types import ModuleType
from typing import Any, Iterable

from .plugins import Plugin, PluginLoadError, register

GROUP = "celestra.plugins"
logger = logging.getLogger(__name__)


def _package(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "an unknown package"
    return f"{dist.metadata['Name']} {dist.version}"


def _register_all(value: Any, where: str) -> list[type[Plugin]]:
    """Register what an entry point gives: a module, a class, an iterable of classes, or a factory."""
    if isinstance(value, ModuleType):
        return [obj for obj in vars(value).values() if inspect.isclass(obj) and issubclass(obj, Plugin)
                and obj.type and obj.__module__ == value.__name__]
    if inspect.isclass(value):
        if not issubclass(value, Plugin):
            raise PluginLoadError(f"{where}: {value.__qualname__} is not a plugin class (a subclass of Plugin)")
        register(value)
        return [value]
    if callable(value):
        return _register_all(list(value() or []), where)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        classes: list[type[Plugin]] = []
        for item in value:
            classes.extend(_register_all(item, where))
        return classes
    raise PluginLoadError(f"{where}: expected a module, a plugin class or a list of them, got {type(value).__name__}")


def load_entry_point_plugins(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> list[str]:
    """Load every ``celestra.plugins`` entry point; return the task types they registered."""
    selected = importlib.metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    loaded: list[str] = []
    for entry_point in sorted(selected, key=lambda ep: (ep.name, ep.value)):
        where = f"Plugin package {_package(entry_point)}, entry point '{entry_point.name} = {entry_point.value}'"
        try:
            classes = _register_all(entry_point.load(), where)
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(f"{where} failed to load: {type(exc).__name__}: {exc}") from exc
        names = [cls.type for cls in classes]
        logger.info("Loaded %d task type(s) from %s: %s", len(names), where, ", ".join(names) or "none")
        loaded.extend(names)
    return loaded
