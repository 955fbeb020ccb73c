"""``io.kestra.plugin.core.http``: Request, Download (runnable) and Trigger (polling).

The client is the standard library's ``urllib``: no proxy from the environment is used (only the
``options.proxy`` of the task), redirects are followed unless ``options.followRedirects`` is false,
and a status of 400 or more fails the task unless ``options.allowFailed`` (spec §3.4).
:func:`http_call` performs the request of any of the three types (the polling trigger uses it too).
"""
from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, TRIGGER, RunContext, register
from orchestrator.engine.secrets_codec import encrypted_string
from orchestrator.engine.timeutil import parse_duration
from orchestrator.engine.truthy import is_truthy

from ._common import CorePlugin, Duration, Props, Text
from .storage import _plain_text, platform_of, render_bool, render_text, render_with

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


# ---------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------

DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 300.0
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"


@dataclass
class HttpResult:
    """A response: status, headers (name → values, as received), raw body, and the request URI."""

    uri: str
    code: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    content: bytes = b""
    charset: str | None = None
    has_body: bool = True

    def header(self, name: str) -> str | None:
        for key, values in self.headers.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return None

    def text(self, default_charset: str = "UTF-8") -> str | None:
        if not self.has_body:
            return None
        try:
            return self.content.decode(self.charset or default_charset or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


# --- egress policy -------------------------------------------------------------------------------

#: Cloud metadata endpoints outside the link-local range (AWS IPv6, Alibaba, Oracle): never reached
#: unless a network of ``allow`` names them.
_METADATA = [ipaddress.ip_network(n) for n in ("fd00:ec2::254/128", "100.100.100.200/32", "192.0.0.192/32")]
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass
class EgressPolicy:
    """Which addresses tasks may connect to, checked on the resolved address of every connection."""

    allow_private: bool = True
    allow_loopback: bool = True
    allow_link_local: bool = False
    allow: list[Any] = field(default_factory=list)
    deny: list[Any] = field(default_factory=list)

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused, or None when a connection may be made."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.deny):
            return f"{ip} is in a denied network (CELESTRA_EGRESS_DENY)"
        if any(ip in network for network in self.allow):
            return None
        if any(ip in network for network in _METADATA) or ip.is_link_local:
            if not self.allow_link_local or any(ip in network for network in _METADATA):
                return f"{ip} is a link-local or cloud metadata address (CELESTRA_EGRESS_ALLOW_LINK_LOCAL)"
            return None
        if ip.is_loopback or ip.is_unspecified:
            return None if self.allow_loopback else f"{ip} is a loopback address (CELESTRA_EGRESS_ALLOW_LOOPBACK)"
        if ip.is_private or ip in _CGNAT:
            return None if self.allow_private else f"{ip} is a private address (CELESTRA_EGRESS_ALLOW_PRIVATE)"
        return None


EGRESS = EgressPolicy()


def configure_egress(allow_private: bool | None = None, allow_loopback: bool | None = None,
                     allow_link_local: bool | None = None, allow: list[str] | None = None,
                     deny: list[str] | None = None) -> EgressPolicy:
    """Set the process-wide egress policy (Django settings' ``CELESTRA_EGRESS`` at start-up)."""
    global EGRESS
    current = EGRESS
    EGRESS = EgressPolicy(
        allow_private=current.allow_private if allow_private is None else bool(allow_private),
        allow_loopback=current.allow_loopback if allow_loopback is None else bool(allow_loopback),
        allow_link_local=current.allow_link_local if allow_link_local is None else bool(allow_link_local),
        allow=current.allow if allow is None else [ipaddress.ip_network(n.strip(), strict=False) for n in allow],
        deny=current.deny if deny is None else [ipaddress.ip_network(n.strip(), strict=False) for n in deny])
    return EGRESS


class EgressDenied(OSError):
    """A connection the egress policy refuses (an OSError, so urllib reports it as a connection error)."""


def _guarded_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                        source_address: Any = None) -> socket.socket:
    """``socket.create_connection`` that resolves once, checks each address, and connects to that address.

    Connecting to the checked address (not the name again) closes DNS rebinding between check and connect.
    """
    host, port = address
    policy = EGRESS
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"Unable to resolve {host}: {exc}") from None
    refusals: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        reason = policy.refusal(sockaddr[0])
        if reason is not None:
            refusals.append(reason)
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is not None:
        raise last_error
    raise EgressDenied(f"The egress policy refuses {host}:{port}: {'; '.join(dict.fromkeys(refusals))}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection  # TLS still verifies the certificate for the host name


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: Any) -> Any:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: Any) -> Any:
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


def egress_handlers(context: ssl.SSLContext | None = None) -> list[Any]:
    """urllib handlers whose every connection (redirects included) follows the egress policy; for any
    task that opens URLs with ``urllib.request.build_opener``."""
    return [_GuardedHTTPHandler(), _GuardedHTTPSHandler(context=context)]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _options(props: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the deprecated flat properties folded in (``options`` wins)."""
    options = dict(props.get("options") or {})
    for name in ("connectTimeout", "readTimeout", "readIdleTimeout", "connectionPoolIdleTimeout",
                 "maxContentLength", "basicAuthUser", "basicAuthPassword"):
        if props.get(name) is not None and options.get(name) is None:
            options[name] = props[name]
    if props.get("allowFailed") is not None and "allowFailed" not in (props.get("options") or {}):
        options["allowFailed"] = props["allowFailed"]
    if props.get("sslOptions") is not None and options.get("ssl") is None:
        options["ssl"] = props["sslOptions"]
    if props.get("proxyType") is not None and options.get("proxy") is None:
        options["proxy"] = {"type": props.get("proxyType"), "address": props.get("proxyAddress"),
                            "port": props.get("proxyPort"), "username": props.get("proxyUsername"),
                            "password": props.get("proxyPassword")}
    return options


def _seconds(ctx: RunContext, value: Any) -> float | None:
    text = render_text(ctx, value)
    if not text:
        return None
    try:
        return parse_duration(text.strip()).total_seconds()
    except ValueError:
        raise TaskFailure(f"Invalid duration '{text}'") from None


def _timeout(ctx: RunContext, options: dict[str, Any]) -> float:
    timeouts = options.get("timeout") or {}
    for value in (timeouts.get("readIdleTimeout"), options.get("readIdleTimeout"), options.get("readTimeout"),
                  timeouts.get("connectTimeout"), options.get("connectTimeout")):
        seconds = _seconds(ctx, value)
        if seconds is not None:
            return max(seconds, 0.001)
    return DEFAULT_TIMEOUT


def _multipart(ctx: RunContext, form: dict[str, Any]) -> tuple[bytes, str]:
    platform = None
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for key, value in form.items():
        name = ctx.render_string(key)
        filename: str | None = None
        if isinstance(value, str) and value.startswith("kestra://"):
            platform = platform or platform_of(ctx)
            content, filename = platform.read_file(value), value.rstrip("/").rsplit("/", 1)[-1]
        elif isinstance(value, dict) and "name" in value and "content" in value:
            platform = platform or platform_of(ctx)
            filename = ctx.render_string(value["name"])
            content = platform.read_file(ctx.render_string(value["content"]))
        elif isinstance(value, str):
            content = value.encode("utf-8")
        else:
            content = json.dumps(value).encode("utf-8")
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        header = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        header += "Content-Type: application/octet-stream\r\n\r\n" if filename else "\r\n"
        parts.append(header.encode("utf-8") + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _with_charset(content_type: str, charset: str) -> str:
    return content_type if "charset=" in content_type.lower() else f"{content_type}; charset={charset}"


def _handlers(ctx: RunContext, options: dict[str, Any], url: str) -> list[Any]:
    # Every connection, the first and each redirect's, goes through the egress policy.
    handlers: list[Any] = [_GuardedHTTPHandler()]
    proxy = options.get("proxy") or {}
    proxy_type = (render_text(ctx, proxy.get("type")) or "DIRECT").upper()
    if proxy_type == "SOCKS":
        raise TaskFailure("SOCKS proxies are not supported, use an HTTP proxy")
    if proxy_type == "HTTP" and proxy.get("address"):
        address = render_text(ctx, proxy.get("address"))
        port = render_text(ctx, proxy.get("port"))
        user, password = render_text(ctx, proxy.get("username")), render_text(ctx, proxy.get("password"))
        credentials = (f"{urllib.parse.quote(user or '', safe='')}:{urllib.parse.quote(password or '', safe='')}@"
                       if user else "")
        proxy_url = f"http://{credentials}{address}" + (f":{port}" if port else "")
        handlers.append(urllib.request.ProxyHandler({"http": proxy_url, "https": proxy_url}))
    else:
        handlers.append(urllib.request.ProxyHandler({}))
    ssl_options = options.get("ssl") or {}
    if render_bool(ctx, ssl_options.get("insecureTrustAllCertificates"), False):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(_GuardedHTTPSHandler(context=context))
    else:
        handlers.append(_GuardedHTTPSHandler())
    if not render_bool(ctx, options.get("followRedirects"), True):
        handlers.append(_NoRedirect())
    auth = options.get("auth") or {}
    if (render_text(ctx, auth.get("type")) or "").upper() == "DIGEST":
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, url, render_text(ctx, auth.get("username")) or "",
                             render_text(ctx, auth.get("password")) or "")
        handlers.append(urllib.request.HTTPDigestAuthHandler(manager))
    return handlers


def _auth_header(ctx: RunContext, options: dict[str, Any]) -> str | None:
    auth = options.get("auth") or {}
    kind = (render_text(ctx, auth.get("type")) or "").upper()
    if kind == "BASIC":
        user, password = render_text(ctx, auth.get("username")) or "", render_text(ctx, auth.get("password")) or ""
        return "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    if kind == "BEARER":
        return "Bearer " + (render_text(ctx, auth.get("token")) or "")
    if not kind and options.get("basicAuthUser") is not None:
        user = render_text(ctx, options.get("basicAuthUser")) or ""
        password = render_text(ctx, options.get("basicAuthPassword")) or ""
        return "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return None


def _rendered_map(ctx: RunContext, value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered) if rendered.strip() else {}
        except ValueError:
            raise TaskFailure(f"'{name}' must be a map") from None
    if not isinstance(rendered, dict):
        raise TaskFailure(f"'{name}' must be a map")
    return rendered


def _charset_of(content_type: str | None) -> str | None:
    match = re.search(r"charset=\"?([^;\"\s]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def http_call(ctx: RunContext, props: dict[str, Any], *, max_length: int | None = DEFAULT_MAX_CONTENT_LENGTH,
              fail_on_error: bool | None = None) -> HttpResult:
    """Send the request a Request/Download/Trigger describes and return the response.

    A status of 400 or more raises :class:`TaskFailure` ("Failed http request with response code
    'N'") unless ``options.allowFailed`` (or ``fail_on_error=False``).
    """
    options = _options(props)
    url = (render_text(ctx, props.get("uri")) or "").strip().replace(" ", "%20")
    if not url:
        raise TaskFailure("Property 'uri' is required")
    url = urllib.parse.quote(url, safe=_URI_SAFE)
    if not re.match(r"^https?://", url, re.IGNORECASE):
        raise TaskFailure(f"Invalid uri '{url}': only http and https are supported")
    method = (render_text(ctx, props.get("method")) or "GET").strip().upper()
    charset = render_text(ctx, options.get("defaultCharset")) or "UTF-8"
    content_type = render_text(ctx, props.get("contentType"))
    headers: dict[str, str] = {}
    data: bytes | None = None
    form = _rendered_map(ctx, props.get("formData"), "formData")
    if form:
        if (content_type or "").strip().lower() == "multipart/form-data":
            data, headers["Content-Type"] = _multipart(ctx, form)
        else:
            data = urllib.parse.urlencode({k: _plain_text(v) for k, v in form.items()}).encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
    elif props.get("body") is not None:
        body = ctx.render_string(props.get("body"))
        try:
            data = body.encode(charset)
        except LookupError:
            raise TaskFailure(f"Unknown charset '{charset}'") from None
        if content_type:
            headers["Content-Type"] = _with_charset(content_type, charset)
    elif content_type:
        headers["Content-Type"] = content_type
    authorization = _auth_header(ctx, options)
    if authorization:
        headers["Authorization"] = authorization
    for key, value in _rendered_map(ctx, props.get("headers"), "headers").items():
        name = ctx.render_string(key)
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        headers[name] = ctx.render_string(value) if isinstance(value, str) else _plain_text(value)

    logs = set(options.get("logs") or [])
    if "REQUEST_HEADERS" in logs:
        ctx.log("DEBUG", f"Request headers: {headers}")
    if "REQUEST_BODY" in logs and data is not None:
        ctx.log("DEBUG", "Request body: " + data.decode("utf-8", errors="replace"))

    opener = urllib.request.build_opener(*_handlers(ctx, options, url))
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    limit = max_length
    if options.get("maxContentLength") is not None:
        limit = int(render_text(ctx, options.get("maxContentLength")) or DEFAULT_MAX_CONTENT_LENGTH)
    try:
        response = opener.open(request, timeout=_timeout(ctx, options))
    except urllib.error.HTTPError as error:
        response = error
    except urllib.error.URLError as exc:
        raise TaskFailure(f"Unable to connect to {url}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise TaskFailure(f"HTTP request to {url} failed: {exc}") from None
    try:
        code = int(getattr(response, "status", None) or response.getcode())
        received: dict[str, list[str]] = {}
        for name, value in (response.headers.items() if response.headers is not None else []):
            key = next((k for k in received if k.lower() == name.lower()), name)
            received.setdefault(key, []).append(value)
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                chunk = response.read(65536)
                if not chunk:
                    break
                total += len(chunk)
                if limit is not None and total > limit:
                    raise TaskFailure(f"The response body exceeds the maximum content length of {limit} bytes")
                chunks.append(chunk)
        except (TimeoutError, OSError) as exc:
            raise TaskFailure(f"HTTP request to {url} failed while reading the response: {exc}") from None
    finally:
        response.close()
    content = b"".join(chunks)
    result = HttpResult(url, code, received, content, _charset_of(next(
        (v[0] for k, v in received.items() if k.lower() == "content-type"), None)),
        has_body=bool(content) or (method != "HEAD" and code not in (204, 304)))
    if "RESPONSE_HEADERS" in logs:
        ctx.log("DEBUG", f"Response headers: {received}")
    if "RESPONSE_BODY" in logs:
        ctx.log("DEBUG", "Response body: " + (result.text(charset) or ""))
    allow_failed = render_bool(ctx, options.get("allowFailed"), False) if fail_on_error is None else not fail_on_error
    if code >= 400 and not allow_failed:
        message = f"Failed http request with response code '{code}'"
        if content:
            message += " and body:\n" + (result.text(charset) or "")
        raise TaskFailure(message)
    return result


def _filename_from_header(value: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*`` wins), without any path."""
    if not value:
        return None
    filename = None
    for part in value.split(";"):
        stripped = part.strip()
        if stripped.lower().startswith("filename*"):
            encoded = stripped.split("=", 1)[-1].strip().strip('"')
            _, _, name = encoded.partition("''")
            filename = urllib.parse.unquote(name or encoded)
        elif stripped.lower().startswith("filename") and filename is None:
            filename = stripped.split("=", 1)[-1].strip().strip('"')
    if filename:
        filename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return filename or None


@register
class Request(CorePlugin):
    """Send an HTTP request; outputs ``uri``, ``code``, ``headers`` and ``body`` (text) or ``encryptedBody``."""

    type = "io.kestra.plugin.core.http.Request"
    aliases = (_PREFIX + "Request",)
    kind = RUNNABLE

    class Props(HttpProps):
        encryptBody: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        result = http_call(ctx, props)
        charset = render_text(ctx, _options(props).get("defaultCharset")) or "UTF-8"
        body = result.text(charset)
        outputs: dict[str, Any] = {"uri": result.uri, "code": result.code, "headers": result.headers}
        if render_bool(ctx, props.get("encryptBody"), False):
            outputs["encryptedBody"] = encrypted_string(body)
        else:
            outputs["body"] = body
        return outputs


@register
class Download(CorePlugin):
    """Download a file into the internal storage; outputs ``uri``, ``code``, ``length``, ``headers``."""

    type = "io.kestra.plugin.core.http.Download"
    aliases = (_PREFIX + "Download",)
    kind = RUNNABLE

    class Props(HttpProps):
        failOnEmptyResponse: bool = True

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        result = http_call(ctx, props, max_length=None)
        options = _options(props)
        if not result.content:
            if render_bool(ctx, props.get("failOnEmptyResponse"), True):
                if not render_bool(ctx, options.get("allowFailed"), False):
                    raise TaskFailure("No response from server")
            else:
                ctx.log("WARN", f"File '{result.uri}' is empty")
        platform = platform_of(ctx)
        filename = _filename_from_header(result.header("Content-Disposition"))
        if filename:
            uri = platform.put_file(result.content, urllib.parse.quote(filename, safe=""))
        else:
            path = urllib.parse.urlsplit(result.uri).path
            last = path.rsplit("/", 1)[-1]
            extension = last[last.rindex("."):] if "." in last else None
            uri = platform.put_file(result.content, extension=extension)
        return {"uri": uri, "code": result.code, "length": len(result.content), "headers": result.headers}


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

    def evaluate(self, ctx: RunContext) -> dict[str, Any] | None:
        """One poll: send the request (a status of 400 or more does not fail it), render
        ``responseCondition`` with ``response`` = ``{statusCode, body, headers}``; when it is true,
        return the trigger variables (``trigger.*``: the Request outputs), else ``None``."""
        props = self.task.props
        result = http_call(ctx, props, fail_on_error=False)
        charset = render_text(ctx, _options(props).get("defaultCharset")) or "UTF-8"
        body = result.text(charset)
        response = {"statusCode": result.code, "body": body, "headers": result.headers}
        condition = str(props.get("responseCondition") or "{{ response.statusCode < 400 }}")
        if not is_truthy(render_with(ctx, condition, {"response": response})):
            return None
        variables: dict[str, Any] = {"uri": result.uri, "code": result.code, "headers": result.headers}
        if render_bool(ctx, props.get("encryptBody"), False):
            variables["encryptedBody"] = encrypted_string(body)
        else:
            variables["body"] = body
        return variables
