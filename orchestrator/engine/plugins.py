"""Plugin registry keyed by Kestra type name, legacy aliases included.

A plugin is a class registered with :func:`register`. It declares:

* ``type``: the canonical Kestra type (``io.kestra.plugin.core.log.Log``);
* ``aliases``: legacy names that resolve to the same class (``io.kestra.core.tasks.log.Log``);
* ``kind``: one of :data:`KINDS`;
* ``Props``: a pydantic model of its own properties (common task properties are validated by
  the flow model, not here). ``extra='forbid'`` so that unknown properties are reported;
* ``task_fields``: names of properties that hold nested tasks (parsed into :class:`Task` objects
  by the flow model);
* for runnable tasks, ``run(self, ctx)`` returning the outputs dict;
* for flowable tasks, the strategy that decides their children and their state: ``resolve``
  (Kestra's ``FlowableTask.resolveNexts``) returns the main block, ``resolve_state`` adjusts the
  block's state (Kestra's ``resolveState``), ``drive`` puts both together and may be overridden
  whole (Pause);
* for execution-updating tasks, ``update_execution`` (Labels, SetVariables...);
* for conditions, ``test(props, ctx)``.

The executor calls these hooks through ``task.plugin`` and never switches on type names.
"""
from __future__ import annotations

import builtins
import difflib
import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol

from .errors import CelestraError

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from .executor import Step
    from .model import TaskRun

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
    Props: ClassVar[builtins.type[BaseModel] | None] = None  # `type` is also an attribute here
    #: property name -> "list" (list of tasks), "map" (map of lists of tasks), "dag" (Dag entries)
    #: or "single" (one task).
    task_fields: ClassVar[dict[str, str]] = {}

    #: loops (ForEach...): children run once per value and their outputs are keyed by value
    #: (Kestra's dynamic task runs)
    dynamic: ClassVar[bool] = False
    #: a worker job of this type carries the whole expression context (a WorkingDirectory's
    #: children may read anything), not only what the task's own expressions read
    whole_context_job: ClassVar[bool] = False
    #: restart and replay start this task again as a whole, like a runnable (WorkingDirectory)
    restarts_as_a_whole: ClassVar[bool] = False
    #: its children run side by side (Parallel, EachParallel): for plan order they are one section
    runs_children_in_parallel: ClassVar[bool] = False
    #: a run of this type pauses the execution and may carry ``onResume`` inputs (Pause)
    pauses: ClassVar[bool] = False
    #: executables creating many children (ForEachItem's batches): every child's creation and end
    #: is applied through :meth:`apply_child_result`, even once the run has ended
    follows_each_child: ClassVar[bool] = False

    def __init__(self, task: Any):
        self.task = task  # the parsed flow Task this plugin instance serves

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        raise CelestraError(f"Task type {self.type} cannot run here: it is not implemented yet")

    # --- executor hooks (classmethods: the executor calls them with the parsed task) -------------
    @classmethod
    def start(cls, step: "Step", task: Any, run: "TaskRun") -> None:
        """A new run of this task, once ``runIf`` allowed it: by default, what its kind does."""
        step.start_by_kind(task, run)

    @classmethod
    def resolve(cls, step: "Step", task: Any, run: "TaskRun") -> Callable[[], str | None] | None:
        """Flowables: the main block of a RUNNING run (``None`` when the run already ended).

        The returned callable drives the children one pass and returns the block's state, or
        ``None`` while it is not finished. Errors raised here fail the run with their message.
        """
        step.fail(run, f"{task.type} is not supported yet")
        return None

    @classmethod
    def resolve_state(cls, task: Any, state: str) -> str:
        """Flowables: the run's state once its block (main, errors, finally) ended in ``state``."""
        return state

    @classmethod
    def drive(cls, step: "Step", task: Any, run: "TaskRun") -> None:
        """Flowables: one pass over a RUNNING run (resolve, drive the block, end when it ended)."""
        step.drive_block(task, run)

    @classmethod
    def on_paused(cls, step: "Step", task: Any, run: "TaskRun") -> None:
        """A PAUSED run of this type is visited (Pause: resume when its delay is due)."""

    @classmethod
    def update_execution(cls, step: "Step", task: Any, run: "TaskRun") -> None:
        """Execution-updating tasks: change ``step.execution`` (raise CelestraError on bad values)."""
        raise CelestraError(f"{task.type} is not supported yet")

    @classmethod
    def internal_tasks(cls, task: Any) -> list[Any]:
        """Tasks the executor runs for this task that the flow does not name (ForEachItem's
        split, batches and merge: Kestra's ``allChildTasks``). Built once, when the flow is parsed."""
        return []

    @classmethod
    def apply_child_result(cls, task: Any, run: "TaskRun", result: Mapping[str, Any], moment: Any) -> "TaskRun":
        """Executables with :attr:`follows_each_child`: one child execution was created or ended."""
        raise CelestraError(f"{task.type} does not follow child executions")

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: Any) -> bool:
        """Conditions: whether the condition holds in ``ctx`` (a ConditionContext)."""
        raise CelestraError(f"Unsupported condition type {cls.type}")


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


def unregister(cls: type[Plugin]) -> None:
    """Remove a plugin class from the registry, under its type and aliases (tools that register types
    for a while only, such as the conformance runner's test-only ones)."""
    for name in (cls.type, *cls.aliases):
        if _REGISTRY.get(name) is cls:
            del _REGISTRY[name]


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


class PluginLoadError(CelestraError):
    """A plugin module failed to import: names the module (the other modules are still loaded)."""


_loaded = False
_loading = False
_lock = threading.RLock()
_failure: PluginLoadError | None = None


def load_builtin_plugins() -> None:
    """Import the plugin packages so that their @register decorators run (once), then the task types
    of installed packages (entry-point group ``celestra.plugins``).

    Every module is imported even when one fails, so one broken module does not hide the types of
    the others; the failure is then raised naming the module, and raised again on every later call.
    A lock makes other threads wait for the whole set (a worker thread must never see half of it);
    a plugin module of the loading thread that looks a type up while the set loads returns at once.
    """
    global _loaded, _loading, _failure
    if not _loaded:
        with _lock:
            if not _loaded:
                if _loading:
                    return
                _loading = True
                try:
                    _failure = _import_all()
                finally:
                    _loading = False
                _loaded = True
    if _failure is not None:
        raise _failure


def _import_all() -> PluginLoadError | None:
    failures: list[tuple[str, BaseException]] = []
    # the registry loader is the one place where the engine reaches the plugins package
    plugins = importlib.import_module("orchestrator.plugins")
    for module in pkgutil.walk_packages(plugins.__path__, plugins.__name__ + "."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # noqa: BLE001 - reported below with the module's name
            failures.append((module.name, exc))
    if failures:
        name, error = failures[0]
        others = f" (and {len(failures) - 1} more: {', '.join(n for n, _ in failures[1:])})" if failures[1:] else ""
        failure = PluginLoadError(f"Plugin module {name} failed to load: {type(error).__name__}: {error}{others}")
        failure.__cause__ = error
        return failure
    from .plugin_entrypoints import load_entry_point_plugins

    try:
        load_entry_point_plugins()
    except PluginLoadError as exc:
        return exc
    return None
