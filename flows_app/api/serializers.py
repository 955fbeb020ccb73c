"""JSON shapes of the API (spec §8.12, §11.2) and validation of the few JSON request bodies."""
from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from rest_framework import serializers

from orchestrator.engine.timeutil import iso

from .. import models

TENANT = "main"


class LabelSerializer(serializers.Serializer):
    key = serializers.CharField(allow_blank=True)
    value = serializers.CharField(allow_blank=True)


class SecretSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]*$", max_length=256)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(allow_blank=True, allow_null=True, default="")


# --- flows --------------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """YAML may hold dates and timestamps; JSON gets their ISO text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def labels_list(labels: Any) -> list[dict[str, str]]:
    """Flow labels as Kestra serialises them: a list of ``{key, value}``."""
    if isinstance(labels, dict):
        return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in labels.items()]
    if isinstance(labels, list):
        out = []
        for label in labels:
            if isinstance(label, dict) and "key" in label:
                out.append({"key": str(label["key"]), "value": "" if label.get("value") is None else str(label["value"])})
        return out
    return []


def _parsed_json(parsed: Any) -> dict[str, Any] | None:
    for name in ("to_json", "model_dump"):
        method = getattr(parsed, name, None)
        if callable(method):
            try:
                data = method(by_alias=True, exclude_none=True) if name == "model_dump" else method()
            except TypeError:
                data = method()
            if isinstance(data, dict):
                return _jsonable(data)
    return None


def _source_json(source: str) -> dict[str, Any]:
    """The flow document as JSON, read with the flow parser's YAML rules (dates stay text)."""
    from orchestrator.engine.errors import CelestraError
    from orchestrator.engine.yamlload import load

    try:
        data = load(source)
    except (CelestraError, yaml.YAMLError):
        data = None
    return _jsonable(data) if isinstance(data, dict) else {}


def flow_json(source: str, *, revision: int, namespace: str, flow_id: str, deleted: bool = False,
              updated: dt.datetime | None = None, with_source: bool = True, parsed: Any = None) -> dict[str, Any]:
    """``FlowWithSource`` (or ``Flow`` without ``source``): the flow's properties, revision and metadata."""
    data = (_parsed_json(parsed) if parsed is not None else None) or _source_json(source)
    data.pop("source", None)
    data["id"] = data.get("id") or flow_id
    data["namespace"] = data.get("namespace") or namespace
    data["revision"] = revision
    data["labels"] = labels_list(data.get("labels")) if data.get("labels") is not None else None
    if data["labels"] is None:
        data.pop("labels")
    data["disabled"] = bool(data.get("disabled", False))
    data["deleted"] = deleted
    data["tenantId"] = TENANT
    if updated is not None:
        data["updated"] = iso(updated)
    if with_source:
        data["source"] = source
    return data


def flow_row_json(flow: models.Flow, *, with_source: bool = True, parsed: Any = None) -> dict[str, Any]:
    return flow_json(flow.source, revision=flow.revision, namespace=flow.namespace, flow_id=flow.flow_id,
                     deleted=flow.deleted, updated=flow.updated, with_source=with_source, parsed=parsed)


def revision_json(flow: models.Flow, revision: models.FlowRevision, *, with_source: bool = True) -> dict[str, Any]:
    return flow_json(revision.source, revision=revision.revision, namespace=flow.namespace, flow_id=flow.flow_id,
                     deleted=revision.deleted, updated=revision.created, with_source=with_source)


# --- executions ---------------------------------------------------------------------------------------

def execution_url(namespace: str, flow_id: str, execution_id: str) -> str:
    """``kestra.url`` + ``/ui/main/executions/<ns>/<flow>/<id>`` (what Kestra returns as ``url``)."""
    from django.conf import settings

    base = str(settings.CELESTRA.get("URL") or "").rstrip("/")
    return f"{base}/ui/{TENANT}/executions/{namespace}/{flow_id}/{execution_id}"


def with_url(data: dict[str, Any]) -> dict[str, Any]:
    data["url"] = execution_url(data["namespace"], data["flowId"], data["id"])
    return data


def webhook_json(data: dict[str, Any], *, with_outputs: bool = False) -> dict[str, Any]:
    """``WebhookResponse``: the execution's identity, trigger, labels and state (+ outputs once waited for)."""
    out = {key: data.get(key) for key in ("tenantId", "id", "namespace", "flowId", "flowRevision", "trigger")}
    out["outputs"] = data.get("outputs") if with_outputs else None
    out["labels"] = data.get("labels")
    out["state"] = data.get("state")
    out["url"] = execution_url(data["namespace"], data["flowId"], data["id"])
    return out


def paged(results: list[Any], total: int) -> dict[str, Any]:
    return {"results": results, "total": total}
