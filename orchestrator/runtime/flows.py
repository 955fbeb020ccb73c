"""Parsed flows, cached per revision: the executor and workers never re-parse YAML per step."""
from __future__ import annotations

import functools
import threading

from django.conf import settings

from flows_app import models
from orchestrator.engine.errors import FlowNotFound
from orchestrator.engine.flow import Flow, parse_flow

_lock = threading.Lock()


def parse(source: str) -> Flow:
    from orchestrator.engine.foreachitem import expand

    return expand(parse_flow(source, global_defaults=settings.CELESTRA.get("PLUGIN_DEFAULTS") or None))


@functools.lru_cache(maxsize=512)
def _cached(namespace: str, flow_id: str, revision: int) -> Flow:
    row = (models.FlowRevision.objects.filter(flow__namespace=namespace, flow__flow_id=flow_id, revision=revision)
           .only("source").first())
    if row is None:
        raise FlowNotFound(f"Unable to find flow '{namespace}'.'{flow_id}' with revision '{revision}'")
    flow = parse(row.source)
    flow.revision = revision
    return flow


def get_flow(namespace: str, flow_id: str, revision: int) -> Flow:
    return _cached(namespace, flow_id, revision)


def clear_cache() -> None:
    _cached.cache_clear()
