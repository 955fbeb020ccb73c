"""``io.kestra.plugin.aws.s3``: objects of an S3 (or S3-compatible) bucket, through boto3.

Every task takes the connection properties of :class:`ConnectionProps`; an S3 error becomes a task
failure naming the bucket, the key and S3's error code.
"""
from __future__ import annotations

import json
import posixpath
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, TRIGGER, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Duration, Text
from orchestrator.plugins.core._render import extension_of, render_bool, render_int, render_text

from . import ConnectionProps, client

FILTERS = ("FILES", "DIRECTORY", "BOTH")
ACTIONS = ("MOVE", "DELETE", "NONE")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """S3 and connection errors as task failures that say what was attempted."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TaskFailure(f"S3 error while {what}: {error.get('Code', 'Error')}: "
                          f"{error.get('Message') or exc}") from None
    except BotoCoreError as exc:
        raise TaskFailure(f"S3 error while {what}: {exc}") from None


def _required(ctx: RunContext, props: dict[str, Any], name: str) -> str:
    value = (render_text(ctx, props.get(name)) or "").strip()
    if not value:
        raise TaskFailure(f"Property '{name}' is required")
    return value


def _optional(ctx: RunContext, props: dict[str, Any], name: str) -> str | None:
    value = render_text(ctx, props.get(name))
    return value if value not in (None, "") else None


def _instant(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def s3_object(entry: dict[str, Any], uri: str | None = None) -> dict[str, Any]:
    """Kestra's S3Object output: ``key``, ``etag``, ``size``, ``lastModified``, ``owner`` (and ``uri``)."""
    out: dict[str, Any] = {"key": entry.get("Key"), "etag": entry.get("ETag"), "size": entry.get("Size"),
                           "lastModified": _instant(entry.get("LastModified"))}
    owner = entry.get("Owner")
    if owner:
        out["owner"] = {"id": owner.get("ID"), "displayName": owner.get("DisplayName")}
    if uri is not None:
        out["uri"] = uri
    return {k: v for k, v in out.items() if v is not None}


class ObjectProps(ConnectionProps):
    bucket: Text
    requestPayer: Optional[Text] = None


class ListProps(ObjectProps):
    prefix: Optional[Text] = None
    delimiter: Optional[Text] = None
    marker: Optional[Text] = None
    encodingType: Optional[Text] = None
    maxKeys: int = Field(1000, ge=1)
    expectedBucketOwner: Optional[Text] = None
    regexp: Optional[Text] = None
    filter: Literal["FILES", "DIRECTORY", "BOTH"] = "BOTH"


def list_objects(ctx: RunContext, props: dict[str, Any], s3: Any | None = None) -> list[dict[str, Any]]:
    """The objects a List would return (boto3 entries): one page of ``maxKeys``, then ``regexp``/``filter``."""
    s3 = s3 or client(ctx, props)
    bucket = _required(ctx, props, "bucket")
    params: dict[str, Any] = {"Bucket": bucket,
                              "MaxKeys": render_int(ctx, props.get("maxKeys"), "maxKeys") or 1000}
    for name, param in (("prefix", "Prefix"), ("delimiter", "Delimiter"), ("marker", "Marker"),
                        ("encodingType", "EncodingType"), ("expectedBucketOwner", "ExpectedBucketOwner"),
                        ("requestPayer", "RequestPayer")):
        value = _optional(ctx, props, name)
        if value is not None:
            params[param] = value
    regexp = _optional(ctx, props, "regexp")
    try:
        pattern = re.compile(regexp) if regexp else None
    except re.error as exc:
        raise TaskFailure(f"Invalid value for 'regexp': {exc}") from None
    kind = (render_text(ctx, props.get("filter")) or "BOTH").strip().upper()
    if kind not in FILTERS:
        raise TaskFailure(f"Invalid value for 'filter': `{kind}` must be one of {', '.join(FILTERS)}")
    with s3_errors(f"listing bucket '{bucket}'"):
        contents = s3.list_objects(**params).get("Contents", [])
    return [entry for entry in contents
            if (pattern is None or pattern.fullmatch(entry["Key"]))  # Java's String.matches: the whole key
            and (kind == "BOTH" or (kind == "DIRECTORY") == entry["Key"].endswith("/"))]


@register
class List(CorePlugin):
    """List the objects of a bucket."""

    type = "io.kestra.plugin.aws.s3.List"
    kind = RUNNABLE

    class Props(ListProps):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        objects = [s3_object(entry) for entry in list_objects(ctx, self.task.props)]
        ctx.metric("counter", "size", len(objects))
        return {"objects": objects}


def _download(ctx: RunContext, s3: Any, bucket: str, key: str, **extra: Any) -> tuple[dict[str, Any], str]:
    with s3_errors(f"downloading 's3://{bucket}/{key}'"):
        response = s3.get_object(Bucket=bucket, Key=key, **extra)
        data = response["Body"].read()
    ctx.metric("counter", "file.size", len(data))
    return response, platform_of(ctx).put_file(data, extension=extension_of(key, ".tmp"))


@register
class Download(CorePlugin):
    """Download one object to the internal storage."""

    type = "io.kestra.plugin.aws.s3.Download"
    kind = RUNNABLE

    class Props(ObjectProps):
        key: Text
        versionId: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        bucket, key = _required(ctx, props, "bucket"), _required(ctx, props, "key")
        extra: dict[str, Any] = {}
        if _optional(ctx, props, "versionId"):
            extra["VersionId"] = _optional(ctx, props, "versionId")
        if _optional(ctx, props, "requestPayer"):
            extra["RequestPayer"] = _optional(ctx, props, "requestPayer")
        response, uri = _download(ctx, client(ctx, props), bucket, key, **extra)
        out = {"uri": uri, "contentLength": response.get("ContentLength"), "contentType": response.get("ContentType"),
               "metadata": response.get("Metadata") or {}, "versionId": response.get("VersionId"),
               "eTag": response.get("ETag")}
        return {k: v for k, v in out.items() if v is not None}


class CopyObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: Text
    key: Text
    versionId: Optional[Text] = None


class MoveTo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: Optional[Text] = None
    key: Text


@register
class Downloads(CorePlugin):
    """Download the objects a List selects; then ``action`` MOVE (to ``moveTo``), DELETE or NONE."""

    type = "io.kestra.plugin.aws.s3.Downloads"
    kind = RUNNABLE

    class Props(ListProps):
        action: Literal["MOVE", "DELETE", "NONE"]
        moveTo: Optional[MoveTo] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if node.props.get("action") == "MOVE" and not node.props.get("moveTo"):
            return [("", "'moveTo' is required when 'action' is MOVE")]
        return []

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        s3 = client(ctx, props)
        bucket = _required(ctx, props, "bucket")
        entries = [e for e in list_objects(ctx, props, s3) if not e["Key"].endswith("/")]
        objects = []
        for entry in entries:
            _, uri = _download(ctx, s3, bucket, entry["Key"])
            objects.append(s3_object(entry, uri))
        total = sum(o.get("size") or 0 for o in objects)
        ctx.metric("counter", "files.count", len(objects))
        ctx.metric("counter", "files.size.total", total)
        perform_action(ctx, props, s3, bucket, [e["Key"] for e in entries])
        return {"objects": objects, "outputFiles": {o["key"]: o["uri"] for o in objects}}


def perform_action(ctx: RunContext, props: dict[str, Any], s3: Any, bucket: str, keys: list[str]) -> None:
    """Downloads' and the Trigger's ``action``: MOVE each object under ``moveTo.key`` (keeping its file
    name), DELETE it, or NONE."""
    action = (render_text(ctx, props.get("action")) or "NONE").strip().upper()
    if action not in ACTIONS:
        raise TaskFailure(f"Invalid value for 'action': `{action}` must be one of {', '.join(ACTIONS)}")
    if action == "NONE":
        return
    move_to = ctx.render(props.get("moveTo")) if props.get("moveTo") else None
    if action == "MOVE" and not (isinstance(move_to, dict) and move_to.get("key")):
        raise TaskFailure("'moveTo' with a 'key' is required when 'action' is MOVE")
    for key in keys:
        if action == "DELETE":
            with s3_errors(f"deleting 's3://{bucket}/{key}'"):
                s3.delete_object(Bucket=bucket, Key=key)
            continue
        assert move_to is not None
        target_bucket = str(move_to.get("bucket") or bucket)
        target_key = str(move_to["key"]).rstrip("/") + "/" + posixpath.basename(key)
        with s3_errors(f"moving 's3://{bucket}/{key}' to 's3://{target_bucket}/{target_key}'"):
            s3.copy_object(Bucket=target_bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": key})
            s3.delete_object(Bucket=bucket, Key=key)


def _froms(ctx: RunContext, value: Any) -> list[str]:
    """Upload's ``from``: one URI, a list of URIs, or a JSON array of URIs."""
    rendered = [ctx.render_string(v) for v in value] if isinstance(value, list) else ctx.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith("["):
            try:
                rendered = json.loads(text)
            except ValueError:
                raise TaskFailure("Invalid value for 'from': not a URI nor a JSON array of URIs") from None
        else:
            rendered = [text]
    if not isinstance(rendered, list) or not rendered:
        raise TaskFailure("Invalid value for 'from': a URI or a list of URIs is expected")
    return [str(v).strip() for v in rendered]


_UPLOAD_FIELDS = {"cacheControl": "CacheControl", "contentType": "ContentType", "contentEncoding": "ContentEncoding",
                  "contentDisposition": "ContentDisposition", "contentLanguage": "ContentLanguage", "acl": "ACL",
                  "storageClass": "StorageClass", "serverSideEncryption": "ServerSideEncryption",
                  "expectedBucketOwner": "ExpectedBucketOwner", "requestPayer": "RequestPayer",
                  "objectLockMode": "ObjectLockMode", "objectLockLegalHoldStatus": "ObjectLockLegalHoldStatus",
                  "checksumAlgorithm": "ChecksumAlgorithm"}


@register
class Upload(CorePlugin):
    """Upload one file (``key`` is the object key) or several (``key`` is their folder)."""

    type = "io.kestra.plugin.aws.s3.Upload"
    kind = RUNNABLE

    class Props(ObjectProps):
        from_: Union[Text, list[Text]] = Field(alias="from")
        key: Text
        metadata: Optional[Union[dict[str, Text], Text]] = None
        tagging: Optional[Union[dict[str, Text], Text]] = None
        cacheControl: Optional[Text] = None
        contentType: Optional[Text] = None
        contentEncoding: Optional[Text] = None
        contentDisposition: Optional[Text] = None
        contentLanguage: Optional[Text] = None
        contentLength: Optional[int] = None
        expires: Optional[Text] = None
        acl: Optional[Text] = None
        storageClass: Optional[Text] = None
        serverSideEncryption: Optional[Text] = None
        bucketKeyEnabled: Optional[bool] = None
        checksumAlgorithm: Optional[Text] = None
        checksum: Optional[Text] = None
        expectedBucketOwner: Optional[Text] = None
        objectLockMode: Optional[Text] = None
        objectLockLegalHoldStatus: Optional[Text] = None
        objectLockRetainUntilDate: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from urllib.parse import urlencode

        props = self.task.props
        bucket, key = _required(ctx, props, "bucket"), _required(ctx, props, "key")
        froms = _froms(ctx, props.get("from"))
        params: dict[str, Any] = {}
        for name, param in _UPLOAD_FIELDS.items():
            value = _optional(ctx, props, name)
            if value is not None:
                params[param] = value
        for name, param in (("metadata", "Metadata"), ("tagging", "Tagging")):
            if props.get(name) is not None:
                mapping = ctx.render(props[name])
                if isinstance(mapping, str):
                    try:
                        mapping = json.loads(mapping)
                    except ValueError:
                        raise TaskFailure(f"Invalid value for '{name}': a map is expected") from None
                if not isinstance(mapping, dict):
                    raise TaskFailure(f"Invalid value for '{name}': a map is expected")
                params[param] = ({str(k): str(v) for k, v in mapping.items()} if name == "metadata"
                                 else urlencode({str(k): str(v) for k, v in mapping.items()}))
        if props.get("bucketKeyEnabled") is not None:
            params["BucketKeyEnabled"] = render_bool(ctx, props["bucketKeyEnabled"], False)
        for name, param in (("expires", "Expires"), ("objectLockRetainUntilDate", "ObjectLockRetainUntilDate")):
            value = _optional(ctx, props, name)
            if value is not None:
                try:
                    params[param] = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    raise TaskFailure(f"Invalid value for '{name}': `{value}` is not an ISO-8601 instant") from None
        s3 = client(ctx, props)
        platform = platform_of(ctx)
        response: dict[str, Any] = {}
        for source in froms:
            data = platform.read_file(source)
            target = key if len(froms) == 1 else key.rstrip("/") + "/" + source.rsplit("/", 1)[-1]
            with s3_errors(f"uploading '{source}' to 's3://{bucket}/{target}'"):
                response = s3.put_object(Bucket=bucket, Key=target, Body=data, **params)
            ctx.log("DEBUG", f"Uploaded '{source}' to 's3://{bucket}/{target}'")
        ctx.metric("counter", "file.count", len(froms))
        out = {"bucket": bucket, "key": key, "eTag": response.get("ETag"), "versionId": response.get("VersionId")}
        return {k: v for k, v in out.items() if v is not None}


@register
class Delete(CorePlugin):
    """Delete one object."""

    type = "io.kestra.plugin.aws.s3.Delete"
    kind = RUNNABLE

    class Props(ObjectProps):
        key: Text
        bypassGovernanceRetention: Optional[bool] = None
        mfa: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        bucket, key = _required(ctx, props, "bucket"), _required(ctx, props, "key")
        params: dict[str, Any] = {}
        if props.get("bypassGovernanceRetention") is not None:
            params["BypassGovernanceRetention"] = render_bool(ctx, props["bypassGovernanceRetention"], False)
        for name, param in (("mfa", "MFA"), ("requestPayer", "RequestPayer")):
            if _optional(ctx, props, name):
                params[param] = _optional(ctx, props, name)
        with s3_errors(f"deleting 's3://{bucket}/{key}'"):
            response = client(ctx, props).delete_object(Bucket=bucket, Key=key, **params)
        out = {"deleteMarker": response.get("DeleteMarker"), "versionId": response.get("VersionId")}
        return {k: v for k, v in out.items() if v is not None}


@register
class DeleteList(CorePlugin):
    """Delete the objects a List selects; ``count`` and ``size`` (bytes) of what was deleted."""

    type = "io.kestra.plugin.aws.s3.DeleteList"
    kind = RUNNABLE

    class Props(ListProps):
        concurrent: Optional[int] = Field(None, ge=2)
        errorOnEmpty: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        s3 = client(ctx, props)
        bucket = _required(ctx, props, "bucket")
        entries = list_objects(ctx, props, s3)
        for entry in entries:
            with s3_errors(f"deleting 's3://{bucket}/{entry['Key']}'"):
                s3.delete_object(Bucket=bucket, Key=entry["Key"])
        count, size = len(entries), sum(int(e.get("Size") or 0) for e in entries)
        ctx.metric("counter", "s3.objects.deleted.count", count)
        ctx.metric("counter", "s3.objects.deleted.size", size)
        if count == 0 and render_bool(ctx, props.get("errorOnEmpty"), False):
            raise TaskFailure(f"Unable to find any files to delete on {bucket} with "
                              f"regexp='{_optional(ctx, props, 'regexp')}', prefix='{_optional(ctx, props, 'prefix')}'")
        ctx.log("INFO", f"Deleted {count} keys for {size} bytes")
        return {"count": count, "size": size}


@register
class Copy(CorePlugin):
    """Copy an object (``from`` → ``to``), deleting the source when ``delete`` is true."""

    type = "io.kestra.plugin.aws.s3.Copy"
    kind = RUNNABLE

    class Props(ConnectionProps):
        from_: CopyObject = Field(alias="from")
        to: MoveTo
        delete: bool = False
        requestPayer: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        source = ctx.render(props.get("from")) or {}
        target = ctx.render(props.get("to")) or {}
        src_bucket, src_key = str(source.get("bucket") or ""), str(source.get("key") or "")
        if not src_bucket or not src_key:
            raise TaskFailure("Properties 'from.bucket' and 'from.key' are required")
        dst_bucket, dst_key = str(target.get("bucket") or src_bucket), str(target.get("key") or "")
        if not dst_key:
            raise TaskFailure("Property 'to.key' is required")
        copy_source = {"Bucket": src_bucket, "Key": src_key}
        if source.get("versionId"):
            copy_source["VersionId"] = str(source["versionId"])
        s3 = client(ctx, props)
        with s3_errors(f"copying 's3://{src_bucket}/{src_key}' to 's3://{dst_bucket}/{dst_key}'"):
            response = s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=copy_source)
            if render_bool(ctx, props.get("delete"), False):
                s3.delete_object(Bucket=src_bucket, Key=src_key)
        result = response.get("CopyObjectResult") or {}
        out = {"bucket": dst_bucket, "key": dst_key, "eTag": result.get("ETag"), "versionId": response.get("VersionId")}
        return {k: v for k, v in out.items() if v is not None}


@register
class CreateBucket(CorePlugin):
    """Create a bucket (in ``region``)."""

    type = "io.kestra.plugin.aws.s3.CreateBucket"
    kind = RUNNABLE

    class Props(ConnectionProps):
        bucket: Text
        acl: Optional[Text] = None
        grantFullControl: Optional[Text] = None
        grantRead: Optional[Text] = None
        grantReadACP: Optional[Text] = None
        grantWrite: Optional[Text] = None
        grantWriteACP: Optional[Text] = None
        objectLockEnabledForBucket: Optional[bool] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        bucket = _required(ctx, props, "bucket")
        region = _optional(ctx, props, "region")
        params: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":  # us-east-1 takes no location constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        for name, param in (("acl", "ACL"), ("grantFullControl", "GrantFullControl"), ("grantRead", "GrantRead"),
                            ("grantReadACP", "GrantReadACP"), ("grantWrite", "GrantWrite"),
                            ("grantWriteACP", "GrantWriteACP")):
            if _optional(ctx, props, name):
                params[param] = _optional(ctx, props, name)
        if props.get("objectLockEnabledForBucket") is not None:
            params["ObjectLockEnabledForBucket"] = render_bool(ctx, props["objectLockEnabledForBucket"], False)
        with s3_errors(f"creating bucket '{bucket}'"):
            client(ctx, props).create_bucket(**params)
        return {"bucket": bucket, "region": region} if region else {"bucket": bucket}


@register
class Trigger(CorePlugin):
    """Polling trigger: list the bucket every ``interval``; new objects (per ``on``) start one execution
    with ``trigger.objects``, then ``action`` MOVE (to ``moveTo``), DELETE or NONE applies to them."""

    type = "io.kestra.plugin.aws.s3.Trigger"
    kind = TRIGGER

    class Props(ListProps):
        interval: Duration = "PT60S"
        action: Literal["MOVE", "DELETE", "NONE"]
        moveTo: Optional[MoveTo] = None
        on: Literal["CREATE", "UPDATE", "CREATE_OR_UPDATE"] = "CREATE_OR_UPDATE"
        stateKey: Optional[Text] = None
        stateTtl: Optional[Duration] = None
        filter: Literal["FILES", "DIRECTORY", "BOTH"] = "FILES"

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        return Downloads.validate_node(node)

    def candidates(self, ctx: RunContext) -> dict[str, tuple[Any, Any]]:
        """The listed objects: key → (version: ETag and last modification, S3Object output)."""
        props = {"filter": "FILES", **self.task.props}
        entries = list_objects(ctx, props)
        return {e["Key"]: (f"{e.get('ETag')}|{_instant(e.get('LastModified'))}", s3_object(e)) for e in entries}

    def variables(self, ctx: RunContext, items: list[dict[str, Any]]) -> dict[str, Any]:
        """``objects``: the fired objects, each downloaded to the internal storage (``uri``) as Kestra does."""
        store = getattr(ctx, "store_file", None)
        if store is None:
            return {"objects": items}
        props = self.task.props
        s3, bucket = client(ctx, props), _required(ctx, props, "bucket")
        objects = []
        for item in items:
            with s3_errors(f"downloading 's3://{bucket}/{item['key']}'"):
                data = s3.get_object(Bucket=bucket, Key=item["key"])["Body"].read()
            objects.append({**item, "uri": store(posixpath.basename(item["key"]) or "object", data)})
        return {"objects": objects}

    def after_fire(self, ctx: RunContext, items: list[dict[str, Any]]) -> None:
        props = self.task.props
        perform_action(ctx, props, client(ctx, props), _required(ctx, props, "bucket"), [o["key"] for o in items])
