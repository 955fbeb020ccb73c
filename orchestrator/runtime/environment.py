"""The expression environment: renderer, globals, envs, kestra variables and services."""
from __future__ import annotations

import functools
import os
from typing import Any

from django.conf import settings

from orchestrator.engine import expressions
from orchestrator.engine.executor import Environment


@functools.lru_cache(maxsize=1)
def static_extras() -> dict[str, Any]:
    conf = settings.CELESTRA
    return {
        "globals": conf.get("GLOBALS") or {},
        "envs": expressions.build_envs(os.environ, conf.get("ENV_VARS_PREFIX") or "ENV_"),
        "kestra": {"environment": conf.get("ENVIRONMENT") or None, "url": conf.get("URL")},
    }


def extras(namespace: str) -> dict[str, Any]:
    from .services import Services

    out = dict(static_extras())
    out["__services__"] = Services(namespace)
    return out


def engine_environment(namespace: str) -> Environment:
    return Environment(render=expressions.render, extras=extras(namespace), is_truthy=expressions.is_truthy)
