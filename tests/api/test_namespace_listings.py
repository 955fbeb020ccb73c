"""Listings across namespaces: every KV key, inherited KV keys and secrets, the namespace export ZIP."""
from __future__ import annotations

import io
import zipfile

import pytest

from flows_app.services import deploy_flow
from secrets_app.store import set_secret
from storage_app.api_listings import parents
from storage_app.models import KVEntry, NamespaceFile

BASE = "/api/v1/main"


def kv(namespace: str, key: str, value="v") -> None:
    KVEntry.objects.create(namespace=namespace, key=key, value=value, type="STRING")


def test_parents_are_nearest_first():
    assert parents("a.b.c") == ["a.b", "a"]
    assert parents("a") == []


@pytest.mark.django_db
def test_all_keys_are_paged_and_filtered(client):
    kv("company", "shared")
    kv("company.team", "own")
    kv("other", "elsewhere")

    everything = client.get(f"{BASE}/kv?size=2").json()
    by_namespace = client.get(f"{BASE}/kv?filters[namespace][STARTS_WITH]=company").json()

    assert everything["total"] == 3 and len(everything["results"]) == 2
    assert [(e["namespace"], e["key"]) for e in by_namespace["results"]] == [("company", "shared"),
                                                                             ("company.team", "own")]


@pytest.mark.django_db
def test_inherited_keys_come_from_the_parents_nearest_first(client):
    kv("company", "shared", "far")
    kv("company", "top")
    kv("company.team", "shared", "near")
    kv("company.team.sub", "own")

    body = client.get(f"{BASE}/namespaces/company.team.sub/kv/inheritance").json()

    assert [(e["namespace"], e["key"]) for e in body] == [("company.team", "shared"), ("company", "top")]


@pytest.mark.django_db
def test_inherited_secrets_list_keys_by_namespace(client):
    set_secret("company", "TOKEN", "t0p")
    set_secret("company.team", "DB", "pw")

    body = client.get(f"{BASE}/namespaces/company.team/inherited-secrets").json()

    assert body == {"company.team": ["DB"], "company": ["TOKEN"]}
    assert "t0p" not in str(body)


@pytest.mark.django_db
def test_namespace_export_holds_files_and_flows(client):
    NamespaceFile.objects.create(namespace="company.team", path="/scripts/run.py", content=b"print(1)")
    deploy_flow("id: hello\nnamespace: company.team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
                "    message: hi\n")

    answer = client.get(f"{BASE}/namespaces/company.team/files/export")

    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sorted(archive.namelist()) == ["_flows/hello.yml", "scripts/run.py"]
    assert archive.read("scripts/run.py") == b"print(1)"
