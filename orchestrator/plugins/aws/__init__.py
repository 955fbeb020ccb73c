"""``io.kestra.plugin.aws``: the connection properties every AWS task shares, and a boto3 client from them.

Credentials are the flow's (``accessKeyId``/``secretKeyId``/``sessionToken``, usually written as
``{{ secret('...') }}``); without them boto3's default chain applies (environment, profile, instance
role), as the AWS SDK's default provider does in Kestra. ``endpointOverride`` points the client at any
S3-compatible server (MinIO, Ceph, a local test server); path-style addressing is then used unless
``forcePathStyle: false``.
"""
from __future__ import annotations

from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RunContext
from orchestrator.plugins.core._common import Duration, Props, Text
from orchestrator.plugins.core._render import render_bool, render_text


class ConnectionProps(Props):
    """Kestra's AbstractConnection (and the S3 client switches)."""

    region: Optional[Text] = None
    accessKeyId: Optional[Text] = None
    secretKeyId: Optional[Text] = None
    sessionToken: Optional[Text] = None
    endpointOverride: Optional[Text] = None
    stsRoleArn: Optional[Text] = None
    stsRoleExternalId: Optional[Text] = None
    stsRoleSessionName: Optional[Text] = None
    stsRoleSessionDuration: Optional[Duration] = None
    stsEndpointOverride: Optional[Text] = None
    compatibilityMode: bool = False
    forcePathStyle: Optional[bool] = None


def connection_config(ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
    """The rendered connection: ``region``, keys, ``endpoint``, ``path_style``."""
    def text(name: str) -> str | None:
        value = render_text(ctx, props.get(name))
        return value.strip() if value and value.strip() else None

    endpoint = text("endpointOverride")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise TaskFailure(f"Invalid value for 'endpointOverride': `{endpoint}` must be an http(s) URL")
    access, secret = text("accessKeyId"), text("secretKeyId")
    if (access is None) != (secret is None):
        raise TaskFailure("'accessKeyId' and 'secretKeyId' must be set together")
    path_style = render_bool(ctx, props.get("forcePathStyle"), endpoint is not None)
    return {"region": text("region"), "access_key": access, "secret_key": secret,
            "session_token": text("sessionToken"), "endpoint": endpoint, "path_style": path_style,
            "sts_role_arn": text("stsRoleArn"), "sts_external_id": text("stsRoleExternalId"),
            "sts_session_name": text("stsRoleSessionName"), "sts_endpoint": text("stsEndpointOverride")}


def client(ctx: RunContext, props: dict[str, Any], service: str = "s3") -> Any:
    """A boto3 client for ``service`` with the task's connection (an assumed STS role when given)."""
    import boto3
    from botocore.config import Config

    config = connection_config(ctx, props)
    session = boto3.session.Session(aws_access_key_id=config["access_key"],
                                    aws_secret_access_key=config["secret_key"],
                                    aws_session_token=config["session_token"],
                                    region_name=config["region"] or "us-east-1")
    if config["sts_role_arn"]:
        sts = session.client("sts", endpoint_url=config["sts_endpoint"])
        params: dict[str, Any] = {"RoleArn": config["sts_role_arn"],
                                  "RoleSessionName": config["sts_session_name"] or "kestra-session"}
        if config["sts_external_id"]:
            params["ExternalId"] = config["sts_external_id"]
        credentials = sts.assume_role(**params)["Credentials"]
        session = boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                        aws_secret_access_key=credentials["SecretAccessKey"],
                                        aws_session_token=credentials["SessionToken"],
                                        region_name=config["region"] or "us-east-1")
    boto_config = Config(s3={"addressing_style": "path" if config["path_style"] else "auto"},
                         retries={"max_attempts": 3, "mode": "standard"})
    return session.client(service, endpoint_url=config["endpoint"], config=boto_config)
