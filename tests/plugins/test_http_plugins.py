"""http.Request and http.Download against a local ``http.server`` on 127.0.0.1."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import MemoryPlatform
from orchestrator.engine.secrets_codec import ENCRYPTED_TYPE, decrypt, key_override

from .test_storage_kv_plugins import Ctx, run


class Handler(BaseHTTPRequestHandler):
    """Endpoints: /json, /echo (any method), /status/<code>, /redirect, /file, /named, /empty, /auth, /slow."""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/json":
            self._send(200, b'{"hello": "world"}', {"Content-Type": "application/json", "X-Multi": "a"})
        elif path == "/echo" or path == "/echo dir/x":
            payload = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                       "body": self._body().decode("utf-8", errors="replace")}
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8"})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[-1]), b"nope")
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/json"})
        elif path == "/file.csv":
            self._send(200, b"a,b\n1,2\n", {"Content-Type": "text/csv"})
        elif path == "/named":
            self._send(200, b"content", {"Content-Disposition": 'attachment; filename="../report 1.txt"'})
        elif path == "/empty":
            self._send(200, b"")
        elif path == "/auth":
            expected = "Basic " + base64.b64encode(b"user:pass").decode()
            if self.headers.get("Authorization") in (expected, "Bearer tok"):
                self._send(200, b"granted")
            else:
                self._send(401, b"denied")
        else:
            self._send(404, b"unknown")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def ctx(server: str) -> Ctx:
    return Ctx(MemoryPlatform("company.team", "flow", "exec1", "task", "run1"), base=server)


def test_request_get(server: str) -> None:
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n", ctx(server))
    assert out["code"] == 200 and out["uri"] == f"{server}/json"
    assert out["body"] == '{"hello": "world"}'
    assert out["headers"]["Content-Type"] == ["application/json"] and out["headers"]["X-Multi"] == ["a"]


def test_request_post_body_headers_and_spaces(server: str) -> None:
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/echo dir/x'\n    method: POST\n"
              "    body: '{\"n\": {{ 1 + 1 }}}'\n    headers:\n      X-Token: 'a{{ 1 }}'\n", ctx(server))
    echoed = json.loads(out["body"])
    assert echoed["method"] == "POST" and echoed["path"] == "/echo%20dir/x"
    assert echoed["body"] == '{"n": 2}'
    assert echoed["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert echoed["headers"]["X-Token"] == "a1"


def test_request_form_urlencoded_and_multipart(server: str) -> None:
    context = ctx(server)
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/echo'\n    method: POST\n"
              "    formData:\n      user: me\n      n: 3\n", context)
    echoed = json.loads(out["body"])
    assert parse_qs(echoed["body"]) == {"user": ["me"], "n": ["3"]}
    assert echoed["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
    context.variables["f"] = context.platform.put_file(b"file content", "data.txt")
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/echo'\n    method: POST\n"
              "    contentType: multipart/form-data\n    formData:\n      upload: '{{ f }}'\n"
              "      renamed:\n        name: other.txt\n        content: '{{ f }}'\n      field: value\n", context)
    echoed = json.loads(out["body"])
    assert echoed["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert 'name="upload"; filename="data.txt"' in echoed["body"]
    assert 'name="renamed"; filename="other.txt"' in echoed["body"]
    assert echoed["body"].count("file content") == 2 and "\r\n\r\nvalue\r\n" in echoed["body"]


def test_request_failures_allow_failed_and_redirects(server: str) -> None:
    with pytest.raises(TaskFailure, match="Failed http request with response code '404' and body:\nnope"):
        run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/status/404'\n", ctx(server))
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/status/500'\n"
              "    options:\n      allowFailed: true\n", ctx(server))
    assert (out["code"], out["body"]) == (500, "nope")
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/status/404'\n"
              "    allowFailed: true\n", ctx(server))
    assert out["code"] == 404
    assert run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/redirect'\n",
               ctx(server))["code"] == 200
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/redirect'\n"
              "    options:\n      followRedirects: false\n", ctx(server))
    assert out["code"] == 302 and out["headers"]["Location"] == ["/json"]
    with pytest.raises(TaskFailure, match="Unable to connect"):
        run("    type: io.kestra.plugin.core.http.Request\n    uri: http://127.0.0.1:1/x\n", ctx(server))


def test_request_auth_and_limits(server: str) -> None:
    basic = ("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/auth'\n    options:\n"
             "      auth:\n        type: BASIC\n        username: user\n        password: pass\n")
    assert run(basic, ctx(server))["body"] == "granted"
    bearer = ("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/auth'\n    options:\n"
              "      auth:\n        type: BEARER\n        token: tok\n")
    assert run(bearer, ctx(server))["body"] == "granted"
    legacy = ("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/auth'\n"
              "    basicAuthUser: user\n    basicAuthPassword: pass\n")
    assert run(legacy, ctx(server))["body"] == "granted"
    with pytest.raises(TaskFailure, match="maximum content length of 3 bytes"):
        run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n"
            "    options:\n      maxContentLength: 3\n", ctx(server))
    with pytest.raises(TaskFailure, match="SOCKS"):
        run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n"
            "    options:\n      proxy:\n        type: SOCKS\n        address: localhost\n        port: 1080\n",
            ctx(server))


def test_request_head_and_logs(server: str) -> None:
    context = ctx(server)
    out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n    method: HEAD\n"
              "    options:\n      logs: [REQUEST_HEADERS, RESPONSE_HEADERS]\n", context)
    assert out["code"] == 200 and out["body"] is None
    assert [level for level, _ in context.logs] == ["DEBUG", "DEBUG"]


def test_request_encrypt_body(server: str) -> None:
    with key_override("I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"):
        out = run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n    encryptBody: true\n",
                  ctx(server))
        assert "body" not in out and out["encryptedBody"]["type"] == ENCRYPTED_TYPE
        assert decrypt(out["encryptedBody"]["value"]) == '{"hello": "world"}'
    with key_override(None), pytest.raises(Exception, match="encryption is not configured"):
        run("    type: io.kestra.plugin.core.http.Request\n    uri: '{{ base }}/json'\n    encryptBody: true\n",
            ctx(server))


def test_download(server: str) -> None:
    context = ctx(server)
    out = run("    type: io.kestra.plugin.core.http.Download\n    uri: '{{ base }}/file.csv'\n", context)
    assert out["code"] == 200 and out["length"] == 8 and out["uri"].endswith(".csv")
    assert context.platform.read_file(out["uri"]) == b"a,b\n1,2\n"
    assert out["headers"]["Content-Type"] == ["text/csv"]
    out = run("    type: io.kestra.plugin.core.http.Download\n    uri: '{{ base }}/named'\n", context)
    assert out["uri"].endswith("/tasks/task/run1/report%201.txt")
    with pytest.raises(TaskFailure, match="No response from server"):
        run("    type: io.kestra.plugin.core.http.Download\n    uri: '{{ base }}/empty'\n", context)
    out = run("    type: io.kestra.plugin.core.http.Download\n    uri: '{{ base }}/empty'\n"
              "    failOnEmptyResponse: false\n", context)
    assert out["length"] == 0 and ("WARN", f"File '{server}/empty' is empty") in context.logs
    with pytest.raises(TaskFailure, match="response code '404'"):
        run("    type: io.kestra.plugin.core.http.Download\n    uri: '{{ base }}/missing'\n", context)


def test_legacy_alias(server: str) -> None:
    out = run("    type: io.kestra.plugin.fs.http.Request\n    uri: '{{ base }}/json'\n", ctx(server))
    assert out["code"] == 200


def test_polling_trigger_evaluation(server: str) -> None:
    from orchestrator.engine.flow import parse_flow

    def trigger(extra: str) -> Any:
        flow = parse_flow("id: f\nnamespace: company.team\ntasks:\n  - id: t\n"
                          "    type: io.kestra.plugin.core.log.Log\n    message: x\ntriggers:\n  - id: http\n"
                          f"    type: io.kestra.plugin.fs.http.Trigger\n    uri: '{server}/json'\n" + extra)
        found = flow.triggers[0]
        return found.plugin(found)

    fired = trigger("").evaluate(ctx(server))
    assert fired is not None and fired["headers"]["Content-Type"] == ["application/json"]
    assert {k: v for k, v in fired.items() if k != "headers"} == {
        "uri": f"{server}/json", "code": 200, "body": '{"hello": "world"}'}
    never = trigger("    responseCondition: \"{{ json(response.body).hello == 'nobody' }}\"\n")
    assert never.evaluate(ctx(server)) is None
    missing = trigger("").task
    missing.props["uri"] = f"{server}/status/503"
    assert missing.plugin(missing).evaluate(ctx(server)) is None  # default condition: statusCode < 400
    with key_override("I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"):
        encrypted = trigger("    encryptBody: true\n"
                            "    responseCondition: '{{ json(response.body).hello is not null }}'\n")
        fired = encrypted.evaluate(ctx(server))
        assert decrypt(fired["encryptedBody"]["value"]) == '{"hello": "world"}'
