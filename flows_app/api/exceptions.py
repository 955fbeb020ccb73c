"""Errors as Kestra's API returns them (spec §11.1).

Every error body is Micronaut's ``JsonError``::

    {"message": "<Reason>: <detail>", "_links": {"self": {"href": "<path>", "templated": false}},
     "_embedded": {"errors": [{"message": "...", "path": "..."}]}}

Mapping:

* flow validation errors, input errors, ``Illegal flow id update`` → 422 ``Invalid entity: …``;
* unknown flow, execution, KV key, namespace file → 404 ``Not Found: …``;
* a disabled flow, an execution in the wrong state → 409 ``Illegal state: …``;
* other :class:`CelestraError` → 422 ``Illegal argument: …``;
* a malformed body, JSON nested too deeply, an invalid value for the database (an impossible
  regular expression or number) → 400; a body over the size limit → 413;
* anything unexpected → 500, logged with its traceback, never returned.
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DataError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework import status
from rest_framework.response import Response

from orchestrator.engine.errors import CelestraError, FlowNotFound, InputValidationError

log = logging.getLogger("celestra.api")


class ApiError(CelestraError):
    """An error with an explicit HTTP status, raised by views and API helpers."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    reason = "Illegal argument"

    def __init__(self, message: str = "", errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    reason = "Not Found"


class IllegalState(ApiError):
    status_code = status.HTTP_409_CONFLICT
    reason = "Illegal state"


class BadRequest(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    reason = "Bad Request"


class Gone(ApiError):
    status_code = status.HTTP_410_GONE
    reason = "Resource has expired"


class InvalidEntity(ApiError):
    reason = "Invalid entity"


def error_body(request: Any, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    href = request.get_full_path() if request is not None else ""
    body: dict[str, Any] = {"message": message, "_links": {"self": {"href": href, "templated": False}}}
    if errors:
        body["_embedded"] = {"errors": errors}
    return body


def error_response(request: Any, status_code: int, message: str,
                   errors: list[dict[str, Any]] | None = None) -> Response:
    return Response(error_body(request, message, errors), status=status_code)


def _joined(reason: str, detail: str) -> str:
    return f"{reason}: {detail}" if detail else reason


def flow_errors(exc: Exception) -> list[dict[str, Any]]:
    """``FlowValidationError.errors`` (``FlowError(path, line, message)``) as JsonError entries."""
    out = []
    for error in getattr(exc, "errors", None) or []:
        path = getattr(error, "path", None)
        line = getattr(error, "line", None)
        entry: dict[str, Any] = {"message": str(error), "path": path or ""}
        if line is not None:
            entry["line"] = line
        out.append(entry)
    return out


def flow_error_message(exc: Exception) -> str:
    """One line naming every error of an invalid flow (``Invalid entity`` detail)."""
    entries = flow_errors(exc)
    if entries:
        return ", ".join(e["message"] for e in entries)
    return str(exc)


def _is_flow_validation_error(exc: Exception) -> bool:
    try:
        from orchestrator.engine.flow import FlowValidationError
    except ImportError:  # pragma: no cover - the flow model is always present in a deployment
        return type(exc).__name__ == "FlowValidationError"
    return isinstance(exc, FlowValidationError)


def celestra_response(exc: CelestraError, request: Any) -> Response:
    """The response for an error raised on purpose by the engine or a service."""
    from flows_app import services_admin
    from flows_app.services import FlowDisabled, IllegalFlowUpdate

    if isinstance(exc, ApiError):
        return error_response(request, exc.status_code, _joined(exc.reason, exc.message), exc.errors)
    if isinstance(exc, (services_admin.ExecutionNotFound, services_admin.WebhookNotFound)):
        return error_response(request, 404, _joined("Not Found", str(exc)))
    if isinstance(exc, services_admin.IllegalExecutionState):
        return error_response(request, 409, _joined("Illegal state", str(exc)))
    if isinstance(exc, services_admin.ExecutionNotTerminated):
        return error_response(request, 400, _joined("Bad Request", str(exc)))
    if isinstance(exc, services_admin.FlowsInvalid):
        errors = [{"message": message, "path": path} for path, message in exc.errors]
        return error_response(request, 422, _joined("Invalid entity", str(exc)), errors)
    if isinstance(exc, InputValidationError):
        errors = [{"message": message, "path": input_id} for input_id, message in exc.errors]
        return error_response(request, 422, _joined("Invalid entity", str(exc)), errors)
    if _is_flow_validation_error(exc):
        return error_response(request, 422, _joined("Invalid entity", flow_error_message(exc)), flow_errors(exc))
    if isinstance(exc, IllegalFlowUpdate):
        what = "flow.namespace" if "namespace" in str(exc) else "flow.id"
        return error_response(request, 422, _joined("Invalid entity", f"{what}: {exc}"),
                              [{"message": str(exc), "path": what}])
    if isinstance(exc, FlowNotFound):
        return error_response(request, 404, _joined("Not Found", str(exc)))
    if isinstance(exc, FlowDisabled):
        return error_response(request, 409, _joined("Illegal state", str(exc)))
    return error_response(request, 422, _joined("Illegal argument", str(exc)))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error becomes a JsonError body; never a traceback."""
    request = context.get("request")
    if isinstance(exc, CelestraError):
        return celestra_response(exc, request)
    if isinstance(exc, Http404):
        return error_response(request, 404, _joined("Not Found", str(exc)))
    if isinstance(exc, PermissionDenied):
        return error_response(request, 403, "Forbidden")
    if isinstance(exc, RequestDataTooBig):
        from .parsers import max_body_bytes, too_large

        length = _content_length(request)
        return error_response(request, 413, str(too_large(length, max_body_bytes()).detail))
    if isinstance(exc, SuspiciousOperation):  # too many fields, bad multipart...
        return error_response(request, 400, _joined("Bad Request", str(exc)))
    if isinstance(exc, RecursionError):
        return error_response(request, 400, _joined("Bad Request", "the request is nested too deeply"))
    if isinstance(exc, DataError):
        # A value the database refuses (an out-of-range number, a regular expression it cannot compile).
        return error_response(request, 400, _joined("Bad Request", f"Invalid value: {exc}"))
    if isinstance(exc, OperationalError) and "user-defined function raised exception" in str(exc):
        # SQLite's REGEXP under its timeout (flows_app.api.regexdb): the pattern ran away.
        return error_response(request, 400, _joined("Bad Request", "the regular expression filter could not "
                                                                  "be evaluated in time"))
    if isinstance(exc, drf.ValidationError):
        errors = _drf_errors(exc.detail)
        message = ", ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors)
        return error_response(request, 422, _joined("Invalid entity", message), errors)
    if isinstance(exc, drf.ParseError):
        return error_response(request, 400, _joined("Invalid json", str(exc.detail)))
    if isinstance(exc, drf.NotFound):
        return error_response(request, 404, _joined("Not Found", str(exc.detail)))
    if isinstance(exc, drf.APIException):
        response = error_response(request, exc.status_code, str(exc.detail))
        if getattr(exc, "auth_header", None):
            # 401: how to authenticate (DRF sets it from the first authentication class)
            response["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, drf.MethodNotAllowed):
            response["Allow"] = ", ".join(getattr(context.get("view"), "allowed_methods", []))
        return response
    log.exception("Internal server error on %s", getattr(request, "path", "?"))
    return error_response(request, 500, _joined("Internal server error", str(exc)))


def _content_length(request: Any) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except (AttributeError, ValueError):
        return None


def _drf_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            out.extend(_drf_errors(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                out.extend(_drf_errors(value, f"{path}[{index}]" if path else f"[{index}]"))
            else:
                out.extend(_drf_errors(value, path))
        return out
    return [{"message": str(detail), "path": path}]
