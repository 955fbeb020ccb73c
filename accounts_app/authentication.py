"""Bearer API tokens (service accounts); HTTP basic and session authentication are DRF's own."""
from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken, token_digest


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``: an active, unexpired, unrevoked :class:`ApiToken`."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer token header")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid bearer token") from None
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw)).first()
        if token is None or token.state != "active":
            # one message for unknown, revoked and expired tokens
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted")
        now = timezone.now()
        if token.last_used is None or (now - token.last_used).total_seconds() > 60:
            # at most one write a minute per token
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
