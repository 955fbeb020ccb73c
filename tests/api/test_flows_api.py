"""Flows API: create, read, update, delete, revisions, search, validate, namespace updates (spec §11.2)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

BASE = "/api/v1/main"

HELLO = """id: hello
namespace: company.team
description: Say hello
labels:
  team: data
  env: prod
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hello
"""

OTHER = """id: other
namespace: company.team.sub
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: other
"""

INVALID = """id: broken
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.DoesNotExist
"""


@pytest.fixture
def client(api_client) -> APIClient:
    return api_client


def create(client: APIClient, source: str, base: str = BASE):
    return client.post(f"{base}/flows", data=source, content_type="application/x-yaml")


def update(client: APIClient, namespace: str, flow_id: str, source: str):
    return client.put(f"{BASE}/flows/{namespace}/{flow_id}", data=source, content_type="application/x-yaml")


@pytest.mark.django_db
class TestCreate:
    def test_create_returns_the_flow_with_its_source(self, client):
        response = create(client, HELLO)

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == "hello"
        assert body["namespace"] == "company.team"
        assert body["revision"] == 1
        assert body["source"] == HELLO
        assert body["deleted"] is False
        assert body["tenantId"] == "main"
        assert {"key": "team", "value": "data"} in body["labels"]

    def test_creating_an_existing_flow_is_refused(self, client):
        create(client, HELLO)

        response = create(client, HELLO)

        assert response.status_code == 422
        assert "Flow id already exists" in response.json()["message"]

    def test_an_invalid_flow_is_refused_with_its_errors(self, client):
        response = create(client, INVALID)

        assert response.status_code == 422
        body = response.json()
        assert body["message"].startswith("Invalid entity: ")
        errors = body["_embedded"]["errors"]
        assert errors and all("path" in e and "message" in e for e in errors)
        assert any("tasks[0]" in e["path"] for e in errors)
        assert "Traceback" not in response.content.decode()

    def test_malformed_yaml_is_a_json_error(self, client):
        response = create(client, "id: [unclosed\n")

        assert response.status_code == 422
        assert response.json()["message"].startswith("Invalid entity")

    def test_empty_body(self, client):
        response = create(client, "")

        assert response.status_code == 422

    def test_tenantless_path(self, client):
        response = create(client, HELLO, base="/api/v1")

        assert response.status_code == 200
        assert client.get("/api/v1/flows/company.team/hello").status_code == 200

    def test_a_deleted_flow_can_be_created_again_and_keeps_its_revision_numbers(self, client):
        create(client, HELLO)
        client.delete(f"{BASE}/flows/company.team/hello")

        response = create(client, HELLO)

        assert response.status_code == 200
        assert response.json()["revision"] == 3


@pytest.mark.django_db
class TestReadUpdateDelete:
    def test_get_without_and_with_source(self, client):
        create(client, HELLO)

        plain = client.get(f"{BASE}/flows/company.team/hello").json()
        with_source = client.get(f"{BASE}/flows/company.team/hello?source=true").json()

        assert "source" not in plain
        assert plain["tasks"][0]["id"] == "log"
        assert with_source["source"] == HELLO

    def test_get_unknown_flow_is_404(self, client):
        response = client.get(f"{BASE}/flows/nope/nothing")

        assert response.status_code == 404
        assert response.json()["message"].startswith("Not Found")

    def test_update_creates_a_revision_only_when_the_source_changes(self, client):
        create(client, HELLO)

        changed = update(client, "company.team", "hello", HELLO.replace("message: hello", "message: bonjour"))
        unchanged = update(client, "company.team", "hello", HELLO.replace("message: hello", "message: bonjour"))

        assert changed.status_code == 200
        assert changed.json()["revision"] == 2
        assert unchanged.json()["revision"] == 2
        first = client.get(f"{BASE}/flows/company.team/hello?revision=1&source=true").json()
        assert first["revision"] == 1 and first["source"] == HELLO

    def test_update_with_another_id_is_illegal(self, client):
        create(client, HELLO)

        response = update(client, "company.team", "hello", HELLO.replace("id: hello", "id: renamed"))

        assert response.status_code == 422
        assert "Illegal flow id update" in response.json()["message"]

    def test_update_of_an_unknown_flow_is_404(self, client):
        response = update(client, "company.team", "hello", HELLO)

        assert response.status_code == 404

    def test_update_with_an_invalid_source_is_422(self, client):
        create(client, HELLO)

        response = update(client, "company.team", "hello", HELLO.replace("core.log.Log", "core.log.Nope"))

        assert response.status_code == 422
        assert response.json()["_embedded"]["errors"]

    def test_delete_is_a_soft_delete_with_a_revision(self, client):
        create(client, HELLO)

        response = client.delete(f"{BASE}/flows/company.team/hello")

        assert response.status_code == 204
        assert client.get(f"{BASE}/flows/company.team/hello").status_code == 404
        assert client.get(f"{BASE}/flows/company.team/hello?allowDeleted=true").json()["deleted"] is True
        revisions = client.get(f"{BASE}/flows/company.team/hello/revisions").json()
        assert [(r["revision"], r["deleted"]) for r in revisions] == [(1, False), (2, True)]
        assert client.delete(f"{BASE}/flows/company.team/hello").status_code == 404

    def test_revisions_carry_their_source(self, client):
        create(client, HELLO)
        update(client, "company.team", "hello", HELLO + "# a comment\n")

        revisions = client.get(f"{BASE}/flows/company.team/hello/revisions").json()

        assert [r["revision"] for r in revisions] == [1, 2]
        assert revisions[1]["source"].endswith("# a comment\n")


@pytest.mark.django_db
class TestListAndSearch:
    def test_flows_of_a_namespace(self, client):
        create(client, HELLO)
        create(client, OTHER)

        body = client.get(f"{BASE}/flows/company.team").json()

        assert [f["id"] for f in body] == ["hello"]

    def test_search_by_namespace_prefix_query_and_labels(self, client):
        create(client, HELLO)
        create(client, OTHER)

        by_prefix = client.get(f"{BASE}/flows/search?namespace=company.team").json()
        by_q = client.get(f"{BASE}/flows/search?q=oth").json()
        by_label = client.get(f"{BASE}/flows/search?labels=team:data").json()
        by_filter = client.get(f"{BASE}/flows/search?filters[namespace][EQUALS]=company.team.sub").json()

        assert by_prefix["total"] == 2
        assert [f["id"] for f in by_q["results"]] == ["other"]
        assert [f["id"] for f in by_label["results"]] == ["hello"]
        assert [f["id"] for f in by_filter["results"]] == ["other"]

    def test_search_pages(self, client):
        create(client, HELLO)
        create(client, OTHER)

        body = client.get(f"{BASE}/flows/search?size=1&page=2&sort=id:asc").json()

        assert body["total"] == 2
        assert [f["id"] for f in body["results"]] == ["other"]

    def test_search_with_a_bad_page_is_400(self, client):
        assert client.get(f"{BASE}/flows/search?page=abc").status_code == 400

    def test_distinct_namespaces(self, client):
        create(client, HELLO)
        create(client, OTHER)

        assert client.get(f"{BASE}/flows/distinct-namespaces").json() == ["company.team", "company.team.sub"]


@pytest.mark.django_db
class TestValidate:
    def test_one_report_per_document(self, client):
        body = HELLO + "---\n" + INVALID

        response = client.post(f"{BASE}/flows/validate", data=body, content_type="application/x-yaml")

        assert response.status_code == 200
        first, second = response.json()
        assert first["index"] == 0 and first["flow"] == "hello" and first["constraints"] is None
        assert second["index"] == 1 and second["flow"] == "broken" and second["namespace"] == "company.team"
        assert "Invalid type" in second["constraints"]
        assert {"deprecationPaths", "warnings", "outdated"} <= set(first)

    def test_outdated_when_the_stored_revision_is_newer(self, client):
        create(client, HELLO)
        update(client, "company.team", "hello", HELLO + "# v2\n")

        response = client.post(f"{BASE}/flows/validate", data="revision: 1\n" + HELLO,
                               content_type="application/x-yaml")

        assert response.json()[0]["outdated"] is True

    def test_outdated_unless_the_sent_revision_is_the_next_one(self, client):
        def outdated(revision: int) -> bool:
            response = client.post(f"{BASE}/flows/validate", data=f"revision: {revision}\n" + HELLO,
                                   content_type="application/x-yaml")
            return response.json()[0]["outdated"]

        assert outdated(1) is False  # no flow yet: revision 1 is the next one
        create(client, HELLO)
        assert outdated(1) is True  # the same revision as the stored one (Kestra's validate test)
        assert outdated(2) is False
        assert outdated(3) is True


@pytest.mark.django_db
class TestNamespaceUpdate:
    def test_replaces_the_flows_of_the_namespace(self, client):
        create(client, HELLO)
        second = HELLO.replace("id: hello", "id: second")

        response = client.post(f"{BASE}/flows/company.team", data=second, content_type="application/x-yaml")

        assert response.status_code == 200
        assert [f["id"] for f in response.json()] == ["second"]
        assert client.get(f"{BASE}/flows/company.team/hello").status_code == 404

    def test_keeps_others_without_delete(self, client):
        create(client, HELLO)
        second = HELLO.replace("id: hello", "id: second")

        client.post(f"{BASE}/flows/company.team?delete=false", data=second, content_type="application/x-yaml")

        assert client.get(f"{BASE}/flows/company.team/hello").status_code == 200

    def test_refuses_a_flow_of_another_namespace(self, client):
        response = client.post(f"{BASE}/flows/company.team", data=OTHER, content_type="application/x-yaml")

        assert response.status_code == 422
        assert "namespace" in response.json()["message"]

    def test_all_or_nothing(self, client):
        body = HELLO + "---\n" + INVALID

        response = client.post(f"{BASE}/flows/company.team", data=body, content_type="application/x-yaml")

        assert response.status_code == 422
        assert client.get(f"{BASE}/flows/company.team/hello").status_code == 404


@pytest.mark.django_db
class TestMisc:
    def test_unknown_route_is_a_json_404(self, client):
        response = client.get("/api/v1/main/nothing/here")

        assert response.status_code == 404
        assert "message" in response.json()

    def test_configs(self, client):
        body = client.get("/api/v1/configs").json()

        assert {"uuid", "version", "url", "isBasicAuthEnabled"} <= set(body)

    def test_plugins_list_core_types(self, client):
        body = client.get("/api/v1/plugins").json()

        tasks = {t for group in body for t in group["tasks"]}
        assert "io.kestra.plugin.core.log.Log" in tasks


@pytest.mark.django_db
class TestAdmin:
    @pytest.fixture
    def admin(self, client, django_user_model):
        from django.test import Client

        user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
        browser = Client()
        browser.force_login(user)
        return browser

    def test_add_flow_goes_through_deploy(self, admin):
        from flows_app.models import Flow

        response = admin.post("/admin/flows_app/flow/add/", {"source": HELLO})

        assert response.status_code == 302, response.content.decode()[:2000]
        flow = Flow.objects.get(namespace="company.team", flow_id="hello")
        assert flow.revision == 1 and flow.revisions.count() == 1
        assert flow.labels == {"team": "data", "env": "prod"}

    def test_invalid_source_shows_path_and_line(self, admin):
        response = admin.post("/admin/flows_app/flow/add/", {"source": INVALID})

        assert response.status_code == 200
        text = response.content.decode()
        assert "tasks[0].type" in text and "line 5" in text

    def test_change_creates_a_revision_and_refuses_a_new_id(self, admin):
        from flows_app.models import Flow

        admin.post("/admin/flows_app/flow/add/", {"source": HELLO})
        flow = Flow.objects.get()
        url = f"/admin/flows_app/flow/{flow.pk}/change/"

        def form(source):
            revisions = list(flow.revisions.order_by("-revision"))
            data = {"source": source, "revisions-TOTAL_FORMS": len(revisions),
                    "revisions-INITIAL_FORMS": len(revisions), "revisions-MIN_NUM_FORMS": 0,
                    "revisions-MAX_NUM_FORMS": 1000}
            for index, revision in enumerate(revisions):
                data[f"revisions-{index}-id"] = revision.pk
                data[f"revisions-{index}-flow"] = flow.pk
            return data

        changed = admin.post(url, form(HELLO + "# v2\n"))
        renamed = admin.post(url, form(HELLO.replace("id: hello", "id: other")))

        assert changed.status_code == 302
        assert Flow.objects.get().revision == 2
        assert renamed.status_code == 200 and "Illegal flow id update" in renamed.content.decode()

    def test_execute_action_creates_an_execution(self, admin):
        from flows_app.models import Execution, Flow

        admin.post("/admin/flows_app/flow/add/", {"source": HELLO})
        flow = Flow.objects.get()

        response = admin.post("/admin/flows_app/flow/", {"action": "execute", "_selected_action": [flow.pk]},
                              follow=True)

        execution = Execution.objects.get()
        assert execution.id in response.content.decode()

    def test_secret_admin_encrypts_and_never_shows_the_value(self, admin):
        from secrets_app.models import Secret
        from secrets_app.store import get_secret

        response = admin.post("/admin/secrets_app/secret/add/",
                              {"namespace": "company", "key": "TOKEN", "value": "s3cr3t", "description": ""})
        secret = Secret.objects.get()
        page = admin.get(f"/admin/secrets_app/secret/{secret.pk}/change/").content.decode()
        kept = admin.post(f"/admin/secrets_app/secret/{secret.pk}/change/",
                          {"namespace": "company", "key": "TOKEN", "value": "", "description": "d"})

        assert response.status_code == 302
        assert get_secret("company", "TOKEN") == "s3cr3t"
        assert "s3cr3t" not in page and secret.encrypted_value not in page
        assert kept.status_code == 302 and get_secret("company", "TOKEN") == "s3cr3t"

    @pytest.mark.parametrize("url", [
        "/admin/flows_app/execution/", "/admin/flows_app/taskrun/", "/admin/flows_app/logentry/",
        "/admin/flows_app/metricentry/", "/admin/flows_app/namespace/", "/admin/flows_app/flowrevision/",
        "/admin/flows_app/flowlabel/", "/admin/storage_app/kventry/", "/admin/storage_app/namespacefile/",
        "/admin/secrets_app/secret/", "/admin/storage_app/kventry/add/", "/admin/storage_app/namespacefile/add/",
    ])
    def test_pages_load(self, admin, url):
        assert admin.get(url).status_code == 200

    def test_execution_page_is_read_only_with_task_runs(self, admin):
        from flows_app.models import Execution, Flow

        admin.post("/admin/flows_app/flow/add/", {"source": HELLO})
        admin.post("/admin/flows_app/flow/", {"action": "execute", "_selected_action": [Flow.objects.get().pk]})
        execution = Execution.objects.get()

        page = admin.get(f"/admin/flows_app/execution/{execution.pk}/change/")

        assert page.status_code == 200
        assert "CREATED" in page.content.decode()
