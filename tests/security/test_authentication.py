"""Basic auth, bearer tokens (expiry, revocation), sessions with CSRF enforced."""
from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts_app.models import ApiToken, AuditLog, NamespaceRole

from .conftest import BASE, FLOW, NS

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("ops", password="correct horse")
    NamespaceRole.objects.create(user=user, role="operator", namespace=NS)
    return user


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def issue(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("token", "create", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_basic_auth(operator, world, anonymous_client):
    ok = anonymous_client.get(f"{BASE}/executions/search", HTTP_AUTHORIZATION=basic("ops", "correct horse"))
    wrong = anonymous_client.get(f"{BASE}/executions/search", HTTP_AUTHORIZATION=basic("ops", "nope"))

    assert ok.status_code == 200 and ok.json()["total"] == 1
    assert wrong.status_code == 401


def test_bearer_token_from_the_cli(operator, world, anonymous_client):
    raw = issue("ops", "ci")

    answer = anonymous_client.get(f"{BASE}/executions/search", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert answer.status_code == 200
    token = ApiToken.objects.get()
    # only a digest is stored
    assert raw not in (token.digest, token.hint) and token.digest != raw and len(token.digest) == 64
    assert token.expires is not None and token.last_used is not None
    assert AuditLog.objects.filter(action="token.create", source="cli", actor_name="system").exists()


def test_revoked_and_expired_tokens_are_refused(operator, world, anonymous_client):
    revoked, expired = issue("ops", "one"), issue("ops", "two")
    first = ApiToken.objects.get(name="one")
    call_command("token", "revoke", str(first.pk), stdout=io.StringIO())
    ApiToken.objects.filter(name="two").update(expires=timezone.now() - timedelta(seconds=1))

    for raw in (revoked, expired, "cel_not-a-token"):
        answer = anonymous_client.get(f"{BASE}/executions/search", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert answer.status_code == 401, raw
        assert "Invalid, expired or revoked token" in answer.json()["message"]


def test_a_token_carries_its_users_roles(operator, world, anonymous_client):
    raw = issue("ops", "ci")

    edit = anonymous_client.put(f"{BASE}/flows/{NS}/hello", FLOW, content_type="application/x-yaml",
                                HTTP_AUTHORIZATION=f"Bearer {raw}")
    run = anonymous_client.post(f"{BASE}/executions/{NS}/hello", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert edit.status_code == 403 and run.status_code == 200


def test_token_for_a_new_service_account(world, anonymous_client):
    raw = issue("robot", "deploy", "--create-user", "--expires-in", "1")
    assert anonymous_client.get(f"{BASE}/flows/search", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403
    call_command("role", "grant", "viewer", NS, "--to-user", "robot", stdout=io.StringIO())
    assert anonymous_client.get(f"{BASE}/flows/search", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


class TestCsrf:
    """A browser session: the same calls from another site (no CSRF token) are refused."""

    @pytest.fixture
    def browser(self, operator):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(operator)
        return browser

    def test_cross_site_text_plain_post_is_refused(self, browser, world):
        from flows_app.models import Flow

        answer = browser.post(f"{BASE}/flows", FLOW.replace("id: hello", "id: evil"), content_type="text/plain",
                              HTTP_ORIGIN="http://evil.example")

        assert answer.status_code == 403
        assert "CSRF" in answer.json()["message"]
        assert not Flow.objects.filter(flow_id="evil").exists()

    def test_cross_site_form_post_is_refused(self, browser, world):
        from flows_app.models import Execution

        answer = browser.post(f"{BASE}/executions/{NS}/hello", {"who": "x"}, HTTP_ORIGIN="http://evil.example")

        assert answer.status_code == 403
        assert Execution.objects.count() == 1

    def test_same_site_post_with_the_token_passes(self, browser, world):
        browser.get("/admin/login/")  # sets the csrftoken cookie
        token = browser.cookies["csrftoken"].value

        answer = browser.post(f"{BASE}/executions/{NS}/hello", {}, HTTP_X_CSRFTOKEN=token,
                              HTTP_ORIGIN="http://testserver")

        assert answer.status_code == 200, answer.content[:300]

    def test_reads_need_no_token(self, browser, world):
        assert browser.get(f"{BASE}/executions/search").status_code == 200


def test_unknown_host_names_are_refused(client):
    """Local mode answers localhost names only (DNS rebinding)."""
    assert client.get("/api/v1/health", HTTP_HOST="attacker.example").status_code == 400
    assert client.get("/api/v1/health", HTTP_HOST="localhost:8080").status_code == 200
