"""Internal storage on S3 (``CELESTRA_STORAGE=s3``): kestra:// files in a bucket of a local S3 server."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Iterator

import pytest
from django.test import override_settings

from tests.plugins.test_s3 import boto, s3_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


def s3_storages(endpoint: str, bucket: str) -> dict:
    return {"default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                "bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1", "access_key": "test",
                "secret_key": "test", "addressing_style": "path", "location": "celestra", "file_overwrite": True,
                "querystring_auth": False}},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.mark.django_db
def test_platform_files_live_in_the_bucket(endpoint: str) -> None:
    from orchestrator.runtime.platform import Platform
    from storage_app import storage

    bucket = "internal-" + uuid.uuid4().hex[:8]
    s3 = boto(endpoint)
    s3.create_bucket(Bucket=bucket)
    with override_settings(STORAGES=s3_storages(endpoint, bucket)):
        platform = Platform("company.team", "flow", "exec1", "task", "run1")
        uri = platform.put_file(b"id,name\n1,a\n", extension=".csv")
        key = "celestra/" + platform.path_of(uri)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"id,name\n1,a\n"
        assert platform.read_file(uri) == b"id,name\n1,a\n"
        assert platform.file_exists(uri)
        assert platform.execution_files() == [uri]
        assert storage.get(uri) == b"id,name\n1,a\n"
        platform.put_at(uri, b"changed")  # overwriting keeps the same key
        assert storage.get(uri) == b"changed"
        assert platform.purge_execution_files() == [uri]
        assert "Contents" not in s3.list_objects(Bucket=bucket, Prefix="celestra/")
        with pytest.raises(Exception, match="File not found"):
            platform.read_file(uri)


def test_settings_select_the_s3_backend(endpoint: str) -> None:
    bucket = "settings-" + uuid.uuid4().hex[:8]
    boto(endpoint).create_bucket(Bucket=bucket)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "orchestrator.settings", "CELESTRA_STORAGE": "s3",
           "CELESTRA_S3_BUCKET": bucket, "CELESTRA_S3_ENDPOINT": endpoint, "CELESTRA_S3_REGION": "us-east-1",
           "CELESTRA_S3_ACCESS_KEY": "test", "CELESTRA_S3_SECRET_KEY": "test", "CELESTRA_S3_PATH_STYLE": "true"}
    script = ("import django; django.setup()\n"
              "from storage_app.storage import put, get\n"
              "uri = put('a/b/flow/executions/e1/x.txt', b'on s3')\n"
              "print(uri, get(uri).decode())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["kestra:///a/b/flow/executions/e1/x.txt", "on", "s3"]
    assert boto(endpoint).get_object(Bucket=bucket, Key="a/b/flow/executions/e1/x.txt")["Body"].read() == b"on s3"
