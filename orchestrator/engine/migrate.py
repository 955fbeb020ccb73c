"""Kestra 1.x ⇄ 2.0 flow syntax: a linter and a rewriter that keeps the text's comments and layout.

:func:`migrate` edits the YAML text by the positions the project's loader records (each key's
line), so that everything it does not rewrite (comments, quoting, blank lines, key order) stays as
written. What it rewrites, 1.x → 2.0:

* ``ForEach`` / ``EachSequential`` / ``EachParallel`` → ``Loop`` (``value`` → ``values``,
  ``concurrent`` → ``concurrencyLimit``); inside the loop ``taskrun.value`` → ``item.value``,
  ``parent.taskrun.value`` → ``item.value`` or ``item.parent.value``, and
  ``outputs.x[taskrun.value]`` → ``outputs.x`` for a task ``x`` of the same loop;
* ``runIf`` → ``when``; a check's ``condition`` → ``when``;
* a Flow trigger's ``preconditions`` (flows, a duration window) → ``dependsOn`` + ``window``, and
  its ``conditions`` made of ExecutionFlow / ExecutionNamespace / ExecutionStatus → ``dependsOn``
  with ``mode: ANY``;
* ``pluginDefaults`` (and ``taskDefaults``) → their values written into each task they apply to.

2.0 → 1.x does the reverse where 1.x can say it; ``pluginDefaults`` stay inlined. What cannot be
rewritten (ForEachItem, other trigger conditions, ``item.index``...) is reported as a problem with
its field and line, and left as it is. Pure: no I/O.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from .plugins import registered_types
from .yamlload import LineDict, YamlError, line_of, load



@dataclass(frozen=True)
class _Types:
    """The type names the rewrite needs, read from what the plugin classes declare."""

    loop: str
    foreach: str
    #: 1.x loop type name (aliases included) → its class
    loops_1: dict[str, Any]
    #: removed type name → why / what instead
    removed: dict[str, str]
    #: condition type name → its dependsOn role (flow, namespace, status), and back
    roles: dict[str, str]
    role_types: dict[str, str]
    flow_triggers: frozenset[str]


@functools.lru_cache(maxsize=1)
def _types() -> _Types:
    registry = registered_types()
    classes = set(registry.values())
    loops_1 = {name: cls for name, cls in registry.items() if getattr(cls, "loop_v1_renames", None) is not None}
    return _Types(
        loop=next(cls.type for cls in classes if getattr(cls, "binds_item", False)),
        foreach=next(cls.type for cls in loops_1.values()
                     if not getattr(cls, "loop_v1_renames", None) and not getattr(cls, "deprecated", False)),
        loops_1=loops_1,
        removed={name: str(getattr(cls, "removed_in_v2", "")) for name, cls in registry.items()
                 if getattr(cls, "removed_in_v2", None)},
        roles={name: str(getattr(cls, "depends_on_role", "")) for name, cls in registry.items()
               if getattr(cls, "depends_on_role", None)},
        role_types={str(getattr(cls, "depends_on_role", "")): cls.type for cls in classes
                    if getattr(cls, "depends_on_role", None)},
        flow_triggers=frozenset(name for name, cls in registry.items() if hasattr(cls, "normalize_props")),
    )


#: properties of a task that hold other tasks (their own expressions belong to those tasks)
_TASK_LISTS = ("tasks", "then", "else", "errors", "finally", "defaults", "onPause")


@dataclass
class Note:
    """One change made (or to make), or one problem left: the flow's field, its line, what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}"


@dataclass
class Migration:
    source: str
    text: str
    #: the generations the source uses (by its syntax): a subset of {1, 2}
    uses: set[int] = field(default_factory=set)
    changes: list[Note] = field(default_factory=list)
    problems: list[Note] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.source


class MigrationError(Exception):
    """The text is not a flow (YAML error, not a map)."""


def _is_loop_type(name: Any, to: int) -> bool:
    return name == _types().loop if to == 1 else name in _types().loops_1


# ----- the text, edited by positions -------------------------------------------------------------

class _Text:
    def __init__(self, source: str):
        self.lines = source.splitlines(keepends=True)
        self.line_edits: dict[int, list[tuple[re.Pattern[str], Any]]] = {}
        self.blocks: list[tuple[int, int, list[str]]] = []  # (first, last) 0-based inclusive

    def column_of_key(self, line: int, key: str) -> int:
        text = self.lines[line - 1]
        match = re.search(r"(^|[\s-])" + re.escape(str(key)) + r"\s*:", text) or re.search(
            r"""(^|[\s-])["']""" + re.escape(str(key)) + r"""["']\s*:""", text)
        return match.start() + len(match.group(1)) if match else len(text) - len(text.lstrip(" -"))

    def block_end(self, line: int, column: int) -> int:
        """The last line (1-based) of the value of the key at ``line``/``column``."""
        last = line
        for number in range(line + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            indent = len(text) - len(text.lstrip(" "))
            if indent > column or (indent == column and stripped.startswith("-")):
                last = number
                continue
            break
        return last

    def sub(self, line: int, pattern: str, replacement: Any) -> None:
        self.line_edits.setdefault(line, []).append((re.compile(pattern), replacement))

    def replace_block(self, first: int, last: int, new_lines: list[str]) -> None:
        self.blocks.append((first, last, new_lines))

    def render(self) -> str:
        lines = list(self.lines)
        for number, edits in self.line_edits.items():
            text = lines[number - 1]
            for pattern, replacement in edits:
                text = pattern.sub(replacement, text)
            lines[number - 1] = text
        for first, last, new_lines in sorted(self.blocks, key=lambda b: b[0], reverse=True):
            lines[first - 1:last] = new_lines
        return "".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        if re.fullmatch(r"[A-Za-z_][\w.\-/]*", value) and value.lower() not in ("true", "false", "null", "yes", "no",
                                                                                 "on", "off", "y", "n"):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    """A small block-style emitter: maps and lists of maps in blocks, lists of scalars inline."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and item:
                out.append(f"{pad}{key}:\n")
                out.extend(_yaml_lines(item, indent + 2))
            elif isinstance(item, list) and any(isinstance(x, (dict, list)) for x in item):
                out.append(f"{pad}{key}:\n")
                out.extend(_yaml_lines(item, indent + 2))
            elif isinstance(item, list):
                out.append(f"{pad}{key}: [{', '.join(_scalar(x) for x in item)}]\n")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                inner = _yaml_lines(item, indent + 2)
                if inner:
                    inner[0] = pad + "- " + inner[0][indent + 2:]
                out.extend(inner)
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
    return out


# ----- walking the flow --------------------------------------------------------------------------

@dataclass
class _TaskSite:
    task: LineDict
    path: str
    #: the enclosing loops' task ids, innermost first
    loops: list[str]
    #: whether the task's direct parent is a loop
    parent_is_loop: bool
    #: levels below the innermost loop (1: a direct child of it; 0: in no loop)
    depth: int = 0


def _tasks(container: Any, path: str, loops: list[str], parent_is_loop: bool, to: int,
           depth: int = 0) -> Iterator[_TaskSite]:
    if not isinstance(container, list):
        return
    for index, task in enumerate(container):
        if not isinstance(task, dict):
            continue
        here = f"{path}[{index}]"
        yield _TaskSite(task, here, loops, parent_is_loop, depth)
        is_loop = _is_loop_type(task.get("type"), to)
        inner = [str(task.get("id")), *loops] if is_loop else loops
        below = 1 if is_loop else (depth + 1 if depth else 0)
        for name in _TASK_LISTS:
            value = task.get(name)
            if isinstance(value, dict) and name == "onPause":
                yield from _tasks([value], f"{here}.{name}", inner, is_loop, to, below)
            elif name == "tasks" and isinstance(value, list) and value and isinstance(value[0], dict) \
                    and "task" in value[0] and "id" not in value[0]:  # Dag entries
                yield from _tasks([e.get("task") for e in value], f"{here}.tasks", inner, is_loop, to, below)
            else:
                yield from _tasks(value, f"{here}.{name}", inner, is_loop, to, below)
        cases = task.get("cases")
        if isinstance(cases, dict):
            for key, branch in cases.items():
                yield from _tasks(branch, f"{here}.cases.{key}", inner, is_loop, to, below)


def _all_tasks(flow: LineDict, to: int) -> Iterator[_TaskSite]:
    for section in ("tasks", "errors", "finally", "afterExecution"):
        yield from _tasks(flow.get(section), section, [], False, to)


def _loop_members(site_task: LineDict, to: int) -> set[str]:
    """Ids of the tasks inside a loop task (any depth)."""
    return {str(s.task.get("id")) for s in _tasks([site_task], "", [], False, to)} - {str(site_task.get("id"))}


def _own_lines(text: _Text, task: LineDict) -> list[int]:
    """The lines of a task's own properties (not of the tasks it holds)."""
    lines: list[int] = []
    for key in task:
        if key in _TASK_LISTS or key == "cases":
            continue
        start = line_of(task, key)
        if start is None:
            continue
        end = text.block_end(start, text.column_of_key(start, key))
        lines.extend(range(start, end + 1))
    return lines


# ----- what a flow uses --------------------------------------------------------------------------

def generations(flow: Any) -> tuple[set[int], list[Note]]:
    """The generations ``flow`` (a loaded map) uses, with what marks each."""
    marks: list[tuple[int, Note]] = []
    if not isinstance(flow, dict):
        return set(), []
    for key in ("pluginDefaults", "taskDefaults"):
        if key in flow:
            marks.append((1, Note(key, line_of(flow, key), "1.x only")))
    for site in _all_tasks(flow, 2):
        task = site.task
        kind = task.get("type")
        if kind in _types().loops_1 or kind in _types().removed:
            marks.append((1, Note(f"{site.path}.type", line_of(task, "type"), f"{kind} is 1.x only")))
        if kind == _types().loop:
            marks.append((2, Note(f"{site.path}.type", line_of(task, "type"), "Loop is 2.0 only")))
        if "runIf" in task:
            marks.append((1, Note(f"{site.path}.runIf", line_of(task, "runIf"), "runIf is 1.x's name")))
        if "when" in task:
            marks.append((2, Note(f"{site.path}.when", line_of(task, "when"), "when is 2.0's name")))
    for index, check in enumerate(flow.get("checks") or []):
        if isinstance(check, dict):
            for key, generation in (("condition", 1), ("when", 2)):
                if key in check:
                    marks.append((generation, Note(f"checks[{index}].{key}", line_of(check, key), "")))
    for index, trigger in enumerate(flow.get("triggers") or []):
        if not isinstance(trigger, dict):
            continue
        for key, generation in (("conditions", 1), ("preconditions", 1), ("dependsOn", 2), ("mode", 2)):
            if key in trigger:
                marks.append((generation, Note(f"triggers[{index}].{key}", line_of(trigger, key), "")))
    return {g for g, _ in marks}, [n for _, n in marks]


# ----- the rewrite -------------------------------------------------------------------------------

def migrate(source: str, to: int = 2) -> Migration:
    """Rewrite ``source`` to generation ``to`` (2: Kestra 2.0, 1: Kestra 1.x)."""
    if to not in (1, 2):
        raise ValueError("to must be 1 or 2")
    try:
        flow = load(source)
    except YamlError as exc:
        raise MigrationError(str(exc)) from None
    if not isinstance(flow, LineDict):
        raise MigrationError("not a flow: the document must be a map")
    uses, _ = generations(flow)
    result = Migration(source=source, text=source, uses=uses)
    text = _Text(source)
    if to == 2:
        _plugin_defaults(flow, text, result)
    sites = list(_all_tasks(flow, to))
    members = {str(site.task.get("id")): _loop_members(site.task, to) for site in sites
               if _is_loop_type(site.task.get("type"), to)}
    for site in sites:
        _task(site, text, result, to, members)
    _checks(flow, text, result, to)
    for index, trigger in enumerate(flow.get("triggers") or []):
        if isinstance(trigger, LineDict):
            _trigger(trigger, f"triggers[{index}]", text, result, to)
    result.text = text.render()
    return result


def _rename_key(text: _Text, container: LineDict, old: str, new: str) -> None:
    line = line_of(container, old)
    if line is not None:
        text.sub(line, r"(^|[\s-])" + re.escape(old) + r"(\s*:)", r"\g<1>" + new + r"\g<2>")


def _task(site: _TaskSite, text: _Text, result: Migration, to: int, members: dict[str, set[str]]) -> None:
    task, path = site.task, site.path
    kind = task.get("type")
    old_name, new_name = ("runIf", "when") if to == 2 else ("when", "runIf")
    if old_name in task:
        if new_name in task:
            result.problems.append(Note(f"{path}.{old_name}", line_of(task, old_name),
                                        f"both {old_name} and {new_name}: keep one"))
        else:
            _rename_key(text, task, old_name, new_name)
            result.changes.append(Note(f"{path}.{old_name}", line_of(task, old_name), f"{old_name} → {new_name}"))
    if to == 2 and kind in _types().removed:
        result.problems.append(Note(f"{path}.type", line_of(task, "type"), _types().removed[kind]))
    if _is_loop_type(kind, to):
        _loop(task, path, kind, text, result, to)
    if site.loops:
        # outputs of tasks of the innermost loop are the iteration's own in 2.0
        _loop_expressions(site, text, result, to, members.get(site.loops[0], set()))


def _loop(task: LineDict, path: str, kind: str, text: _Text, result: Migration, to: int) -> None:
    line = line_of(task, "type")
    target = _types().loop if to == 2 else _types().foreach
    text.sub(line, re.escape(kind), target)
    result.changes.append(Note(f"{path}.type", line, f"{kind.rsplit('.', 1)[-1]} → {target.rsplit('.', 1)[-1]}"))
    if to == 2:
        plugin = _types().loops_1[kind]
        for old, new in (getattr(plugin, "loop_v1_renames", None) or {}).items():
            if old in task:
                _rename_key(text, task, old, new)
        if getattr(plugin, "loop_v1_all_at_once", False) and "concurrent" not in task:
            text.replace_block(line + 1, line, [" " * text.column_of_key(line, "type") + "concurrencyLimit: 0\n"])
        result.problems.append(Note(f"{path}.values", line_of(task, "values") or line_of(task, "value") or line,
                                    "note: Loop does not deduplicate values as ForEach did"))
    else:
        for key in ("transmitFailed", "fetchType", "outputs"):
            if key in task:
                result.problems.append(Note(f"{path}.{key}", line_of(task, key), f"ForEach has no {key}: remove it "
                                                                                  "or keep the flow on 2.0"))


def _loop_expressions(site: _TaskSite, text: _Text, result: Migration, to: int, members: set[str]) -> None:
    task = site.task
    lines = _own_lines(text, task)
    touched = False
    for number in lines:
        line = text.lines[number - 1]
        if to == 2:
            new = re.sub(r"(outputs\.([A-Za-z0-9_-]+))\[\s*taskrun\.value\s*\]",
                         lambda m: m.group(1) if m.group(2) in members else m.group(0), line)
            for spelling, meaning in _values_1(site.depth).items():
                new = re.sub(r"(?<![\w.\]])" + re.escape(spelling) + r"\b", meaning, new)
        else:
            new = line
            for meaning, spelling in sorted(_values_1(site.depth).items(), key=lambda kv: -len(kv[1])):
                new = re.sub(r"(?<![\w.])" + re.escape(spelling) + r"\b", "\x00" + meaning, new)
            new = new.replace("\x00", "")
            new = re.sub(r"(outputs\.([A-Za-z0-9_-]+))(?![\w\[-])",
                         lambda m: m.group(1) + "[taskrun.value]" if m.group(2) in members else m.group(0), new)
            if re.search(r"(?<![\w.])item\.(index|key|parents?)\b", new):
                result.problems.append(Note(site.path, number, "item.index, item.key and item.parents "
                                                               "have no 1.x spelling here"))
        if new != line:
            text.lines[number - 1] = new
            touched = True
    if touched:
        result.changes.append(Note(site.path, line_of(task), "loop variables rewritten"))


def _values_1(depth: int) -> dict[str, str]:
    """1.x spellings of the loop values at ``depth`` below the innermost loop → 2.0's.

    1.x reaches a loop's value through the run that carries it: the loop's direct child
    (``taskrun.value`` there, ``parent.taskrun.value`` one level down...); 2.0 through ``item``."""
    def run_at(levels_up: int) -> str:
        if levels_up == 0:
            return "taskrun.value"
        if levels_up == 1:
            return "parent.taskrun.value"
        return f"parents[{levels_up - 1}].taskrun.value"

    return {run_at(depth - 1): "item.value", run_at(depth): "item.parent.value"}


def _checks(flow: LineDict, text: _Text, result: Migration, to: int) -> None:
    old, new = ("condition", "when") if to == 2 else ("when", "condition")
    for index, check in enumerate(flow.get("checks") or []):
        if isinstance(check, LineDict) and old in check and new not in check:
            _rename_key(text, check, old, new)
            result.changes.append(Note(f"checks[{index}].{old}", line_of(check, old), f"{old} → {new}"))


# ----- Flow triggers -----------------------------------------------------------------------------

def _trigger(trigger: LineDict, path: str, text: _Text, result: Migration, to: int) -> None:
    if trigger.get("type") not in _types().flow_triggers:
        return
    if to == 2:
        _trigger_to_2(trigger, path, text, result)
    else:
        _trigger_to_1(trigger, path, text, result)


def _key_block(text: _Text, container: LineDict, key: str) -> tuple[int, int, int]:
    line = line_of(container, key)
    column = text.column_of_key(line, key)
    return line, text.block_end(line, column), column


def _trigger_to_2(trigger: LineDict, path: str, text: _Text, result: Migration) -> None:
    pre = trigger.get("preconditions")
    conditions = trigger.get("conditions")
    if isinstance(pre, dict):
        unsupported = [k for k in pre if k not in ("id", "flows", "timeWindow", "resetOnSuccess")]
        window = pre.get("timeWindow") or {}
        if unsupported or conditions or pre.get("resetOnSuccess") is False or (
                window and (window.get("type") or "DURATION_WINDOW") != "DURATION_WINDOW"):
            result.problems.append(Note(f"{path}.preconditions", line_of(trigger, "preconditions"),
                                        "only flows and a duration window rewrite to dependsOn: left as it is"))
            return
        depends: dict[str, Any] = {"flows": [dict(f) for f in pre.get("flows") or []]}
        first, last, column = _key_block(text, trigger, "preconditions")
        body = {"dependsOn": depends}
        if window.get("window"):
            body["window"] = window["window"]
        text.replace_block(first, last, _yaml_lines(body, column))
        result.changes.append(Note(f"{path}.preconditions", first, "preconditions → dependsOn + window"))
        return
    if isinstance(conditions, list) and conditions:
        flows_part: dict[str, Any] = {}
        states: list[str] | None = None
        namespace: dict[str, Any] | None = None
        for condition in conditions:
            kind = _types().roles.get(str(condition.get("type"))) if isinstance(condition, dict) else None
            if kind == "flow":
                flows_part = {"namespace": condition.get("namespace"), "flowId": condition.get("flowId")}
            elif kind == "namespace" and (condition.get("comparison") in (None, "EQUALS", "PREFIX")):
                namespace = {"namespace": condition.get("namespace")}
                if condition.get("prefix") or condition.get("comparison") == "PREFIX":
                    namespace["prefix"] = True
            elif kind == "status" and "in" in condition and "notIn" not in condition:
                states = list(condition.get("in") or [])
            else:
                result.problems.append(Note(f"{path}.conditions", line_of(trigger, "conditions"),
                                            f"condition {condition.get('type') if isinstance(condition, dict) else condition}"
                                            " has no dependsOn form: left as it is"))
                return
        if (not flows_part and namespace is None) or (flows_part and namespace is not None):
            result.problems.append(Note(f"{path}.conditions", line_of(trigger, "conditions"),
                                        "needs one ExecutionFlow or one ExecutionNamespace to become dependsOn"))
            return
        entry = dict(flows_part or namespace or {})
        if states:
            entry["states"] = states
        depends = {"flows": [entry]} if flows_part else {"namespaces": [entry]}
        first, last, column = _key_block(text, trigger, "conditions")
        text.replace_block(first, last, _yaml_lines({"dependsOn": depends, "mode": "ANY"}, column))
        result.changes.append(Note(f"{path}.conditions", first, "conditions → dependsOn (mode ANY)"))


def _trigger_to_1(trigger: LineDict, path: str, text: _Text, result: Migration) -> None:
    depends = trigger.get("dependsOn")
    if not isinstance(depends, dict):
        return
    mode = trigger.get("mode") or "ALL"
    flows = list(depends.get("flows") or [])
    namespaces = list(depends.get("namespaces") or [])
    first, last, column = _key_block(text, trigger, "dependsOn")
    extra_keys = [k for k in ("window", "mode") if k in trigger]
    if mode == "ANY":
        if len(flows) + len(namespaces) != 1:
            result.problems.append(Note(f"{path}.dependsOn", first, "mode ANY over several dependencies has no plain "
                                                                     "1.x conditions form: left as it is"))
            return
        conditions: list[dict[str, Any]] = []
        entry = (flows or namespaces)[0]
        if entry.get("states"):
            conditions.append({"type": _types().role_types["status"], "in": list(entry["states"])})
        if flows and entry.get("flowId"):
            conditions.append({"type": _types().role_types["flow"], "namespace": entry["namespace"],
                               "flowId": entry["flowId"]})
        else:
            condition = {"type": _types().role_types["namespace"], "namespace": entry["namespace"]}
            if entry.get("prefix"):
                condition["prefix"] = True
            conditions.append(condition)
        body: dict[str, Any] = {"conditions": conditions}
    else:
        if namespaces:
            result.problems.append(Note(f"{path}.dependsOn.namespaces", first, "namespaces under mode ALL have no "
                                                                               "plain preconditions form: left as it is"))
            return
        pre: dict[str, Any] = {"id": "dependsOn", "flows": [dict(f) for f in flows]}
        window = trigger.get("window")
        if isinstance(window, str):
            pre["timeWindow"] = {"type": "DURATION_WINDOW", "window": window}
        elif isinstance(window, dict):
            pre["timeWindow"] = dict(window)
        body = {"preconditions": pre}
    text.replace_block(first, last, _yaml_lines(body, column))
    for key in extra_keys:
        key_first, key_last, _ = _key_block(text, trigger, key)
        text.replace_block(key_first, key_last, [])
    result.changes.append(Note(f"{path}.dependsOn", first, "dependsOn → " + next(iter(body))))


# ----- pluginDefaults ----------------------------------------------------------------------------

def _plugin_defaults(flow: LineDict, text: _Text, result: Migration) -> None:
    for key in ("pluginDefaults", "taskDefaults"):
        defaults = flow.get(key)
        if not isinstance(defaults, list):
            continue
        sites = [s.task for s in _all_tasks(flow, 2)] + [t for t in flow.get("triggers") or [] if isinstance(t, dict)]
        inserts: dict[int, list[str]] = {}
        for entry in defaults:
            if not isinstance(entry, dict) or not isinstance(entry.get("values"), dict):
                continue
            kind = str(entry.get("type") or "")
            forced = bool(entry.get("forced"))
            for task in sites:
                task_type = str(task.get("type") or "")
                if not (task_type == kind or task_type.startswith(kind.rstrip(".") + ".")):
                    continue
                values = {k: v for k, v in entry["values"].items() if forced or k not in task}
                if not values:
                    continue
                start = line_of(task)
                column = text.column_of_key(start, next(iter(task)))
                end = text.block_end(start, column - 1) if column else start
                for name in values:
                    if name in task:  # forced: the default wins, the task's own line goes
                        first, last, _ = _key_block(text, task, name)
                        text.replace_block(first, last, [])
                inserts.setdefault(end, []).extend(_yaml_lines(values, column))
        for end, new_lines in inserts.items():
            original = text.lines[end - 1]
            text.lines[end - 1] = original if original.endswith("\n") else original + "\n"
            text.replace_block(end + 1, end, new_lines)
        first, last, _ = _key_block(text, flow, key)
        text.replace_block(first, last, [])
        result.changes.append(Note(key, first, f"{key} written into the tasks they apply to (2.0 has none)"))
