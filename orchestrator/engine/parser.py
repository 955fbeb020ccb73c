"""The flow parser: a Kestra flow YAML into :mod:`orchestrator.engine.flow` objects, validated.

Parsing happens once per flow revision (callers cache the result), so it may afford to be thorough:
every problem of a flow is collected and reported at once in a :class:`FlowValidationError`, each
with the path of the offending field (``tasks[1].message``) and its line in the YAML source.

Messages follow Kestra's wording where the conformance corpus pins it (``Duplicate task id with
name [a, b]``, ``dag: Cyclic dependency detected: task1, task2``...). Kestra labels an error by the
id of the task, trigger or input it concerns (``dag: ...``, ``dag.tasks: ...``) and flow-wide rules
with no label; :attr:`FlowError.subject` carries that label and :attr:`FlowError.path` the
structural path.

Plugin defaults (``pluginDefaults``, legacy ``taskDefaults``, then the server's global defaults)
are merged into the typed maps before they are validated, so that ``Task.props`` holds the
effective values while ``Flow.source`` keeps the text as written.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from . import plugins as registry
from .errors import CelestraError
from .levels import LEVELS
from .states import ALL_STATES
from .plugins import CONDITION, TRIGGER, Plugin
from .timeutil import parse_duration
from .yamlload import LineDict, LineList, YamlError, line_of, load

from .flow import Condition, Flow, FlowError, FlowValidationError, Task, Trigger
from .text import scalar_text

__all__ = ["parse_flow", "parse_flow_documents", "deep_merge"]

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*"
TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*"
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*"
WORKER_GROUP_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*"

_FLOW_ID = re.compile(FLOW_ID_PATTERN + "$")
_NAMESPACE = re.compile(NAMESPACE_PATTERN + "$")
_TASK_ID = re.compile(TASK_ID_PATTERN + "$")
_INPUT_ID = re.compile(INPUT_ID_PATTERN + "$")
_WORKER_GROUP = re.compile(WORKER_GROUP_PATTERN + "$")

LOG_LEVELS = LEVELS
INPUT_TYPES = frozenset({
    "STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME",
    "DURATION", "FILE", "JSON", "YAML", "URI", "SECRET", "ARRAY", "EMAIL",
})
STATE_NAMES = ALL_STATES

FLOW_KEYS = frozenset({
    "id", "namespace", "revision", "description", "labels", "inputs", "outputs", "variables", "tasks",
    "errors", "finally", "afterExecution", "triggers", "pluginDefaults", "taskDefaults", "concurrency",
    "retry", "sla", "checks", "disabled", "workerGroup", "listeners", "deleted", "tenantId", "updated",
})
#: properties every task has, validated here rather than by the plugin's Props
TASK_COMMON = frozenset({
    "id", "type", "description", "disabled", "retry", "timeout", "allowFailure", "allowWarning", "runIf",
    "logLevel", "logToFile", "workerGroup", "taskCache", "version",
})
TRIGGER_COMMON = frozenset({
    "id", "type", "description", "disabled", "conditions", "labels", "stopAfter", "logLevel", "logToFile",
    "workerGroup", "minLogLevel", "failOnTriggerError", "allowConcurrent", "version",
})
_RETRY_FIELDS = {
    "constant": ("interval",),
    "exponential": ("interval", "maxInterval", "delayFactor"),
    "random": ("minInterval", "maxInterval"),
}
_RETRY_REQUIRED = {"constant": ("interval",), "exponential": ("interval", "maxInterval"),
                   "random": ("minInterval", "maxInterval")}
_RETRY_COMMON = ("type", "maxAttempts", "maxAttempt", "maxDuration", "warningOnRetry", "behavior")
_RETRY_CLASSES = {"constant": "Constant", "exponential": "Exponential", "random": "Random"}


# --------------------------------------------------------------------------------------------------
# Helpers

def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return LineDict({k: _clone(v) for k, v in value.items()}, line=getattr(value, "line", None),
                        lines=dict(getattr(value, "lines", {})))
    if isinstance(value, list):
        return LineList([_clone(v) for v in value], line=getattr(value, "line", None),
                        lines=list(getattr(value, "lines", [])))
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``MapUtils.deepMerge``: maps merge recursively, lists concatenate (without the
    items already present), any other ``override`` value wins unless it is None."""
    result: LineDict = _clone(base) if isinstance(base, dict) else LineDict()
    for key, value in override.items():
        current = result.get(key)
        if value is None:
            merged = current
        elif current is None:
            merged = _clone(value)
        elif isinstance(current, dict) and isinstance(value, dict):
            merged = deep_merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged = LineList([*current, *(_clone(v) for v in value if v not in current)],
                              line=getattr(value, "line", None))
        else:
            merged = _clone(value)
        result[key] = merged
        line = line_of(override, key)
        if line is not None:
            result.lines[key] = line
    if isinstance(override, LineDict) and override.line is not None:
        result.line = override.line
    return dict(result) if not isinstance(result, dict) else result


def _loc(data: Any, loc: tuple[Any, ...]) -> list[Any]:
    """Turn a pydantic error location into a path in the data, dropping union/validator tags
    (``labels.dict[str,any]`` is reported for ``labels``)."""
    parts: list[Any] = []
    current = data
    for segment in loc:
        if isinstance(current, dict):
            if segment in current:
                parts.append(segment)
                current = current[segment]
            elif isinstance(segment, str) and _FIELD_NAME.match(segment) and segment not in _UNION_TAGS:
                parts.append(segment)  # a missing or an unknown field
                current = None
        elif isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
            parts.append(segment)
            current = current[segment]
    return parts


_FIELD_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "tuple", "set", "any"})


def _line_at(data: Any, parts: list[Any]) -> int | None:
    line = line_of(data)
    current = data
    for part in parts:
        found = line_of(current, part) if isinstance(current, (dict, list)) else None
        if found is not None:
            line = found
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            break
    return line if isinstance(line, int) else None


@dataclass(slots=True)
class _Default:
    type: str
    values: dict[str, Any]
    forced: bool


_props_cache: dict[type, tuple[tuple[str, Any], ...]] = {}
_known_cache: dict[type, tuple[str, ...]] = {}


def _model_defaults(model: type) -> tuple[tuple[str, Any], ...]:
    """``(property, default)`` of a Props model's optional fields with a non-None default."""
    cached = _props_cache.get(model)
    if cached is None:
        pairs = []
        for name, info in getattr(model, "model_fields", {}).items():
            if info.default is PydanticUndefined or info.default is None or info.is_required():
                continue
            pairs.append((info.alias or name, info.default))
        cached = _props_cache[model] = tuple(pairs)
    return cached


def _known_properties(plugin: type[Plugin], common: frozenset[str]) -> tuple[str, ...]:
    cached = _known_cache.get(plugin)
    if cached is None:
        names = set(common)
        model = plugin.Props
        for name, info in getattr(model, "model_fields", {}).items():
            names.add(info.alias or name)
        names.update(plugin.task_fields)
        names.update(getattr(plugin, "condition_fields", {}))
        cached = _known_cache[plugin] = tuple(sorted(names))
    return cached


# --------------------------------------------------------------------------------------------------
# Parser

class _Parser:
    """One parse of one flow document; collects errors instead of stopping at the first."""

    def __init__(self, strict: bool, global_defaults: list[dict[str, Any]] | None):
        self.strict = strict
        self.global_defaults = global_defaults or []
        self.errors: list[FlowError] = []
        self.warnings: list[FlowError] = []
        self.parse_errors = 0
        self.defaults: list[_Default] = []
        self.defaulted: dict[int, frozenset[str]] = {}
        self.scopes: list[tuple[str, str]] = []
        #: (task id, path, line) of every task, pre-order, for the uniqueness rule
        self.task_ids: list[tuple[Any, str, int | None]] = []
        self.tasks: list[Task] = []
        self.deprecated_paths: list[str] = []
        self.infos: list[str] = []

    # ----- reporting -------------------------------------------------------------------------

    def error(self, path: str, line: int | None, message: str, *, subject: str | None = None,
              parse: bool = False) -> None:
        if subject is None:
            subject = self._subject(path)
        self.errors.append(FlowError(path, line, message, subject))
        if parse:
            self.parse_errors += 1

    def warn(self, path: str, line: int | None, message: str) -> None:
        self.warnings.append(FlowError(path, line, message, self._subject(path)))

    def _subject(self, path: str) -> str | None:
        for prefix, label in reversed(self.scopes):
            if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                return label + path[len(prefix):]
        return None

    def unrecognized(self, path: str, line: int | None, key: str, owner: str, known: Iterable[str]) -> None:
        """Jackson's wording, which Kestra users know: names the field, the type and what is allowed."""
        names = sorted(known)
        listing = ", ".join(f'"{name}"' for name in names)
        self.error(_join(path, key), line,
                   f'Unrecognized field "{key}" (class {owner}), not marked as ignorable '
                   f"({len(names)} known properties: {listing}])", parse=True)

    # ----- flow ------------------------------------------------------------------------------

    def parse(self, source: str) -> Flow:
        try:
            root = load(source)
        except YamlError as exc:
            raise FlowValidationError([FlowError(p.path, p.line, p.message) for p in exc.problems], "parse") from None
        if root is None:
            raise FlowValidationError([FlowError("", None, "The flow is empty")], "parse")
        if not isinstance(root, dict):
            raise FlowValidationError(
                [FlowError("", line_of(root), "A flow must be a YAML mapping (id, namespace, tasks...)")], "parse")

        for key in root:
            if key not in FLOW_KEYS:
                if key == "quotas":
                    self.error(key, line_of(root, key), "Quotas are only available in Enterprise Edition.",
                               subject="")
                elif self.strict:
                    self.unrecognized("", line_of(root, key), key, "io.kestra.core.models.flows.Flow", FLOW_KEYS)

        flow_id = self.identifier(root, "id", "", _FLOW_ID, FLOW_ID_PATTERN, 100)
        namespace = self.identifier(root, "namespace", "", _NAMESPACE, NAMESPACE_PATTERN, 150)
        revision = root.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int) or revision < 1):
            self.error("revision", line_of(root, "revision"), "must be greater than or equal to 1")
            revision = None
        description = self.string(root, "description", "")
        labels = self.labels(root, "labels", "")
        for key, value in labels.items():
            if key.startswith("system.") and key != "system.readOnly":
                self.error(f"labels.{key}", line_of(root.get("labels"), key) or line_of(root, "labels"),
                           f"System labels can only be set by Kestra itself, offending label: {key}={value}",
                           subject="")

        plugin_defaults = self.plugin_defaults(root)
        self.defaults = [_Default(d["type"], d["values"], d["forced"]) for d in plugin_defaults]
        self.defaults.extend(self.global_plugin_defaults())
        if self.defaults:
            root = self.with_defaults(root, top=True)

        inputs = self.definitions(root, "inputs", "", "input")
        outputs = self.definitions(root, "outputs", "", "output")
        variables = root.get("variables")
        if variables is None:
            variables = {}
        elif not isinstance(variables, dict):
            self.error("variables", line_of(root, "variables"), "must be a map")
            variables = {}

        tasks = self.task_list(root, "tasks", "", required=True)
        errors = self.task_list(root, "errors", "")
        finally_ = self.task_list(root, "finally", "")
        after_execution = self.task_list(root, "afterExecution", "")
        listeners = self.listeners(root)
        if root.get("listeners"):
            self.deprecated_paths.append("listeners")
        triggers = self.triggers(root)

        concurrency = self.concurrency(root)
        retry = self.retry(root, "retry", "")
        sla = self.sla(root)
        checks = self.checks(root)
        disabled = self.boolean(root, "disabled", "", False)
        deleted = self.boolean(root, "deleted", "", False)
        worker_group_key, worker_group_fallback = self.worker_group(root, "")
        worker_group = None
        if worker_group_key is not None or worker_group_fallback is not None:
            worker_group = {"key": worker_group_key, "fallback": worker_group_fallback}

        self.flow_rules(flow_id, namespace, inputs, triggers)

        if self.errors:
            raise FlowValidationError(self.errors, "parse" if self.parse_errors else "validate", self.warnings)
        return Flow(
            id=flow_id, namespace=namespace, revision=revision, description=description, labels=labels,
            inputs=inputs, outputs=outputs, variables=variables, tasks=tasks, errors=errors,
            finally_=finally_, after_execution=after_execution, listeners=listeners, triggers=triggers,
            plugin_defaults=plugin_defaults, concurrency=concurrency, retry=retry, disabled=disabled,
            deleted=deleted, worker_group=worker_group, sla=sla, checks=checks, source=source,
            warnings=self.warnings, deprecated_paths=self.deprecated_paths, infos=self.infos,
        )

    def flow_rules(self, flow_id: Any, namespace: Any, inputs: list[dict[str, Any]], triggers: list[Trigger]) -> None:
        """Kestra's FlowValidator: rules over the whole flow, reported without a label."""
        counts: dict[Any, int] = {}
        for task_id, _, _ in self.task_ids:
            if task_id is not None:
                counts[task_id] = counts.get(task_id, 0) + 1
        duplicates = list(dict.fromkeys(t for t, _, _ in self.task_ids if t is not None and counts[t] > 1))
        if duplicates:  # located at the second occurrence of the first duplicated id
            second = [(p, l) for t, p, l in self.task_ids if t == duplicates[0]][1]
            self.error(second[0], second[1],
                       "Duplicate task id with name [" + ", ".join(map(str, duplicates)) + "]", subject="")

        trigger_ids = [t.id for t in triggers]
        duplicated = [tid for index, tid in enumerate(trigger_ids)
                      if trigger_ids.count(tid) > 1 and trigger_ids.index(tid) == index]
        if duplicated:
            second_trigger = next(t for i, t in enumerate(triggers) if trigger_ids.index(t.id) != i)
            self.error(second_trigger.path, second_trigger.line,
                       "Duplicate trigger id with name [" + ", ".join(duplicated) + "]", subject="")

        if isinstance(flow_id, str) and isinstance(namespace, str):
            for task in self.tasks:
                if not getattr(task.plugin, "calls_subflow", False):
                    continue
                if task.props.get("namespace") == namespace and task.props.get("flowId") == flow_id:
                    self.error(task.path, task.line, f"Recursive call to flow [{namespace}.{flow_id}]", subject="")

        self.reference_rules(inputs)
        self.trigger_inputs_rule(inputs, triggers)

    def reference_rules(self, inputs: list[dict[str, Any]]) -> None:
        """``{{ inputs.my-input }}`` / ``{{ outputs.my-task.x }}`` read as subtractions in Pebble."""
        dashed_inputs = [d["id"] for d in inputs if isinstance(d.get("id"), str) and "-" in d["id"]]
        dashed_tasks = sorted({t.id for t in self.tasks if "-" in t.id})
        if not dashed_inputs and not dashed_tasks:
            return
        input_pattern = (re.compile("|".join(r"\{\{\s*inputs\." + re.escape(i) + r"\s*\}\}" for i in dashed_inputs))
                         if dashed_inputs else None)
        output_pattern = (re.compile("|".join(r"\{\{\s*outputs\." + re.escape(t) + r"\.[^}]+\s*\}\}"
                                              for t in dashed_tasks)) if dashed_tasks else None)
        bad_inputs: list[Task] = []
        bad_outputs: list[Task] = []
        for task in self.tasks:
            texts = list(_own_strings(task))
            if input_pattern and any(input_pattern.search(text) for text in texts):
                bad_inputs.append(task)
            if output_pattern and any(output_pattern.search(text) for text in texts):
                bad_outputs.append(task)
        if bad_inputs:
            self.error(bad_inputs[0].path, bad_inputs[0].line,
                       "Invalid input reference: use inputs[key-name] instead of inputs.key-name — keys with "
                       "dashes require bracket notation, offending tasks: [" + ", ".join(t.id for t in bad_inputs) + "]",
                       subject="")
        if bad_outputs:
            self.error(bad_outputs[0].path, bad_outputs[0].line,
                       "Invalid output reference: use outputs[key-name] instead of outputs.key-name — keys with "
                       "dashes require bracket notation, offending tasks: [" + ", ".join(t.id for t in bad_outputs) + "]",
                       subject="")

    def trigger_inputs_rule(self, inputs: list[dict[str, Any]], triggers: list[Trigger]) -> None:
        """Required inputs without defaults that a Schedule/Webhook trigger does not supply.

        Kestra 1.x rejects such flows; the 0.21 conformance corpus has valid flows that do this
        (their executions come from the API), so it is a warning here.
        """
        needed = [d["id"] for d in inputs
                  if d.get("defaults") is None and d.get("required", True) is not False and isinstance(d.get("id"), str)]
        if not needed:
            return
        for trigger in triggers:
            kind = getattr(trigger.plugin, "supplies_inputs", None)
            if not kind:
                continue
            supplied = trigger.inputs if isinstance(trigger.inputs, dict) else {}
            missing = [i for i in needed if i not in supplied]
            if missing:
                self.warnings.append(FlowError(
                    trigger.path, trigger.line,
                    f"Missing inputs for {kind} Trigger '{trigger.id}', missing inputs: '{' | '.join(missing)}'", ""))

    # ----- scalars ---------------------------------------------------------------------------

    def identifier(self, container: dict[str, Any], key: str, path: str, pattern: re.Pattern[str], text: str,
                   max_length: int) -> Any:
        value = container.get(key)
        where = _join(path, key)
        line = line_of(container, key)
        if value is None:
            self.error(where, line, "must not be null")
            return None
        if isinstance(value, (dict, list)):
            self.error(where, line, "must be a string")
            return None
        if not isinstance(value, str):
            value = scalar_text(value)
        if value.strip() == "":
            self.error(where, line, "must not be blank")
            return None
        if not pattern.match(value):
            self.error(where, line, f'must match "{text}"')
        if len(value) > max_length:
            self.error(where, line, f"size must be between 1 and {max_length}")
        return value

    def string(self, container: dict[str, Any], key: str, path: str) -> str | None:
        value = container.get(key)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            self.error(_join(path, key), line_of(container, key), "must be a string")
            return None
        return scalar_text(value)

    def boolean(self, container: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = container.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.error(_join(path, key), line_of(container, key), "must be a boolean (true or false)")
        return default

    def duration(self, container: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = container.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), line_of(container, key), "must not be null")
            return None
        if _is_expression(value):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"PT{value}S"
        if isinstance(value, str):
            try:
                parse_duration(value)
                return value
            except ValueError:
                pass
        self.error(_join(path, key), line_of(container, key),
                   f"invalid duration '{value}': expected an ISO-8601 duration such as PT30S")
        return None

    def choice(self, container: dict[str, Any], key: str, path: str, allowed: Iterable[str], default: Any = None) -> Any:
        value = container.get(key)
        if value is None:
            return default
        if _is_expression(value):
            return value
        allowed = tuple(allowed)
        if value not in allowed:
            self.error(_join(path, key), line_of(container, key),
                       f"must be one of {', '.join(allowed)}, not '{value}'")
            return default
        return value

    def labels(self, container: dict[str, Any], key: str, path: str) -> dict[str, str]:
        """Labels as a map, whether written as a map or as a list of ``{key, value}``."""
        value = container.get(key)
        where = _join(path, key)
        result: dict[str, str] = {}
        if value is None:
            return result
        if isinstance(value, dict):
            for label_key, label_value in value.items():
                if label_value is None:
                    self.error(_join(where, label_key), line_of(value, label_key), "must not be null")
                elif isinstance(label_value, (dict, list)):
                    self.error(_join(where, label_key), line_of(value, label_key), "must be a string")
                else:
                    result.setdefault(str(label_key), scalar_text(label_value))
            return result
        if isinstance(value, list):
            for index, item in enumerate(value):
                item_path = _join(where, index)
                if not isinstance(item, dict):
                    self.error(item_path, line_of(value, index), "must be a map with 'key' and 'value'")
                    continue
                for extra in item:
                    if extra not in ("key", "value"):
                        self.unrecognized(item_path, line_of(item, extra), extra, "io.kestra.core.models.Label",
                                          ("key", "value"))
                label_key, label_value = item.get("key"), item.get("value")
                for name, got in (("key", label_key), ("value", label_value)):
                    if got is None:
                        self.error(_join(item_path, name), line_of(item, name), "must not be null")
                if label_key is not None and label_value is not None:
                    result.setdefault(scalar_text(label_key), scalar_text(label_value))
            return result
        self.error(where, line_of(container, key), "must be a map or a list of {key, value}")
        return result

    # ----- plugin defaults -------------------------------------------------------------------

    def plugin_defaults(self, root: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for key in ("pluginDefaults", "taskDefaults"):
            value = root.get(key)
            if value is None:
                continue
            if key == "taskDefaults":
                self.deprecated_paths.append(key)
            if not isinstance(value, list):
                self.error(key, line_of(root, key), "must be a list of {type, values, forced}")
                continue
            for index, item in enumerate(value):
                path = _join(key, index)
                line = line_of(value, index)
                if not isinstance(item, dict):
                    self.error(path, line, "must be a map with 'type' and 'values'")
                    continue
                for extra in item:
                    if extra not in ("type", "values", "forced"):
                        self.unrecognized(path, line_of(item, extra), extra,
                                          "io.kestra.core.models.flows.PluginDefault", ("type", "values", "forced"))
                default_type, values = item.get("type"), item.get("values")
                ok = True
                if not isinstance(default_type, str) or not default_type:
                    self.error(_join(path, "type"), line_of(item, "type") or line, "must not be null")
                    ok = False
                if not isinstance(values, dict):
                    self.error(_join(path, "values"), line_of(item, "values") or line,
                               "must not be null" if values is None else "must be a map")
                    ok = False
                else:
                    for value_key, value_value in values.items():
                        if value_value is None:
                            self.error(_join(_join(path, "values"), value_key), line_of(values, value_key),
                                       "must not be null")
                            ok = False
                forced = self.boolean(item, "forced", path, False)
                if ok:
                    found.append({"type": default_type, "values": values, "forced": forced})
        return found

    def global_plugin_defaults(self) -> list[_Default]:
        """Server-configured defaults; malformed entries are skipped (they are not the flow's fault)."""
        result = []
        for item in self.global_defaults:
            if (isinstance(item, dict) and isinstance(item.get("type"), str)
                    and isinstance(item.get("values"), dict)):
                result.append(_Default(item["type"], item["values"], bool(item.get("forced", False))))
        return result

    def with_defaults(self, node: Any, top: bool = False) -> Any:
        """Kestra's PluginDefaultService.recursiveDefaults: children first, then the map itself."""
        if isinstance(node, dict):
            out = LineDict(line=getattr(node, "line", None), lines=dict(getattr(node, "lines", {})))
            for key, value in node.items():
                out[key] = value if top and key in ("pluginDefaults", "taskDefaults") else self.with_defaults(value)
            plugin_type = out.get("type")
            if isinstance(plugin_type, str):
                out = self.merge_defaults(out, plugin_type)
            return out
        if isinstance(node, list):
            return LineList([self.with_defaults(item) for item in node], line=getattr(node, "line", None),
                            lines=list(getattr(node, "lines", [])))
        return node

    def merge_defaults(self, own: LineDict, plugin_type: str) -> LineDict:
        names = {plugin_type}
        try:
            plugin = registry.lookup(plugin_type)
            names.add(plugin.type)
            names.update(plugin.aliases)
        except CelestraError:
            pass
        matching = [d for d in self.defaults if any(name.startswith(d.type) for name in names)]
        if not matching:
            return own
        result: dict[str, Any] = own
        for default in matching:
            if not default.forced:  # earlier sources win: each later one goes under the result
                result = deep_merge(default.values, result)
        for default in reversed([d for d in matching if d.forced]):  # the first forced one wins
            result = deep_merge(result, default.values)
        merged = result if isinstance(result, LineDict) else LineDict(result)
        merged.line = own.line
        merged.lines = {**{k: v for k, v in merged.lines.items() if k in merged}, **own.lines}
        added = frozenset(key for key in merged if key not in own)
        if added:
            self.defaulted[id(merged)] = added
        return merged

    # ----- tasks -----------------------------------------------------------------------------

    def task_list(self, container: dict[str, Any], key: str, path: str, *, required: bool = False) -> list[Task]:
        value = container.get(key)
        where = _join(path, key)
        if value is None or (isinstance(value, list) and not value):
            if required:
                self.error(where, line_of(container, key), "must not be empty")
            return []
        return self.task_items(value, where, line_of(container, key), key)

    def typed_plugin(self, raw: dict[str, Any], path: str, line: int | None, section: str) -> type[Plugin] | None:
        type_name = raw.get("type")
        if type_name is None:
            self.error(_join(path, "type"), line,
                       f"missing type id property 'type' (for POJO property '{section}')", parse=True)
            return None
        if not isinstance(type_name, str):
            self.error(_join(path, "type"), line_of(raw, "type"), f"Invalid type: {scalar_text(type_name)}", parse=True)
            return None
        try:
            plugin = registry.lookup(type_name)
        except registry.UnknownPluginType as exc:
            self.error(_join(path, "type"), line_of(raw, "type"), str(exc), parse=True)
            return None
        if getattr(plugin, "deprecated", False):
            self.deprecated_paths.append(path)
        if type_name != plugin.type:
            info = f"{type_name} is replaced by {plugin.type}"
            if info not in self.infos:
                self.infos.append(info)
        return plugin

    def task(self, raw: Any, path: str, line: int | None, section: str) -> Task | None:
        if not isinstance(raw, dict):
            self.error(path, line, "must be a task: a map with 'id' and 'type'")
            return None
        line = line_of(raw) or line
        errors_before = len(self.errors)
        task_id = self.identifier(raw, "id", path, _TASK_ID, TASK_ID_PATTERN, 256)
        valid_id = isinstance(task_id, str) and bool(_TASK_ID.match(task_id))
        self.task_ids.append((task_id, path, line))
        self.scopes.append((path, task_id if valid_id else path))
        try:
            plugin = self.typed_plugin(raw, path, line, section)
            if plugin is not None and plugin.kind in (TRIGGER, CONDITION, registry.OTHER):
                self.error(_join(path, "type"), line_of(raw, "type"),
                           f"Invalid type: {raw['type']} is a {plugin.kind} type, not a task", parse=True)
                plugin = None
            if plugin is None:
                return None
            common = self.task_common(raw, path)
            props, children = self.plugin_props(raw, path, plugin, TASK_COMMON)
            task = Task(
                id=task_id if isinstance(task_id, str) else "", type=plugin.type, raw_type=raw["type"],
                plugin=plugin, props=props, path=path, line=line, **common,
            )
            self.tasks.append(task)
            # children after the parent so that ids are listed in pre-order
            self.task_children(task, children, path)
            # local handlers are also attributes (the same list objects as in props)
            task.errors = (props.get("errors") or []) if "errors" in plugin.task_fields else []
            task.finally_ = (props.get("finally") or []) if "finally" in plugin.task_fields else []
            for name in getattr(plugin, "input_fields", ()):
                if props.get(name) is not None:
                    props[name] = self.definition_list(props[name], _join(path, name), line_of(props, name), "input")
            if len(self.errors) == errors_before:
                self.node_rules(task, plugin, path)
            return task if task_id is not None else None
        finally:
            self.scopes.pop()

    def task_common(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        run_if = raw.get("runIf")
        if isinstance(run_if, (dict, list)):
            self.error(_join(path, "runIf"), line_of(raw, "runIf"), "must be a string")
            run_if = None
        key, fallback = self.worker_group(raw, path)
        if "assets" in raw:
            self.error(_join(path, "assets"), line_of(raw, "assets"),
                       f"Task '{raw.get('id')}' can't have any `assets` because assets are only available in "
                       "Enterprise Edition.", subject="")
        return {
            "description": self.string(raw, "description", path),
            "disabled": self.boolean(raw, "disabled", path, False),
            "allow_failure": self.boolean(raw, "allowFailure", path, False),
            "allow_warning": self.boolean(raw, "allowWarning", path, False),
            "run_if": None if run_if is None else scalar_text(run_if),
            "retry": self.retry(raw, "retry", path),
            "timeout": self.duration(raw, "timeout", path),
            "worker_group": key,
            "worker_group_fallback": fallback,
            "log_level": self.choice(raw, "logLevel", path, LOG_LEVELS),
            "log_to_file": self.boolean(raw, "logToFile", path, False),
            "task_cache": self.task_cache(raw, path),
            "version": self.string(raw, "version", path),
        }

    def plugin_props(self, raw: dict[str, Any], path: str, plugin: type[Plugin],
                     common: frozenset[str]) -> tuple[LineDict, dict[str, Any]]:
        """Split the plugin's own properties from the common ones and validate them with Props.

        Returns the props (children still raw) and the raw nested task fields.
        """
        defaulted = self.defaulted.get(id(raw), frozenset())
        props = LineDict(line=line_of(raw))
        for key, value in raw.items():
            if key not in common and key != "assets":
                props[key] = value
                raw_lines: dict[str, Any] = getattr(raw, "lines", {})
                if key in raw_lines:
                    props.lines[key] = raw_lines[key]
        for old, new in getattr(plugin, "renamed_props", {}).items():
            if old in props:
                self.deprecated_paths.append(_join(path, old))
            if old in props and new not in props:
                props[new] = props.pop(old)
                if old in props.lines:
                    props.lines[new] = props.lines.pop(old)
        nested_fields = {**plugin.task_fields, **getattr(plugin, "condition_fields", {})}
        nested = {name: props.pop(name) for name in list(props) if name in nested_fields}
        model = plugin.Props
        known = _known_properties(plugin, common)
        if model is not None:
            drop = self.validate_model(model, props, path, plugin.type, known, defaulted)
            for key in drop:
                props.pop(key, None)
            for key, default in _model_defaults(model):
                if key not in props and key not in nested_fields:
                    props[key] = copy.copy(default)
        elif props:
            for key in list(props):
                if key in defaulted or not self.strict:
                    props.pop(key)
                else:
                    self.unrecognized(path, props.lines.get(key), key, plugin.type, known)
        raw_lines = getattr(raw, "lines", {})
        for name in nested:
            if nested[name] is not None and name in raw_lines:
                props.lines[name] = raw_lines[name]
        return props, nested

    def validate_model(self, model: Any, props: dict[str, Any], path: str, owner: str, known: Iterable[str],
                       defaulted: frozenset[str]) -> set[str]:
        """Validate ``props`` with a pydantic model; report errors, return keys to drop.

        An ``{{ expression }}`` is accepted wherever a typed value is expected (Property<T>):
        errors whose input is an expression are ignored.
        """
        drop: set[str] = set()
        try:
            model.model_validate(props)
            return drop
        except ValidationError as exc:
            problems = exc.errors(include_url=False)
        reported: set[str] = set()
        for problem in problems:
            kind, value = problem["type"], problem.get("input")
            if kind != "extra_forbidden" and _is_expression(value):
                continue
            parts = _loc(props, tuple(problem["loc"]))
            where = path
            for part in parts:
                where = _join(where, part)
            if where in reported:
                continue  # one message per field (unions report each branch)
            line = _line_at(props, parts)
            if kind == "extra_forbidden":
                key = str(parts[-1] if parts else problem["loc"][-1])
                if len(parts) == 1:
                    if key in defaulted:
                        self.warn(where, line, f"No property '{key}' exists in plugin '{owner}'")
                        drop.add(key)
                        continue
                    if not self.strict:
                        drop.add(key)
                        continue
                    reported.add(where)
                    self.unrecognized(path, line, key, owner, known)
                else:
                    if not self.strict:
                        continue
                    reported.add(where)
                    self.error(where, line, f'Unrecognized field "{key}"', parse=True)
                continue
            reported.add(where)
            if kind == "missing" or value is None:
                self.error(where, line, "must not be null")
            else:
                message = problem["msg"]
                if message.startswith("Value error, "):
                    message = message[len("Value error, "):]
                self.error(where, line, message)
        return drop

    def task_children(self, task: Task, nested: dict[str, Any], path: str) -> None:
        plugin = task.plugin
        required: frozenset[str] = getattr(plugin, "required_task_fields", frozenset())
        for name, shape in plugin.task_fields.items():
            raw = nested.get(name)
            where = _join(path, name)
            line = task.props.lines.get(name) if isinstance(task.props, LineDict) else None
            empty = raw is None or (isinstance(raw, (list, dict)) and not raw)
            if empty:
                if name in required:
                    self.error(where, line or task.line, "must not be empty")
                task.props[name] = {} if shape == "map" else (None if shape == "single" else [])
                continue
            if shape == "list":
                task.props[name] = self.task_items(raw, where, line, name)
            elif shape == "map":
                task.props[name] = self.task_map(raw, where, line)
            elif shape == "dag":
                task.props[name] = self.dag_entries(raw, where, line, task.type)
            elif shape == "single":
                task.props[name] = self.task(raw, where, line, name)
        condition_fields: dict[str, str] = getattr(plugin, "condition_fields", {})
        for name, shape in condition_fields.items():
            raw = nested.get(name)
            if raw is not None:
                task.props[name] = self.condition_container(raw, _join(path, name), line_of(task.props, name), shape)

    def task_items(self, raw: Any, where: str, line: int | None, section: str) -> list[Task]:
        if not isinstance(raw, list):
            self.error(where, line, "must be a list of tasks")
            return []
        return [t for i, item in enumerate(raw) if (t := self.task(item, _join(where, i), line_of(raw, i), section))]

    def task_map(self, raw: Any, where: str, line: int | None) -> dict[str, list[Task]]:
        if not isinstance(raw, dict):
            self.error(where, line, "must be a map of task lists")
            return {}
        result: dict[str, list[Task]] = {}
        for key, branch in raw.items():
            branch_path = _join(where, key)
            if branch is None:
                result[str(key)] = []
            else:
                result[str(key)] = self.task_items(branch, branch_path, line_of(raw, key), "tasks")
        return result

    def dag_entries(self, raw: Any, where: str, line: int | None, owner: str) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            self.error(where, line, "must be a list of {task, dependsOn}")
            return []
        entries = []
        for index, item in enumerate(raw):
            entry_path = _join(where, index)
            entry_line = line_of(raw, index)
            if not isinstance(item, dict):
                self.error(entry_path, entry_line, "must be a map with 'task' and 'dependsOn'")
                continue
            for extra in item:
                if extra not in ("task", "dependsOn"):
                    self.unrecognized(entry_path, line_of(item, extra), extra,
                                      f"{owner}$DagTask", ("task", "dependsOn"))
            depends = item.get("dependsOn")
            if depends is None:
                depends = []
            elif not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
                self.error(_join(entry_path, "dependsOn"), line_of(item, "dependsOn"), "must be a list of task ids")
                depends = []
            if item.get("task") is None:
                self.error(_join(entry_path, "task"), entry_line, "must not be null")
                continue
            task = self.task(item["task"], _join(entry_path, "task"), line_of(item, "task"), "task")
            if task is not None:
                entries.append({"task": task, "dependsOn": list(depends)})
        return entries

    def node_rules(self, node: Any, plugin: type[Plugin], path: str) -> None:
        hook = getattr(plugin, "validate_node", None)
        if hook is None:
            return
        for relative, message in hook(node):
            where = path + ("." + relative if relative and not relative.startswith("[") else relative)
            parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", relative)]
            self.error(where, _line_at(node.props, parts) if parts else node.line, message)

    def task_cache(self, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
        value = raw.get("taskCache")
        where = _join(path, "taskCache")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(where, line_of(raw, "taskCache"), "must be a map with 'enabled' and 'ttl'")
            return None
        for extra in value:
            if extra not in ("enabled", "ttl"):
                self.unrecognized(where, line_of(value, extra), extra, "io.kestra.core.models.tasks.Cache",
                                  ("enabled", "ttl"))
        if value.get("enabled") is None:
            self.error(_join(where, "enabled"), line_of(value), "must not be null")
        return {"enabled": self.boolean(value, "enabled", where, False), "ttl": self.duration(value, "ttl", where)}

    def worker_group(self, raw: dict[str, Any], path: str) -> tuple[str | None, str | None]:
        value = raw.get("workerGroup")
        where = _join(path, "workerGroup")
        if value is None:
            return None, None
        if not isinstance(value, dict):
            self.error(where, line_of(raw, "workerGroup"), "must be a map with 'key' and 'fallback'")
            return None, None
        for extra in value:
            if extra not in ("key", "fallback"):
                self.unrecognized(where, line_of(value, extra), extra, "io.kestra.core.models.tasks.WorkerGroup",
                                  ("key", "fallback"))
        key = value.get("key")
        if key is not None and not _is_expression(key):
            key = scalar_text(key)
            if not _WORKER_GROUP.match(key):
                self.error(_join(where, "key"), line_of(value, "key"), f'must match "{WORKER_GROUP_PATTERN}"')
        fallback = self.choice(value, "fallback", where, ("FAIL", "WAIT", "CANCEL"))
        return key, fallback

    def retry(self, container: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        value = container.get(key)
        where = _join(path, key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(where, line_of(container, key), "must be a retry: a map with 'type' (constant, exponential, random)")
            return None
        retry_type = value.get("type")
        if retry_type is None:
            self.error(_join(where, "type"), line_of(value),
                       "missing type id property 'type' (for POJO property 'retry')", parse=True)
            return None
        if not isinstance(retry_type, str) or retry_type not in _RETRY_FIELDS:
            self.error(_join(where, "type"), line_of(value, "type"),
                       f"Invalid type: {retry_type} (expected constant, exponential or random)", parse=True)
            return None
        allowed = _RETRY_COMMON + _RETRY_FIELDS[retry_type]
        for extra in value:
            if extra not in allowed and self.strict:
                self.unrecognized(where, line_of(value, extra), extra,
                                  f"io.kestra.core.models.tasks.retrys.{_RETRY_CLASSES[retry_type]}", allowed)
        result: dict[str, Any] = {"type": retry_type}
        attempts = value.get("maxAttempts", value.get("maxAttempt"))
        attempts_key = "maxAttempts" if "maxAttempts" in value else "maxAttempt"
        if attempts is not None:
            if _is_expression(attempts):
                result["maxAttempts"] = attempts
            elif isinstance(attempts, bool) or not isinstance(attempts, int):
                self.error(_join(where, attempts_key), line_of(value, attempts_key), "must be an integer")
            elif attempts < 1:
                self.error(_join(where, attempts_key), line_of(value, attempts_key),
                           "must be greater than or equal to 1")
            else:
                result["maxAttempts"] = attempts
        for name in ("maxDuration", *(f for f in _RETRY_FIELDS[retry_type] if f != "delayFactor")):
            parsed = self.duration(value, name, where, required=name in _RETRY_REQUIRED[retry_type])
            if parsed is not None:
                result[name] = parsed
        if "delayFactor" in value and value["delayFactor"] is not None:
            factor = value["delayFactor"]
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) and not _is_expression(factor):
                self.error(_join(where, "delayFactor"), line_of(value, "delayFactor"), "must be a number")
            else:
                result["delayFactor"] = factor
        result["warningOnRetry"] = self.boolean(value, "warningOnRetry", where, False)
        behavior = self.choice(value, "behavior", where, ("RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"))
        if behavior is not None:
            result["behavior"] = behavior
        self.retry_consistency(result, where, line_of(container, key))
        return result

    def retry_consistency(self, retry: dict[str, Any], where: str, line: int | None) -> None:
        def span(name: str) -> Any:
            value = retry.get(name)
            if value is None or _is_expression(value):
                return None
            return parse_duration(value)

        max_duration, interval = span("maxDuration"), span("interval")
        min_interval, max_interval = span("minInterval"), span("maxInterval")
        message = None
        if retry["type"] in ("constant", "exponential") and max_duration is not None and interval is not None \
                and max_duration <= interval:
            message = f"'interval' must be less than 'maxDuration' but is {retry['interval']}"
        elif retry["type"] == "exponential" and max_interval is not None and interval is not None \
                and max_interval <= interval:
            message = f"'interval' must be less than 'maxInterval' but is {retry['interval']}"
        elif retry["type"] == "random":
            if max_duration is not None and min_interval is not None and max_duration <= min_interval:
                message = f"'minInterval' must be less than 'maxDuration' but is {retry['minInterval']}"
            elif max_duration is not None and max_interval is not None and max_duration <= max_interval:
                message = f"'maxInterval' must be less than 'maxDuration' but is {retry['maxInterval']}"
            elif max_interval is not None and min_interval is not None and max_interval <= min_interval:
                message = f"'minInterval' must be less than 'maxInterval' but is {retry['minInterval']}"
        if message:
            self.error(where, line, message)

    # ----- triggers and conditions -----------------------------------------------------------

    def triggers(self, root: dict[str, Any]) -> list[Trigger]:
        value = root.get("triggers")
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("triggers", line_of(root, "triggers"), "must be a list of triggers")
            return []
        result = []
        for index, item in enumerate(value):
            trigger = self.trigger(item, _join("triggers", index), line_of(value, index))
            if trigger is not None:
                result.append(trigger)
        return result

    def trigger(self, raw: Any, path: str, line: int | None) -> Trigger | None:
        if not isinstance(raw, dict):
            self.error(path, line, "must be a trigger: a map with 'id' and 'type'")
            return None
        line = line_of(raw) or line
        errors_before = len(self.errors)
        trigger_id = self.identifier(raw, "id", path, _TASK_ID, TASK_ID_PATTERN, 256)
        valid_id = isinstance(trigger_id, str) and bool(_TASK_ID.match(trigger_id))
        self.scopes.append((path, trigger_id if valid_id else path))
        try:
            plugin = self.typed_plugin(raw, path, line, "triggers")
            if plugin is not None and plugin.kind != TRIGGER:
                self.error(_join(path, "type"), line_of(raw, "type"),
                           f"Invalid type: {raw['type']} is a {plugin.kind} type, not a trigger", parse=True)
                plugin = None
            conditions = self.condition_container(raw["conditions"], _join(path, "conditions"),
                                                  line_of(raw, "conditions"), "list") if raw.get("conditions") is not None else []
            labels = self.labels(raw, "labels", path)
            for key, value in labels.items():
                if key.startswith("system."):
                    self.error(_join(_join(path, "labels"), key), line_of(raw, "labels"),
                               f"System labels can only be set by Kestra itself, offending label: {key}={value}")
            stop_after = raw.get("stopAfter") or []
            if not isinstance(stop_after, list) or any(not isinstance(s, str) or s not in STATE_NAMES for s in stop_after):
                self.error(_join(path, "stopAfter"), line_of(raw, "stopAfter"), "must be a list of execution states")
                stop_after = []
            group_key, fallback = self.worker_group(raw, path)
            common = {
                "description": self.string(raw, "description", path),
                "disabled": self.boolean(raw, "disabled", path, False),
                "log_level": self.choice(raw, "logLevel", path, LOG_LEVELS),
                "min_log_level": self.choice(raw, "minLogLevel", path, LOG_LEVELS),
                "log_to_file": self.boolean(raw, "logToFile", path, False),
                "fail_on_trigger_error": self.boolean(raw, "failOnTriggerError", path, False),
                "allow_concurrent": self.boolean(raw, "allowConcurrent", path, False),
            }
            if plugin is None:
                return None
            props, nested = self.plugin_props(raw, path, plugin, TRIGGER_COMMON)
            for name, shape in getattr(plugin, "condition_fields", {}).items():
                if nested.get(name) is not None:
                    extra = self.condition_container(nested[name], _join(path, name), line_of(raw, name), shape)
                    props[name] = extra
                    conditions = [*conditions, *extra]  # deprecated spellings of `conditions`
            trigger = Trigger(
                id=trigger_id if isinstance(trigger_id, str) else "", type=plugin.type, raw_type=raw["type"],
                plugin=plugin, props=props, path=path, line=line, conditions=conditions,
                inputs=props.get("inputs") if isinstance(props.get("inputs"), dict) else None,
                labels=labels, stop_after=list(stop_after), worker_group=group_key, worker_group_fallback=fallback,
                **common,
            )
            if len(self.errors) == errors_before:
                self.node_rules(trigger, plugin, path)
            return trigger if trigger_id is not None else None
        finally:
            self.scopes.pop()

    def condition_container(self, raw: Any, where: str, line: int | None, shape: str) -> Any:
        if shape == "map":
            if not isinstance(raw, dict):
                self.error(where, line, "must be a map of conditions")
                return {}
            return {str(k): c for k, v in raw.items()
                    if (c := self.condition(v, _join(where, k), line_of(raw, k), where.rsplit(".", 1)[-1]))}
        if not isinstance(raw, list):
            self.error(where, line, "must be a list of conditions")
            return []
        return [c for i, v in enumerate(raw)
                if (c := self.condition(v, _join(where, i), line_of(raw, i), "conditions"))]

    def condition(self, raw: Any, path: str, line: int | None, section: str) -> Condition | None:
        if not isinstance(raw, dict):
            self.error(path, line, "must be a condition: a map with 'type'")
            return None
        line = line_of(raw) or line
        errors_before = len(self.errors)
        plugin = self.typed_plugin(raw, path, line, section)
        if plugin is not None and plugin.kind != CONDITION:
            self.error(_join(path, "type"), line_of(raw, "type"),
                       f"Invalid type: {raw['type']} is a {plugin.kind} type, not a condition", parse=True)
            plugin = None
        if plugin is None:
            return None
        props, nested = self.plugin_props(raw, path, plugin, frozenset({"type"}))
        required: frozenset[str] = getattr(plugin, "required_condition_fields", frozenset())
        for name, shape in getattr(plugin, "condition_fields", {}).items():
            value = nested.get(name)
            if value is None or (isinstance(value, (list, dict)) and not value):
                if name in required:
                    self.error(_join(path, name), line_of(raw, name) or line, "must not be empty")
                props[name] = {} if shape == "map" else []
                continue
            props[name] = self.condition_container(value, _join(path, name), line_of(raw, name), shape)
        condition = Condition(type=plugin.type, raw_type=raw["type"], plugin=plugin, props=props, path=path, line=line)
        if len(self.errors) == errors_before:
            self.node_rules(condition, plugin, path)
        return condition

    def listeners(self, root: dict[str, Any]) -> list[dict[str, Any]]:
        value = root.get("listeners")
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("listeners", line_of(root, "listeners"), "must be a list of {conditions, tasks}")
            return []
        result = []
        for index, item in enumerate(value):
            path = _join("listeners", index)
            if not isinstance(item, dict):
                self.error(path, line_of(value, index), "must be a map with 'conditions' and 'tasks'")
                continue
            for extra in item:
                if extra not in ("conditions", "tasks", "description"):
                    self.unrecognized(path, line_of(item, extra), extra, "io.kestra.core.models.listeners.Listener",
                                      ("conditions", "tasks", "description"))
            conditions = (self.condition_container(item["conditions"], _join(path, "conditions"),
                                                   line_of(item, "conditions"), "list")
                          if item.get("conditions") is not None else [])
            tasks = self.task_list(item, "tasks", path, required=True)
            result.append({"conditions": conditions, "tasks": tasks, "description": item.get("description")})
        return result

    # ----- inputs, outputs -------------------------------------------------------------------

    def definitions(self, root: dict[str, Any], key: str, path: str, kind: str) -> list[dict[str, Any]]:
        value = root.get(key)
        if value is None:
            return []
        return self.definition_list(value, _join(path, key), line_of(root, key), kind)

    def definition_list(self, value: Any, where: str, line: int | None, kind: str) -> list[dict[str, Any]]:
        """Input (or flow output) definitions, ``name`` (legacy) normalised to ``id``.

        The rules live in ``engine.inputs`` (``validate_definitions`` /
        ``validate_output_definitions``) when that module is installed; otherwise the structural
        rules and the few type rules below apply.
        """
        if not isinstance(value, list):
            self.error(where, line, f"must be a list of {kind}s")
            return []
        items: list[Any] = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                definition = LineDict(item, line=line_of(item), lines=dict(getattr(item, "lines", {})))
                if definition.get("id") is None and "name" in definition:  # `name`: legacy spelling of `id`
                    self.deprecated_paths.append(f"{_join(where, index)}.name")
                    definition["id"] = definition.pop("name")
                    definition.lines["id"] = definition.lines.pop("name", definition.line)
                item = definition
            items.append(item)
        validate = _definition_validator(kind)
        if validate is not None:
            try:
                problems = validate(items)
            except Exception as exc:  # noqa: BLE001 - a bug there must not reach the user as a traceback
                problems = [(where, f"Unable to validate the {kind}s: {exc}")]
            for problem_path, message in problems or []:
                self.definition_problem(str(problem_path or ""), str(message), where, value, items)
        else:
            self.basic_definitions(items, value, where, line, kind)
        return [item for item in items if isinstance(item, dict)]

    def definition_problem(self, problem_path: str, message: str, where: str, raw: list[Any], items: list[Any]) -> None:
        """Place a problem reported by ``engine.inputs``: its paths are ``inputs[i].field``, an input
        id (a rule about that input) or ``inputs`` (a rule across inputs)."""
        parse = message.startswith("Invalid type")
        by_index = re.match(r"^(?:inputs|outputs)(\[(\d+)\])?(.*)$", problem_path)
        ids = {item.get("id"): index for index, item in enumerate(items)
               if isinstance(item, dict) and isinstance(item.get("id"), str)}
        head = re.split(r"[.\[]", problem_path, maxsplit=1)[0]
        if head in ids and not (by_index and head in ("inputs", "outputs")):
            index, rest = ids[head], problem_path[len(head):]
        elif by_index and by_index.group(1):
            index, rest = int(by_index.group(2)), by_index.group(3)
        elif by_index:  # a rule across the whole list
            self.error(where + by_index.group(3), line_of(raw), message, subject="", parse=parse)
            return
        else:
            self.error(_join(where, problem_path), line_of(raw), message, parse=parse)
            return
        path = _join(where, index) + rest
        item = items[index] if 0 <= index < len(items) else None
        key = rest.lstrip(".").split(".")[0].split("[")[0]
        item_line = (line_of(item, key) if key else line_of(item)) if isinstance(item, dict) else None
        item_id = item.get("id") if isinstance(item, dict) else None
        label = item_id if isinstance(item_id, str) and _INPUT_ID.match(item_id) else None
        self.scopes.append((_join(where, index), label or _join(where, index)))
        try:
            self.error(path, item_line or line_of(raw, index), message, parse=parse)
        finally:
            self.scopes.pop()

    def basic_definitions(self, items: list[Any], raw: list[Any], where: str, line: int | None, kind: str) -> None:
        """Definition rules used when ``engine.inputs`` is not installed."""
        paths: list[str] = []
        definitions: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            path = _join(where, index)
            if not isinstance(item, dict):
                self.error(path, line_of(raw, index), f"must be an {kind}: a map with 'id' and 'type'")
                continue
            input_id = self.identifier(item, "id", path, _INPUT_ID, INPUT_ID_PATTERN, 1000)
            valid_id = isinstance(input_id, str) and bool(_INPUT_ID.match(input_id))
            self.scopes.append((path, input_id if valid_id else path))
            try:
                input_type = item.get("type")
                if input_type is None:
                    self.error(_join(path, "type"), getattr(item, "line", None), "Invalid type: null", parse=True)
                elif not isinstance(input_type, str) or input_type not in INPUT_TYPES:
                    self.error(_join(path, "type"), line_of(item, "type"), f"Invalid type: {input_type}", parse=True)
                elif kind == "input":
                    for relative, message in _basic_input_rules(item):
                        self.error(_join(path, relative) if relative else path,
                                   line_of(item, relative) if relative else getattr(item, "line", None), message)
                if kind == "output" and "value" not in item:
                    self.error(_join(path, "value"), getattr(item, "line", None), "must not be null")
            finally:
                self.scopes.pop()
            paths.append(path)
            definitions.append(item)
        ids = [d.get("id") for d in definitions]
        duplicated = [i for n, i in enumerate(ids) if i is not None and ids.count(i) > 1 and ids.index(i) == n]
        if duplicated:
            self.error(where, line, f"Duplicate {kind} with name [" + ", ".join(map(str, duplicated)) + "]", subject="")
        if kind == "input":
            self.depends_on_rules(definitions, paths)

    def depends_on_rules(self, definitions: list[dict[str, Any]], paths: list[str]) -> None:
        graph: dict[str, list[str]] = {}
        for definition in definitions:
            if isinstance(definition.get("id"), str):
                depends = definition.get("dependsOn")
                names = depends.get("inputs") if isinstance(depends, dict) else None
                graph.setdefault(definition["id"], [str(n) for n in names or []] if isinstance(names, list) else [])
        for definition, path in zip(definitions, paths):
            input_id = definition.get("id")
            for dependency in graph.get(input_id, []) if isinstance(input_id, str) else []:
                if dependency not in graph:
                    self.error(_join(path, "dependsOn"), line_of(definition, "dependsOn"),
                               f"Input with id '{input_id}' depends on a non-existent input '{dependency}'.",
                               subject="")
        for definition, path in zip(definitions, paths):
            input_id = definition.get("id")
            if not isinstance(input_id, str):
                continue
            cycle = _find_cycle(input_id, graph)
            if cycle:
                self.error(_join(path, "dependsOn"), line_of(definition, "dependsOn"),
                           f"Cycle dependency detected for input with id '{input_id}': [{', '.join(cycle)}]",
                           subject="")

    # ----- flow-level objects ----------------------------------------------------------------

    def concurrency(self, root: dict[str, Any]) -> dict[str, Any] | None:
        value = root.get("concurrency")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error("concurrency", line_of(root, "concurrency"), "must be a map with 'limit' and 'behavior'")
            return None
        for extra in value:
            if extra not in ("limit", "behavior"):
                self.unrecognized("concurrency", line_of(value, extra), extra,
                                  "io.kestra.core.models.flows.Concurrency", ("limit", "behavior"))
        limit = value.get("limit")
        if limit is None:
            self.error("concurrency.limit", line_of(value), "must not be null")
        elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self.error("concurrency.limit", line_of(value, "limit"), "must be greater than or equal to 1")
        behavior = self.choice(value, "behavior", "concurrency", ("QUEUE", "CANCEL", "FAIL"), "QUEUE")
        return {"limit": limit, "behavior": behavior}

    def sla(self, root: dict[str, Any]) -> list[dict[str, Any]]:
        value = root.get("sla")
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("sla", line_of(root, "sla"), "must be a list of SLA")
            return []
        allowed = ("id", "type", "behavior", "labels", "duration", "assert")
        result = []
        for index, item in enumerate(value):
            path = _join("sla", index)
            if not isinstance(item, dict):
                self.error(path, line_of(value, index), "must be an SLA: a map with 'id', 'type' and 'behavior'")
                continue
            for extra in item:
                if extra not in allowed:
                    self.unrecognized(path, line_of(item, extra), extra, "io.kestra.core.models.flows.sla.SLA", allowed)
            for name in ("id", "type", "behavior"):
                if item.get(name) is None:
                    self.error(_join(path, name), line_of(item), "must not be null")
            sla_type = self.choice(item, "type", path, ("MAX_DURATION", "EXECUTION_ASSERTION"))
            behavior = self.choice(item, "behavior", path, ("FAIL", "CANCEL", "NONE"))
            entry: dict[str, Any] = {"id": item.get("id"), "type": sla_type, "behavior": behavior,
                                     "labels": self.labels(item, "labels", path)}
            if sla_type == "MAX_DURATION":
                entry["duration"] = self.duration(item, "duration", path, required=True)
            elif sla_type == "EXECUTION_ASSERTION":
                if item.get("assert") is None:
                    self.error(_join(path, "assert"), line_of(item), "must not be null")
                entry["assert"] = item.get("assert")
            result.append(entry)
        return result

    def checks(self, root: dict[str, Any]) -> list[dict[str, Any]]:
        value = root.get("checks")
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("checks", line_of(root, "checks"), "must be a list of checks")
            return []
        allowed = ("condition", "message", "style", "behavior")
        result = []
        for index, item in enumerate(value):
            path = _join("checks", index)
            if not isinstance(item, dict):
                self.error(path, line_of(value, index), "must be a check: a map with 'condition' and 'message'")
                continue
            for extra in item:
                if extra not in allowed:
                    self.unrecognized(path, line_of(item, extra), extra, "io.kestra.core.models.flows.Check", allowed)
            for name in ("condition", "message"):
                if item.get(name) is None:
                    self.error(_join(path, name), line_of(item), "must not be null")
            result.append({
                "condition": item.get("condition"), "message": item.get("message"),
                "style": self.choice(item, "style", path, ("ERROR", "SUCCESS", "WARNING", "INFO"), "INFO"),
                "behavior": self.choice(item, "behavior", path,
                                        ("BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"), "BLOCK_EXECUTION"),
            })
        return result


def _find_cycle(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle through ``start`` (its members in order), as Kestra's CycleDependency."""
    path: list[str] = []
    visiting: set[str] = set()
    visited: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return path[path.index(node):]
        if node in visited:
            return None
        visiting.add(node)
        path.append(node)
        for dependency in graph.get(node, ()):
            found = visit(dependency)
            if found:
                return found
        visiting.discard(node)
        visited.add(node)
        path.pop()
        return None

    cycle = visit(start)
    return list(cycle) if cycle and start in cycle else None


def _own_strings(task: Task) -> Iterator[str]:
    """Text of a task's own properties (not of its children), for the reference rules."""
    skip = set(task.plugin.task_fields)
    stack: list[Any] = [v for k, v in task.props.items() if k not in skip]
    stack.extend(v for v in (task.run_if, task.timeout) if v)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _definition_validator(kind: str) -> Any:
    """``engine.inputs.validate_definitions`` (or ``validate_output_definitions``) when installed."""
    try:
        from . import inputs
    except ImportError:
        return None
    return getattr(inputs, "validate_definitions" if kind == "input" else "validate_output_definitions", None)


def _basic_input_rules(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """The few type-specific input rules checked when ``engine.inputs`` is not installed."""
    problems: list[tuple[str, str]] = []
    input_type = definition.get("type")
    defaults = definition.get("defaults")
    if input_type == "FILE" and defaults is not None and not _is_expression(defaults) and not (
            isinstance(defaults, str) and defaults.startswith(("nsfile://", "file://"))):
        problems.append(("defaults", "no `defaults` can be set for inputs of type 'FILE'"))
    if input_type == "ARRAY":
        if definition.get("itemType") is None:
            problems.append(("itemType", "must not be null"))
        elif definition.get("itemType") == "ARRAY":
            problems.append(("itemType", "`itemType` cannot be `ARRAY`"))
        elif not isinstance(definition.get("itemType"), str) or definition.get("itemType") not in INPUT_TYPES:
            problems.append(("itemType", f"Invalid type: {definition.get('itemType')}"))
    validator = definition.get("validator")
    if validator is not None:
        try:
            re.compile(str(validator))
        except re.error as exc:
            problems.append(("validator", f"Invalid regex `{validator}`: {exc}"))
    if input_type == "ENUM" and not definition.get("values"):
        problems.append(("values", "must not be empty"))
    if input_type in ("SELECT", "MULTISELECT") and not (definition.get("values") or definition.get("options")
                                                        or definition.get("expression")):
        problems.append(("values", "one of `values` or `expression` must be set"))
    return problems


# --------------------------------------------------------------------------------------------------
# Entry points

def parse_flow(source: str, *, global_defaults: list[dict[str, Any]] | None = None, strict: bool = True) -> Flow:
    """Parse and validate a flow; raises :class:`FlowValidationError` listing every problem.

    ``global_defaults`` are the server's plugin defaults (same shape as ``pluginDefaults``
    entries), applied after the flow's own. ``strict=False`` ignores unknown properties (Kestra's
    lenient reading, used for stored revisions written by other versions).
    """
    parser = _Parser(strict, global_defaults)
    try:
        return parser.parse(source)
    except FlowValidationError:
        raise
    except RecursionError:
        raise FlowValidationError([FlowError("", None, "The flow is too deeply nested")], "parse") from None


def parse_flow_documents(source: str, *, global_defaults: list[dict[str, Any]] | None = None,
                         strict: bool = True) -> list[Flow | FlowValidationError]:
    """Parse every document of a multi-document text (bulk validation); lines are absolute."""
    from .yamlload import split_documents

    results: list[Flow | FlowValidationError] = []
    for text, first_line in split_documents(source):
        try:
            results.append(parse_flow(text, global_defaults=global_defaults, strict=strict))
        except FlowValidationError as exc:
            shift = first_line - 1
            if shift:
                exc.errors = [FlowError(e.path, e.line + shift if e.line else e.line, e.message, e.subject)
                              for e in exc.errors]
            results.append(exc)
    return results
