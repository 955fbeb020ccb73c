"""The JSON Schema of a flow, built from the plugin registry, for editors and YAML language servers.

Kestra serves the same document at ``/api/v1/plugins/schemas/flow``: draft-07, one definition per
type, tasks chosen by their ``type`` constant. An editor given this schema completes
type names and property names and flags unknown properties.

Every dynamic property accepts an expression: a typed property (a number, a boolean, a map) also
accepts a string holding ``{{ … }}``, as the flow parser does. The schema is a convenience for
editors; the parser stays the judge (it reports what a schema cannot say: duplicate ids, cycles,
expressions that do not compile).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from .levels import LEVELS
from .plugins import CONDITION, TRIGGER, Plugin, registered_types

DRAFT = "http://json-schema.org/draft-07/schema#"
#: a text holding an expression: what Kestra's ``Property<T>`` accepts in place of a typed value
EXPRESSION = {"type": "string", "pattern": r".*\{\{.*\}\}.*"}
SCHEMA_TYPES = ("flow", "task", "trigger", "plugindefault")

_DURATION = {"type": "string", "description": "ISO-8601 duration, e.g. PT30S"}
_RETRY = {
    "type": "object",
    "properties": {
        "type": {"enum": ["constant", "exponential", "random"]},
        "maxAttempts": {"type": "integer", "minimum": 1},
        "maxAttempt": {"type": "integer", "minimum": 1},
        "maxDuration": _DURATION,
        "interval": _DURATION,
        "maxInterval": _DURATION,
        "minInterval": _DURATION,
        "delayFactor": {"type": "number"},
        "warningOnRetry": {"type": "boolean"},
        "behavior": {"enum": ["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"]},
    },
    "required": ["type"],
    "additionalProperties": False,
}
_WORKER_GROUP = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "fallback": {"enum": ["FAIL", "WAIT", "CANCEL"]}},
    "additionalProperties": False,
}
_LOG_LEVEL = {"enum": list(LEVELS)}
_LABELS = {"anyOf": [
    {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
    {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"},
                                                                  "value": {}}}},
]}

#: properties every task has (the flow model validates them, not the plugin's Props)
TASK_COMMON_SCHEMA: dict[str, Any] = {
    "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$", "minLength": 1},
    "description": {"type": "string"},
    "disabled": {"type": "boolean"},
    "retry": _RETRY,
    "timeout": {"anyOf": [_DURATION, {"type": "number"}]},
    "allowFailure": {"type": "boolean"},
    "allowWarning": {"type": "boolean"},
    "runIf": {"type": ["string", "boolean"]},
    "logLevel": _LOG_LEVEL,
    "logToFile": {"type": "boolean"},
    "workerGroup": _WORKER_GROUP,
    "taskCache": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "ttl": _DURATION}},
    "version": {"type": "string"},
}
TRIGGER_COMMON_SCHEMA: dict[str, Any] = {
    "id": TASK_COMMON_SCHEMA["id"],
    "description": {"type": "string"},
    "disabled": {"type": "boolean"},
    "conditions": {"type": "array", "items": {"$ref": "#/definitions/condition"}},
    "labels": _LABELS,
    "stopAfter": {"type": "array", "items": {"type": "string"}},
    "logLevel": _LOG_LEVEL,
    "minLogLevel": _LOG_LEVEL,
    "logToFile": {"type": "boolean"},
    "workerGroup": _WORKER_GROUP,
    "failOnTriggerError": {"type": "boolean"},
    "allowConcurrent": {"type": "boolean"},
    "version": {"type": "string"},
}

_TASKS = {"type": "array", "items": {"$ref": "#/definitions/task"}}
_INPUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"},
        "name": {"type": "string", "deprecated": True, "description": "Replaced by id"},
        "type": {"enum": ["STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL",
                          "DATETIME", "DATE", "TIME", "DURATION", "FILE", "JSON", "YAML", "URI", "SECRET",
                          "ARRAY", "EMAIL"]},
        "description": {"type": "string"},
        "displayName": {"type": "string"},
        "required": {"type": "boolean"},
        "defaults": {},
        "prefill": {},
    },
    # ``name`` is the pre-0.15 spelling of ``id``, still read by the parser
    "anyOf": [{"required": ["id", "type"]}, {"required": ["name", "type"]}],
}
FLOW_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", "maxLength": 100},
    "namespace": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$", "maxLength": 150},
    "revision": {"type": "integer", "minimum": 1},
    "description": {"type": "string"},
    "labels": _LABELS,
    "inputs": {"type": "array", "items": _INPUT},
    "outputs": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "type": {"type": "string"}, "value": {}, "description": {"type": "string"},
        "required": {"type": "boolean"}}, "required": ["id", "type", "value"]}},
    "variables": {"type": "object"},
    "tasks": {**_TASKS, "minItems": 1},
    "errors": _TASKS,
    "finally": _TASKS,
    "afterExecution": _TASKS,
    "triggers": {"type": "array", "items": {"$ref": "#/definitions/trigger"}},
    "pluginDefaults": {"type": "array", "items": {"$ref": "#/definitions/plugindefault"}},
    "taskDefaults": {"type": "array", "items": {"$ref": "#/definitions/plugindefault"}},
    "concurrency": {"type": "object", "properties": {
        "limit": {"type": "integer", "minimum": 1},
        "behavior": {"enum": ["QUEUE", "CANCEL", "FAIL"]}}, "required": ["limit"]},
    "retry": _RETRY,
    "sla": {"type": "array", "items": {"type": "object"}},
    "checks": {"type": "array", "items": {"type": "object", "properties": {
        "condition": {"type": "string"}, "message": {"type": "string"},
        "style": {"enum": ["ERROR", "SUCCESS", "WARNING", "INFO"]},
        "behavior": {"enum": ["BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"]}}}},
    "disabled": {"type": "boolean"},
    "deleted": {"type": "boolean"},
    "tenantId": {"type": ["string", "null"]},
    "updated": {"type": "string"},
    "workerGroup": _WORKER_GROUP,
    "listeners": {"type": "array", "items": {"type": "object", "properties": {
        "description": {"type": "string"},
        "conditions": {"type": "array", "items": {"$ref": "#/definitions/condition"}},
        "tasks": _TASKS}}},
}


def schema_for(kind: str) -> dict[str, Any]:
    """Kestra's ``/plugins/schemas/{type}``: ``flow``, ``task``, ``trigger`` or ``plugindefault``.

    Raises ``ValueError`` for another kind. The answer is a fresh copy: callers may change it.
    """
    kind = kind.lower()
    if kind not in SCHEMA_TYPES:
        raise ValueError(f"Unknown schema type '{kind}', must be one of {', '.join(SCHEMA_TYPES)}")
    return copy.deepcopy(_build(kind))


@lru_cache(maxsize=None)
def _build(kind: str) -> dict[str, Any]:
    definitions = _definitions()
    root = {"flow": "flow", "task": "task", "trigger": "trigger", "plugindefault": "plugindefault"}[kind]
    return {"$schema": DRAFT, "$ref": f"#/definitions/{root}", "definitions": definitions}


def _definitions() -> dict[str, Any]:
    by_kind: dict[str, list[str]] = {"task": [], "trigger": [], "condition": []}
    definitions: dict[str, Any] = {}
    seen: set[type[Plugin]] = set()
    for name, cls in sorted(registered_types().items()):
        if cls in seen and name != cls.type:
            continue
        seen.add(cls)
        group = _group(cls)
        if group is None:
            continue
        for type_name in (cls.type, *cls.aliases):
            definitions[type_name] = _plugin_definition(cls, type_name, group)
            by_kind[group].append(type_name)
    for group, names in by_kind.items():
        definitions[group] = _dispatch(sorted(set(names)))
    definitions["plugindefault"] = {
        "type": "object",
        "properties": {"type": {"type": "string"}, "forced": {"type": "boolean"},
                       "values": {"type": "object"}},
        "required": ["type", "values"],
        "additionalProperties": False,
    }
    definitions["flow"] = {
        "type": "object",
        "properties": FLOW_PROPERTIES,
        "required": ["id", "namespace", "tasks"],
        "additionalProperties": False,
    }
    return definitions


def _dispatch(names: list[str]) -> dict[str, Any]:
    """Choose the definition by the ``type`` constant.

    ``if``/``then`` rather than ``oneOf``: a validator then checks a node against its own type only,
    where ``oneOf`` would validate every nested task against every type (exponential in the depth).
    """
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": names}},
        "allOf": [{"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                   "then": {"$ref": f"#/definitions/{name}"}} for name in names],
    }


def _group(cls: type[Plugin]) -> str | None:
    if cls.kind == TRIGGER:
        return "trigger"
    if cls.kind == CONDITION:
        return "condition"
    if cls.kind in ("runnable", "flowable", "executable", "execution-updatable"):
        return "task"
    return None  # task runners, dashboards: not written at a flow's task or trigger positions


def _plugin_definition(cls: type[Plugin], type_name: str, group: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    local_defs: dict[str, Any] = {}
    if cls.Props is not None:
        model = cls.Props.model_json_schema(by_alias=True, ref_template="#/definitions/" + type_name + "/$defs/{model}")
        local_defs = model.pop("$defs", {})
        props = {name: _dynamic(spec) for name, spec in model.get("properties", {}).items()}
        required = list(model.get("required", []))
    common = TRIGGER_COMMON_SCHEMA if group == "trigger" else ({} if group == "condition" else TASK_COMMON_SCHEMA)
    for name, spec in common.items():
        props.setdefault(name, spec)
    for legacy, current in getattr(cls, "renamed_props", {}).items():
        if current in props:
            props[legacy] = {**props[current], "deprecated": True, "description": f"Replaced by {current}"}
    for name, shape in getattr(cls, "task_fields", {}).items():
        props[name] = _task_field(shape)
    for name, shape in getattr(cls, "condition_fields", {}).items():
        ref = {"$ref": "#/definitions/condition"}
        props[name] = {"type": "object", "additionalProperties": ref} if shape == "map" else {"type": "array", "items": ref}
    props["type"] = {"const": type_name}
    definition: dict[str, Any] = {
        "type": "object",
        "title": cls.__doc__.strip().splitlines()[0] if cls.__doc__ else type_name,
        "properties": props,
        "required": sorted({"type", *(["id"] if group != "condition" else []), *required}
                           | set(getattr(cls, "required_task_fields", ()))),
        "additionalProperties": False,
    }
    if type_name != cls.type:
        definition["deprecated"] = True
        definition["description"] = f"Replaced by {cls.type}"
    if local_defs:
        definition["$defs"] = {key: _dynamic(value) for key, value in local_defs.items()}
    return definition


def _task_field(shape: str) -> dict[str, Any]:
    """The schema of a property holding tasks; an empty (null) branch is accepted as the parser does."""
    ref = {"$ref": "#/definitions/task"}
    if shape == "map":
        return {"type": ["object", "null"], "additionalProperties": {"type": ["array", "null"], "items": ref}}
    if shape == "single":
        return ref
    if shape == "dag":
        return {"type": ["array", "null"], "items": {"type": "object", "properties": {
            "task": ref, "dependsOn": {"type": "array", "items": {"type": "string"}}},
            "required": ["task"]}}
    return {"type": ["array", "null"], "items": ref}


def _dynamic(spec: dict[str, Any]) -> dict[str, Any]:
    """A typed property also accepts an expression text, as Kestra's ``Property<T>`` does.

    Applied down the nested objects and lists too (``batch: {rows: "{{ inputs.n }}"}``).
    """
    spec = dict(spec)
    if isinstance(spec.get("properties"), dict):
        spec["properties"] = {name: _dynamic(value) for name, value in spec["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(spec.get(key), dict):
            spec[key] = _dynamic(spec[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(spec.get(key), list):
            spec[key] = [_dynamic(value) if isinstance(value, dict) else value for value in spec[key]]
    if spec.get("type") == "string" and "enum" not in spec and "const" not in spec:
        return spec
    if "$ref" in spec or "type" in spec or "anyOf" in spec or "enum" in spec or "allOf" in spec:
        extra: dict[str, Any] = {key: spec[key] for key in ("title", "description", "default") if key in spec}
        typed = {key: value for key, value in spec.items() if key not in ("title", "description", "default")}
        return {**extra, "anyOf": [typed, EXPRESSION]}
    return spec
