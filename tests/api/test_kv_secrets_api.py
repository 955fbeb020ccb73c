"""KV store, secrets and namespace files over the API (spec §10.2, §10.4, §10.5, §11.6)."""
from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from secrets_app.models import Secret
from secrets_app.store import get_secret
from storage_app.models import KVEntry, NamespaceFile

BASE = "/api/v1/main/namespaces/company.team"


@pytest.fixture
def client(api_client) -> APIClient:
    return api_client


def put_kv(client: APIClient, key: str, body: str, content_type: str = "application/json", **headers):
    return client.put(f"{BASE}/kv/{key}", data=body, content_type=content_type, headers=headers)


@pytest.mark.django_db
class TestKV:
    @pytest.mark.parametrize("body, kv_type, value", [
        ('"text"', "STRING", "text"),
        ("42", "NUMBER", 42),
        ("4.2", "NUMBER", 4.2),
        ("true", "BOOLEAN", True),
        ('{"a": 1}', "JSON", {"a": 1}),
        ("[1, 2]", "JSON", [1, 2]),
        ("2024-01-02T03:04:05Z", "DATETIME", "2024-01-02T03:04:05Z"),
        ("2024-01-02", "DATE", "2024-01-02"),
        ("PT1H", "DURATION", "PT1H"),
        ("plain text", "STRING", "plain text"),
    ])
    def test_put_infers_the_type(self, client, body, kv_type, value):
        response = put_kv(client, "my-key", body)

        assert response.status_code == 200
        assert client.get(f"{BASE}/kv/my-key").json() == {"type": kv_type, "value": value}

    def test_overwrite_and_list(self, client):
        put_kv(client, "a", "1")
        put_kv(client, "a", "2")
        put_kv(client, "b", '"x"', ttl="PT1H")

        listing = client.get(f"{BASE}/kv").json()

        assert client.get(f"{BASE}/kv/a").json()["value"] == 2
        assert [e["key"] for e in listing] == ["a", "b"]
        assert listing[0]["expirationDate"] is None and listing[1]["expirationDate"] is not None
        assert {"creationDate", "updateDate", "description"} <= set(listing[0])

    def test_missing_key_is_404(self, client):
        response = client.get(f"{BASE}/kv/nope")

        assert response.status_code == 404
        assert "nope" in response.json()["message"]

    def test_expired_key_is_410_and_not_listed(self, client):
        put_kv(client, "old", "1")
        KVEntry.objects.filter(key="old").update(expires=timezone.now() - timedelta(seconds=1))

        assert client.get(f"{BASE}/kv").json() == []
        assert client.get(f"{BASE}/kv/old").status_code == 410

    def test_invalid_key_and_ttl(self, client):
        assert put_kv(client, "-bad", "1").status_code == 422
        assert put_kv(client, "good", "1", ttl="soon").status_code == 400

    def test_delete_answers_whether_it_existed(self, client):
        put_kv(client, "a", "1")

        first = client.delete(f"{BASE}/kv/a")
        second = client.delete(f"{BASE}/kv/a")

        assert first.json() is True
        assert second.json() is False

    def test_bulk_delete(self, client):
        put_kv(client, "a", "1")
        put_kv(client, "b", "1")

        response = client.delete(f"{BASE}/kv", {"keys": ["a", "c"]}, format="json")

        assert response.json() == {"keys": ["a"]}
        assert list(KVEntry.objects.values_list("key", flat=True)) == ["b"]

    def test_namespaces_are_separate(self, client):
        put_kv(client, "a", "1")

        assert client.get("/api/v1/main/namespaces/other/kv/a").status_code == 404


@pytest.mark.django_db
class TestSecrets:
    def test_put_list_never_shows_values(self, client):
        response = client.put(f"{BASE}/secrets", {"key": "API_TOKEN", "value": "s3cr3t", "description": "token"},
                              format="json")

        assert response.status_code == 200
        assert response.json() == [{"key": "API_TOKEN", "description": "token", "tags": []}]
        listing = client.get(f"{BASE}/secrets")
        assert listing.json()["results"] == [{"key": "API_TOKEN", "description": "token", "tags": []}]
        assert listing.json()["total"] == 1
        assert b"s3cr3t" not in listing.content and b"s3cr3t" not in response.content

    def test_value_is_encrypted_at_rest(self, client):
        client.put(f"{BASE}/secrets", {"key": "API_TOKEN", "value": "s3cr3t"}, format="json")

        stored = Secret.objects.get(key="API_TOKEN")
        assert "s3cr3t" not in stored.encrypted_value
        assert get_secret("company.team", "API_TOKEN") == "s3cr3t"
        assert get_secret("company.team.child", "API_TOKEN") == "s3cr3t"

    def test_invalid_body_is_422(self, client):
        response = client.put(f"{BASE}/secrets", {"value": "x"}, format="json")

        assert response.status_code == 422
        assert response.json()["_embedded"]["errors"][0]["path"] == "key"

    def test_delete(self, client):
        client.put(f"{BASE}/secrets", {"key": "API_TOKEN", "value": "x"}, format="json")

        assert client.delete(f"{BASE}/secrets/API_TOKEN").status_code == 204
        assert client.delete(f"{BASE}/secrets/API_TOKEN").status_code == 404
        assert not Secret.objects.exists()


def upload(client: APIClient, path: str, content: bytes, name: str = "file.txt"):
    return client.post(f"{BASE}/files?path={path}", {"fileContent": SimpleUploadedFile(name, content)},
                       format="multipart")


@pytest.mark.django_db
class TestNamespaceFiles:
    def test_upload_and_download(self, client):
        assert upload(client, "/scripts/run.sh", b"echo hi").status_code == 200

        response = client.get(f"{BASE}/files?path=/scripts/run.sh")

        assert response.status_code == 200
        assert response.content == b"echo hi"
        assert NamespaceFile.objects.get().path == "/scripts/run.sh"

    def test_path_without_leading_slash_is_the_same_file(self, client):
        upload(client, "a.sql", b"1")
        upload(client, "/a.sql", b"2")

        assert client.get(f"{BASE}/files?path=a.sql").content == b"2"

    def test_missing_file_is_404(self, client):
        assert client.get(f"{BASE}/files?path=/nope").status_code == 404

    def test_path_traversal_is_refused(self, client):
        assert upload(client, "/../etc/passwd", b"x").status_code == 422

    def test_directory_listing(self, client):
        upload(client, "/a.sql", b"123")
        upload(client, "/dir/b.sql", b"1")
        upload(client, "/dir/sub/c.sql", b"1")

        root = client.get(f"{BASE}/files/directory").json()
        sub = client.get(f"{BASE}/files/directory?path=/dir").json()

        assert [(e["fileName"], e["type"]) for e in root] == [("a.sql", "File"), ("dir", "Directory")]
        assert root[0]["size"] == 3
        assert [(e["fileName"], e["type"]) for e in sub] == [("b.sql", "File"), ("sub", "Directory")]
        assert client.get(f"{BASE}/files/directory?path=/missing").status_code == 404

    def test_stats_search_move(self, client):
        upload(client, "/dir/b.sql", b"12")

        stats = client.get(f"{BASE}/files/stats?path=/dir/b.sql").json()
        found = client.get(f"{BASE}/files/search?q=b.s").json()
        moved = client.put(f"{BASE}/files?from=/dir&to=/other")

        assert stats["type"] == "File" and stats["size"] == 2
        assert found == ["/dir/b.sql"]
        assert moved.status_code == 200
        assert client.get(f"{BASE}/files?path=/other/b.sql").content == b"12"

    def test_delete_file_and_directory(self, client):
        upload(client, "/a.sql", b"1")
        upload(client, "/dir/b.sql", b"1")
        upload(client, "/dir/c.sql", b"1")

        assert client.delete(f"{BASE}/files?path=/a.sql").status_code == 204
        assert client.delete(f"{BASE}/files?path=/dir").status_code == 204
        assert not NamespaceFile.objects.exists()
        assert client.delete(f"{BASE}/files?path=/dir").status_code == 404

    def test_zip_uploaded_to_the_root_is_extracted(self, client):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.sql", "1")
            archive.writestr("dir/b.sql", "2")

        response = upload(client, "/", buffer.getvalue(), name="files.zip")

        assert response.status_code == 200
        assert sorted(NamespaceFile.objects.values_list("path", flat=True)) == ["/a.sql", "/dir/b.sql"]

    def test_upload_without_file_is_400(self, client):
        response = client.post(f"{BASE}/files?path=/a.sql", {}, format="multipart")

        assert response.status_code == 400
