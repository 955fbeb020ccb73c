"""Users holding one role each on ``company.team``, and a flow with an execution to act on."""
from __future__ import annotations

import pytest

from accounts_app.models import ROLES, NamespaceRole

NS = "company.team"
BASE = "/api/v1/main"
FLOW = f"""
id: hello
namespace: {NS}
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
"""


@pytest.fixture
def users(django_user_model, db):
    """role name → user holding that role on ``company.team``; ``nobody`` holds none, ``outsider``
    is an admin of ``company.other``."""
    out = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(f"u-{role}")
        NamespaceRole.objects.create(user=user, role=role, namespace=NS)
        out[role] = user
    out["nobody"] = django_user_model.objects.create_user("u-nobody")
    outsider = django_user_model.objects.create_user("u-outsider")
    NamespaceRole.objects.create(user=outsider, role="admin", namespace="company.other")
    out["outsider"] = outsider
    return out


@pytest.fixture
def world(db):
    """A deployed flow with one (never started) execution, a KV entry, a secret, a namespace file."""
    from flows_app.services import create_execution, deploy_flow
    from orchestrator.runtime.flows import clear_cache
    from secrets_app.store import set_secret
    from storage_app.models import KVEntry, NamespaceFile

    clear_cache()
    deploy_flow(FLOW)
    execution = create_execution(NS, "hello", {})
    KVEntry.objects.create(namespace=NS, key="k", value="v")
    set_secret(NS, "API_KEY", "s3cr3t-value")
    NamespaceFile.objects.create(namespace=NS, path="/a.txt", content=b"hello")
    return {"execution": execution.id}


def as_user(user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(user)
    return api
