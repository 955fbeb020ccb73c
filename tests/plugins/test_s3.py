"""``io.kestra.plugin.aws.s3`` against a local S3-compatible server (moto's server mode, a subprocess on a
free port of its own): nothing leaves the machine."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.flow import FlowValidationError, parse_flow
from orchestrator.engine.memory_platform import MemoryPlatform
from tests.plugins.test_storage_kv_plugins import NS, Ctx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on a free port; yields its endpoint URL."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start within 30 s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


def boto(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


@pytest.fixture()
def bucket(endpoint: str) -> str:
    name = "b-" + uuid.uuid4().hex[:12]
    boto(endpoint).create_bucket(Bucket=name)
    return name


def conn(endpoint: str) -> str:
    """Connection properties, the keys read through secret() as a flow would."""
    return (f"    endpointOverride: {endpoint}\n    region: us-east-1\n"
            "    accessKeyId: \"{{ secret('AWS_ACCESS_KEY_ID') }}\"\n"
            "    secretKeyId: \"{{ secret('AWS_SECRET_KEY_ID') }}\"\n")


class Secrets:
    """The ``secret()`` service of the expression engine, reading a memory platform's secrets."""

    def __init__(self, platform: MemoryPlatform):
        self.platform = platform

    def secret(self, key: str, namespace: str | None = None, subkey: str | None = None) -> str:
        return self.platform.secret(key, namespace)


class SecretCtx(Ctx):
    """A run context whose secret() reads the memory platform's secrets."""

    def __init__(self) -> None:
        platform = MemoryPlatform(NS, "flow", "exec1", "task", "run1",
                                  secrets={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_KEY_ID": "test"})
        super().__init__(platform, __services__=Secrets(platform))


def run(body: str, ctx: Ctx) -> Any:
    parsed = parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n" + body).tasks[0]
    return parsed.plugin(parsed).run(ctx)


def test_upload_list_download_copy_delete(endpoint: str, bucket: str) -> None:
    ctx = SecretCtx()
    first = ctx.platform.put_file(b"a,b\n1,2\n", extension=".csv")
    second = ctx.platform.put_file(b"hello", extension=".txt")
    out = run(f"    type: io.kestra.plugin.aws.s3.Upload\n{conn(endpoint)}    bucket: {bucket}\n"
              f"    from: '{first}'\n    key: data/one.csv\n    contentType: text/csv\n"
              "    metadata:\n      team: data\n", ctx)
    assert out["bucket"] == bucket and out["key"] == "data/one.csv" and out["eTag"]
    out = run(f"    type: io.kestra.plugin.aws.s3.Upload\n{conn(endpoint)}    bucket: {bucket}\n"
              f"    from: [\"{first}\", \"{second}\"]\n    key: many/\n", ctx)
    keys = sorted(o["Key"] for o in boto(endpoint).list_objects(Bucket=bucket)["Contents"])
    assert keys == sorted(["data/one.csv", "many/" + first.rsplit("/", 1)[-1], "many/" + second.rsplit("/", 1)[-1]])

    listed = run(f"    type: io.kestra.plugin.aws.s3.List\n{conn(endpoint)}    bucket: {bucket}\n    prefix: many/\n"
                 "    regexp: .*\\.txt\n", ctx)
    assert [o["key"] for o in listed["objects"]] == ["many/" + second.rsplit("/", 1)[-1]]
    assert listed["objects"][0]["size"] == 5 and listed["objects"][0]["lastModified"].endswith("Z")

    got = run(f"    type: io.kestra.plugin.aws.s3.Download\n{conn(endpoint)}    bucket: {bucket}\n"
              "    key: data/one.csv\n", ctx)
    assert got["uri"].endswith(".csv") and ctx.platform.read_file(got["uri"]) == b"a,b\n1,2\n"
    assert got["contentType"] == "text/csv" and got["metadata"] == {"team": "data"} and got["contentLength"] == 8

    copied = run(f"    type: io.kestra.plugin.aws.s3.Copy\n{conn(endpoint)}    from:\n      bucket: {bucket}\n"
                 "      key: data/one.csv\n    to:\n      key: archive/one.csv\n    delete: true\n", ctx)
    assert copied == {"bucket": bucket, "key": "archive/one.csv", "eTag": copied["eTag"]}
    keys = {o["Key"] for o in boto(endpoint).list_objects(Bucket=bucket)["Contents"]}
    assert "archive/one.csv" in keys and "data/one.csv" not in keys

    run(f"    type: io.kestra.plugin.aws.s3.Delete\n{conn(endpoint)}    bucket: {bucket}\n    key: archive/one.csv\n",
        ctx)
    deleted = run(f"    type: io.kestra.plugin.aws.s3.DeleteList\n{conn(endpoint)}    bucket: {bucket}\n"
                  "    prefix: many/\n", ctx)
    assert deleted["count"] == 2 and deleted["size"] == 8 + 5
    assert "Contents" not in boto(endpoint).list_objects(Bucket=bucket)
    with pytest.raises(TaskFailure, match="Unable to find any files to delete"):
        run(f"    type: io.kestra.plugin.aws.s3.DeleteList\n{conn(endpoint)}    bucket: {bucket}\n"
            "    errorOnEmpty: true\n", ctx)


def test_downloads_with_move_and_delete(endpoint: str, bucket: str) -> None:
    ctx = SecretCtx()
    s3 = boto(endpoint)
    for name in ("in/a.csv", "in/b.csv", "in/skip.txt"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    out = run(f"    type: io.kestra.plugin.aws.s3.Downloads\n{conn(endpoint)}    bucket: {bucket}\n    prefix: in/\n"
              "    regexp: .*\\.csv\n    action: MOVE\n    moveTo:\n      key: done\n", ctx)
    assert sorted(out["outputFiles"]) == ["in/a.csv", "in/b.csv"]
    assert ctx.platform.read_file(out["outputFiles"]["in/a.csv"]) == b"in/a.csv"
    assert {o["key"] for o in out["objects"]} == {"in/a.csv", "in/b.csv"}
    assert sorted(o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]) == [
        "done/a.csv", "done/b.csv", "in/skip.txt"]
    out = run(f"    type: io.kestra.plugin.aws.s3.Downloads\n{conn(endpoint)}    bucket: {bucket}\n    prefix: done/\n"
              "    action: DELETE\n", ctx)
    assert len(out["objects"]) == 2
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == ["in/skip.txt"]


def test_create_bucket_and_clear_errors(endpoint: str) -> None:
    ctx = SecretCtx()
    name = "created-" + uuid.uuid4().hex[:8]
    assert run(f"    type: io.kestra.plugin.aws.s3.CreateBucket\n{conn(endpoint)}    bucket: {name}\n", ctx) == {
        "bucket": name, "region": "us-east-1"}
    assert name in {b["Name"] for b in boto(endpoint).list_buckets()["Buckets"]}
    with pytest.raises(TaskFailure, match=r"downloading 's3://%s/missing.txt'.*NoSuchKey" % name):
        run(f"    type: io.kestra.plugin.aws.s3.Download\n{conn(endpoint)}    bucket: {name}\n    key: missing.txt\n",
            ctx)
    with pytest.raises(TaskFailure, match="listing bucket 'no-such-bucket'.*NoSuchBucket"):
        run(f"    type: io.kestra.plugin.aws.s3.List\n{conn(endpoint)}    bucket: no-such-bucket\n", ctx)
    with pytest.raises(TaskFailure, match="endpointOverride"):
        run("    type: io.kestra.plugin.aws.s3.List\n    endpointOverride: localhost:9000\n    bucket: x\n", ctx)
    port = free_port()  # nothing listens there
    with pytest.raises(TaskFailure, match="S3 error while listing bucket 'x'"):
        run(f"    type: io.kestra.plugin.aws.s3.List\n{conn(f'http://127.0.0.1:{port}')}    bucket: x\n", ctx)


def test_validation_names_the_field() -> None:
    with pytest.raises(FlowValidationError, match="moveTo"):
        parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n    type: io.kestra.plugin.aws.s3.Downloads\n"
                   "    bucket: b\n    action: MOVE\n")
    with pytest.raises(FlowValidationError, match="action"):
        parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n    type: io.kestra.plugin.aws.s3.Downloads\n"
                   "    bucket: b\n    action: ARCHIVE\n")
    with pytest.raises(FlowValidationError, match="bucket"):
        parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n    type: io.kestra.plugin.aws.s3.Upload\n"
                   "    from: x\n    key: k\n")
