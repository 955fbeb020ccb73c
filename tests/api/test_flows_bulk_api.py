"""Kestra's bulk flow routes: export and import (ZIP, multi-document YAML), delete, enable, disable."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from flows_app import models
from flows_app.api.views.flows_bulk import inject_disabled
from flows_app.services import deploy_flow

BASE = "/api/v1/main/flows"


def source(flow_id: str, namespace: str = "company.bulk") -> str:
    return f"""# kept comment
id: {flow_id}
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def send(client, method: str, path: str, body):
    return getattr(client, method)(f"{BASE}/{path}", data=json.dumps(body), content_type="application/json")


def test_inject_disabled_rewrites_the_top_level_key_only():
    nested = "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: t\n    disabled: false\n"
    assert inject_disabled(nested, True).endswith("    disabled: false\ndisabled: true\n")
    assert inject_disabled("id: f\ndisabled: false\nnamespace: n\n", True) == "id: f\ndisabled: true\nnamespace: n\n"
    assert inject_disabled("id: f\ndisabled: true\n", False) == "id: f\ndisabled: false\n"


@pytest.mark.django_db
def test_export_by_ids_then_import_round_trips(client):
    deploy_flow(source("a"))
    deploy_flow(source("b"))
    exported = send(client, "post", "export/by-ids", [{"namespace": "company.bulk", "id": "a"},
                                                      {"namespace": "company.bulk", "id": "b"}])
    assert exported.status_code == 200
    assert exported["Content-Disposition"] == 'attachment; filename="flows.zip"'
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    assert sorted(archive.namelist()) == ["company.bulk.a.yaml", "company.bulk.b.yaml"]
    assert archive.read("company.bulk.a.yaml").decode() == source("a")

    models.Flow.objects.all().delete()
    upload = SimpleUploadedFile("flows.zip", exported.content, content_type="application/zip")
    imported = client.post(f"{BASE}/import", {"fileUpload": upload})
    assert imported.status_code == 200, imported.content
    assert imported.json() == []
    assert sorted(models.Flow.objects.values_list("flow_id", flat=True)) == ["a", "b"]
    # the route is not a namespace called "import"
    assert not models.Flow.objects.filter(namespace="import").exists()


@pytest.mark.django_db
def test_import_of_a_multi_document_yaml_names_the_invalid_ones(client):
    text = source("good") + "---\nid: bad\nnamespace: company.bulk\ntasks: []\n"
    upload = SimpleUploadedFile("flows.yml", text.encode(), content_type="application/x-yaml")
    answer = client.post(f"{BASE}/import", {"fileUpload": upload})
    assert answer.json() == ["flows.yml(flow number: 1)"]
    assert models.Flow.objects.filter(flow_id="good").exists()

    again = SimpleUploadedFile("flows.yml", text.encode(), content_type="application/x-yaml")
    failing = client.post(f"{BASE}/import?failOnError=true", {"fileUpload": again})
    assert failing.status_code == 400
    assert "Following invalid flows were not imported: flows.yml(flow number: 1)" in failing.json()["message"]
    wrong_kind = client.post(f"{BASE}/import", {"fileUpload": SimpleUploadedFile("flows.txt", b"x")})
    assert wrong_kind.status_code == 400


@pytest.mark.django_db
def test_export_by_query_selects_by_the_search_filters(client):
    deploy_flow(source("a"))
    deploy_flow(source("z", namespace="other"))
    exported = client.get(f"{BASE}/export/by-query?filters[namespace][EQUALS]=company.bulk")
    assert zipfile.ZipFile(io.BytesIO(exported.content)).namelist() == ["company.bulk-a.yml"]


@pytest.mark.django_db
def test_disable_enable_and_delete_by_ids(client):
    deploy_flow(source("a"))
    deploy_flow(source("b"))
    ids = [{"namespace": "company.bulk", "id": "a"}, {"namespace": "company.bulk", "id": "b"}]

    assert send(client, "post", "disable/by-ids", ids).json() == {"count": 2}
    flow = models.Flow.objects.get(flow_id="a")
    assert flow.disabled and flow.revision == 2
    assert flow.source.startswith("# kept comment") and flow.source.rstrip().endswith("disabled: true")
    assert send(client, "post", "disable/by-ids", ids).json() == {"count": 0}  # already disabled
    assert send(client, "post", "enable/by-ids", ids[:1]).json() == {"count": 1}
    assert not models.Flow.objects.get(flow_id="a").disabled

    missing = send(client, "delete", "delete/by-ids", [*ids, {"namespace": "company.bulk", "id": "nope"}])
    assert missing.status_code == 404
    assert models.Flow.objects.filter(deleted=False).count() == 2
    assert send(client, "delete", "delete/by-ids", ids).json() == {"count": 2}
    assert models.Flow.objects.filter(deleted=False).count() == 0


@pytest.mark.django_db
def test_disable_by_query(client):
    deploy_flow(source("a"))
    deploy_flow(source("z", namespace="other"))
    answer = client.post(f"{BASE}/disable/by-query?filters[namespace][EQUALS]=other")
    assert answer.json() == {"count": 1}
    assert models.Flow.objects.get(flow_id="z").disabled
    assert not models.Flow.objects.get(flow_id="a").disabled
