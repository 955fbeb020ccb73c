"""``io.kestra.plugin.core.http``: Request, Download (runnable) and Trigger (polling).

The HTTP client itself lives in the worker runtime; these are the declarations.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.plugins import RUNNABLE, TRIGGER, register

from ._common import CorePlugin, Duration, Props, Text

_PREFIX = "io.kestra.plugin.fs.http."
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Timeouts(_Open):
    connectTimeout: Optional[Duration] = None
    readIdleTimeout: Optional[Duration] = None


class _Proxy(_Open):
    type: Literal["DIRECT", "HTTP", "SOCKS"] = "DIRECT"
    address: Optional[Text] = None
    port: Optional[int] = None
    username: Optional[Text] = None
    password: Optional[Text] = None


class _Auth(_Open):
    type: Literal["BASIC", "BEARER", "DIGEST"]
    username: Optional[Text] = None
    password: Optional[Text] = None
    token: Optional[Text] = None


class _Ssl(_Open):
    insecureTrustAllCertificates: Optional[bool] = None


class _Options(_Open):
    timeout: Optional[_Timeouts] = None
    connectTimeout: Optional[Duration] = None
    readTimeout: Optional[Duration] = None
    readIdleTimeout: Optional[Duration] = None
    connectionPoolIdleTimeout: Optional[Duration] = None
    maxContentLength: Optional[int] = None
    proxy: Optional[_Proxy] = None
    auth: Optional[_Auth] = None
    basicAuthUser: Optional[Text] = None
    basicAuthPassword: Optional[Text] = None
    ssl: Optional[_Ssl] = None
    followRedirects: bool = True
    allowFailed: bool = False
    defaultCharset: Text = "UTF-8"
    logs: Optional[list[Literal["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"]]] = None
    logLevel: Optional[Text] = None


class HttpProps(Props):
    uri: Text
    method: Method = "GET"
    body: Optional[Text] = None
    formData: Optional[Union[dict[str, Any], Text]] = None
    contentType: Text = "application/json"
    headers: Optional[Union[dict[str, Any], Text]] = None
    options: Optional[_Options] = None
    # deprecated flat forms of `options`
    allowFailed: Optional[bool] = None
    sslOptions: Optional[_Ssl] = None
    connectTimeout: Optional[Duration] = None
    readTimeout: Optional[Duration] = None
    readIdleTimeout: Optional[Duration] = None
    connectionPoolIdleTimeout: Optional[Duration] = None
    maxContentLength: Optional[int] = None
    proxyType: Optional[Literal["DIRECT", "HTTP", "SOCKS"]] = None
    proxyAddress: Optional[Text] = None
    proxyPort: Optional[int] = None
    proxyUsername: Optional[Text] = None
    proxyPassword: Optional[Text] = None
    basicAuthUser: Optional[Text] = None
    basicAuthPassword: Optional[Text] = None


@register
class Request(CorePlugin):
    type = "io.kestra.plugin.core.http.Request"
    aliases = (_PREFIX + "Request",)
    kind = RUNNABLE

    class Props(HttpProps):
        encryptBody: bool = False


@register
class Download(CorePlugin):
    type = "io.kestra.plugin.core.http.Download"
    aliases = (_PREFIX + "Download",)
    kind = RUNNABLE

    class Props(HttpProps):
        failOnEmptyResponse: bool = True


@register
class Trigger(CorePlugin):
    """Polling trigger: call ``uri`` every ``interval``, fire when ``responseCondition`` is true."""

    type = "io.kestra.plugin.core.http.Trigger"
    aliases = (_PREFIX + "Trigger",)
    kind = TRIGGER

    class Props(HttpProps):
        interval: Duration = "PT60S"
        responseCondition: Text = "{{ response.statusCode < 400 }}"
        encryptBody: bool = False
