"""Plugin registry keyed by Kestra type name, legacy aliases included.

A plugin is a class registered with :func:`register`. It declares:

* ``type``: the canonical Kestra type (``io.kestra.plugin.core.log.Log``);
* ``aliases``: legacy names that resolve to the same class (``io.kestra.core.tasks.log.Log``);
* ``kind``: one of :data:`KINDS`;
* ``Props``: a pydantic model of its own properties (common task properties are validated by
  the flow model, not here). ``extra='forbid'`` so that unknown properties are reported;
* ``task_fields``: names of properties that hold nested tasks (parsed into :class:`Task` objects
  by the flow model);
* for runnable tasks, ``run(self, ctx)`` returning the outputs dict.
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .errors import CelestraError

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

RUNNABLE = "runnable"
FLOWABLE = "flowable"
EXECUTABLE = "executable"          # Subflow, ForEachItem's child: creates executions
EXECUTION_UPDATABLE = "execution-updatable"  # Labels, SetVariables...: applied by the executor
TRIGGER = "trigger"
CONDITION = "condition"
OTHER = "other"                    # task runners, dashboards... known types we only parse
KINDS = frozenset({RUNNABLE, FLOWABLE, EXECUTABLE, EXECUTION_UPDATABLE, TRIGGER, CONDITION, OTHER})


class UnknownPluginType(CelestraError):
    def __init__(self, type_name: str, suggestions: list[str]):
        self.type_name = type_name
        self.suggestions = suggestions
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"Invalid type: {type_name}{hint}")


class RunContext(Protocol):
    """What a runnable task sees while it runs on a worker."""

    task_id: str
    execution_id: str
    namespace: str
    flow_id: str
    variables: dict[str, Any]       # the full expression context

    def render(self, value: Any) -> Any:
        """Render a property value: strings, lists and maps recursively; a lone expression keeps its type."""

    def render_string(self, value: Any) -> str:
        """Render to text (maps and lists become JSON)."""

    def log(self, level: str, message: str) -> None:
        """Emit a task log line (levels ERROR, WARN, INFO, DEBUG, TRACE)."""

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        """Record a metric (kind ``counter`` or ``timer``; timers in seconds)."""

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising TaskKilled) when the attempt is killed or times out."""


class Plugin:
    type: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = RUNNABLE
    Props: ClassVar["type[BaseModel] | None"] = None
    #: property name -> "list" (list of tasks), "map" (map of lists of tasks), "dag" (Dag entries)
    #: or "single" (one task).
    task_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, task: Any):
        self.task = task  # the parsed flow Task this plugin instance serves

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raise CelestraError(f"Task type {self.type} cannot run here: it is not implemented yet")


_REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: register a plugin under its type and aliases."""
    if not cls.type:
        raise CelestraError(f"plugin {cls.__name__} has no type")
    if cls.kind not in KINDS:
        raise CelestraError(f"plugin {cls.type} has unknown kind {cls.kind!r}")
    for name in (cls.type, *cls.aliases):
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise CelestraError(f"duplicate plugin type {name}: {existing.__name__} and {cls.__name__}")
        _REGISTRY[name] = cls
    return cls


def lookup(type_name: str) -> type[Plugin]:
    """The plugin class for a type name or alias; raises UnknownPluginType with close matches."""
    load_builtin_plugins()
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownPluginType(type_name, suggest(type_name)) from None


def suggest(type_name: str, limit: int = 3) -> list[str]:
    load_builtin_plugins()
    canonical = sorted({cls.type for cls in _REGISTRY.values()})
    matches = difflib.get_close_matches(type_name, canonical, n=limit, cutoff=0.6)
    if not matches:  # compare the simple class names: "io.kestra.x.Lgo" -> Log
        short = type_name.rsplit(".", 1)[-1]
        by_short = {t.rsplit(".", 1)[-1]: t for t in canonical}
        matches = [by_short[m] for m in difflib.get_close_matches(short, list(by_short), n=limit, cutoff=0.7)]
    return matches


def registered_types() -> dict[str, type[Plugin]]:
    load_builtin_plugins()
    return dict(_REGISTRY)


_loaded = False


def load_builtin_plugins() -> None:
    """Import the plugin packages so that their @register decorators run (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    from orchestrator import plugins

    for module in pkgutil.walk_packages(plugins.__path__, plugins.__name__ + "."):
        importlib.import_module(module.name)
    from .plugin_entrypoints import load_entry_point_plugins

    load_entry_point_plugins()  # task types of installed packages (entry-point group celestra.plugins)
