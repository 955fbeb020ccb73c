"""Request body parsing with limits: size (413), JSON depth and non-JSON numbers (400).

DRF's parsers read the request stream directly, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked
only by ``request.body``) does not bound them: the parser checks the size itself.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions as drf
from rest_framework.parsers import JSONParser


class RequestTooLarge(drf.APIException):
    status_code = 413
    default_detail = "Request Entity Too Large"
    default_code = "request_too_large"


def max_body_bytes() -> int:
    return int(getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or 2621440)


def too_large(length: int | None, limit: int) -> RequestTooLarge:
    shown = f"[{length}]" if length is not None else f"over [{limit}]"
    return RequestTooLarge(f"Request Entity Too Large: The content length {shown} exceeds the maximum allowed "
                           f"content length [{limit}]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str | bytes) -> Any:
    """``json.loads`` for API bodies: NaN/Infinity refused, absurd nesting a ValueError, not a crash."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None


class LimitedJSONParser(JSONParser):
    """JSON bodies up to the request size limit, without NaN/Infinity, with a bounded nesting."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = max_body_bytes()
        length = None
        if request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = None
            if length and length > limit:
                raise too_large(length, limit)
        if stream is None:
            return None
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large(None, limit)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(raw.decode(encoding))
        except UnicodeDecodeError:
            raise drf.ParseError("the body is not valid UTF-8 text") from None
        except ValueError as exc:
            raise drf.ParseError(f"JSON parse error - {exc}") from None
