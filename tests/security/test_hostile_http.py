"""HTTP tasks under the egress policy, against servers of our own on 127.0.0.1.

The policy is checked on the resolved address of every connection (the first and each redirect's)
and the socket connects to the address that was checked.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import MemoryPlatform
from orchestrator.plugins.core import http

from ..plugins.test_storage_kv_plugins import Ctx, run


class Handler(BaseHTTPRequestHandler):
    target = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path[len("/to/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def policy():
    """Restore the process-wide policy after each test."""
    saved = http.EGRESS
    yield http.configure_egress
    http.EGRESS = saved


def request(uri: str) -> Any:
    ctx = Ctx(MemoryPlatform("company.team", "flow", "exec1", "task", "run1"))
    return run(f"    type: io.kestra.plugin.core.http.Request\n    uri: '{uri}'\n", ctx)


def download(uri: str) -> Any:
    ctx = Ctx(MemoryPlatform("company.team", "flow", "exec1", "task", "run1"))
    return run(f"    type: io.kestra.plugin.core.http.Download\n    uri: '{uri}'\n", ctx)


def test_loopback_allowed_when_the_policy_allows_it(server, policy):
    policy(allow_loopback=True)
    assert request(f"http://{server}/")["body"] == "reached"


def test_loopback_denied(server, policy):
    policy(allow_loopback=False)
    with pytest.raises(TaskFailure, match=r"egress policy refuses 127\.0\.0\.1:\d+: 127\.0\.0\.1 is a loopback"):
        request(f"http://{server}/")
    with pytest.raises(TaskFailure, match="loopback"):
        download(f"http://{server}/")


def test_host_names_are_checked_after_resolution(server, policy):
    policy(allow_loopback=False)
    port = server.rsplit(":", 1)[1]
    with pytest.raises(TaskFailure, match="loopback address"):
        request(f"http://localhost:{port}/")


def test_redirect_to_a_denied_address_is_refused(server, policy):
    # given: the first server is allowed by an explicit network, the redirect target is not
    policy(allow_loopback=False, allow=["127.0.0.1/32"], deny=["127.0.0.2/32"])
    port = server.rsplit(":", 1)[1]
    assert request(f"http://{server}/")["body"] == "reached"

    # when / then: a redirect to 127.0.0.2 (also loopback, denied) fails the task
    with pytest.raises(TaskFailure, match=r"127\.0\.0\.2 is in a denied network"):
        request(f"http://{server}/to/127.0.0.2:{port}/")


def test_redirect_to_link_local_metadata_is_refused_by_default(server, policy):
    policy(allow_loopback=True)
    with pytest.raises(TaskFailure, match=r"169\.254\.169\.254 is a link-local or cloud metadata address"):
        request(f"http://{server}/to/169.254.169.254/latest/meta-data/")


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254",
                                     "100.100.100.200", "::ffff:169.254.169.254"])
def test_link_local_and_metadata_are_denied_by_default(address):
    assert "link-local" in (http.EgressPolicy().refusal(address) or "")


@pytest.mark.parametrize("address, allowed", [("10.1.2.3", False), ("192.168.0.1", False), ("172.16.5.4", False),
                                              ("fc00::1", False), ("127.0.0.1", True), ("8.8.8.8", True)])
def test_private_ranges_follow_their_setting(address, allowed):
    policy = http.EgressPolicy(allow_private=False, allow_loopback=True)
    assert (policy.refusal(address) is None) is allowed


def test_the_checked_address_is_the_one_connected(server, policy):
    # A name resolving to a denied address first and an allowed one second: the socket must be
    # connected to the allowed, checked address, never to a fresh resolution of the name.
    policy(allow_loopback=False, allow=["127.0.0.1/32"])
    port = server.rsplit(":", 1)[1]
    original = socket.getaddrinfo
    calls = []

    def resolver(name, *args, **kwargs):
        calls.append(name)
        if name == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.9", int(port))),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]
        return original(name, *args, **kwargs)

    socket.getaddrinfo = resolver
    try:
        sock = http._guarded_connection(("rebind.test", int(port)), 2)
        try:
            assert sock.getpeername()[0] == "127.0.0.1"
        finally:
            sock.close()
    finally:
        socket.getaddrinfo = original
    assert calls == ["rebind.test"]  # resolved once


def test_notification_webhooks_follow_the_policy(server, policy):
    policy(allow_loopback=False)
    ctx = Ctx(MemoryPlatform("company.team", "flow", "exec1", "task", "run1"))
    with pytest.raises(TaskFailure, match="egress policy refuses .*loopback"):
        run(f"""    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "http://{server}/services/T/B/X"
    payload: '{{"text": "hi"}}'
""", ctx)
    policy(allow_loopback=True)
    with pytest.raises(TaskFailure, match=r"169\.254\.169\.254 is a link-local or cloud metadata"):
        run(f"""    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "http://{server}/to/169.254.169.254/latest"
    payload: '{{"text": "hi"}}'
""", ctx)
