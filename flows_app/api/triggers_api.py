"""Triggers: stored trigger states, enable/disable, unlock, backfills (spec §11.5).

A trigger state is Kestra's ``Trigger`` object: the trigger context (``date``,
``nextExecutionDate``, ``backfill``, ``disabled``, the ``executionId`` lock...). ``/triggers/search``
pairs each with its definition (``abstractTrigger``). Routes are in :data:`routes`, to be included in
``flows_app.api.urls`` before the catch-all route.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from django.db import transaction
from django.db.models import Q
from django.urls import path
from rest_framework.response import Response

from accounts_app.permissions import namespace_q, user_can
from orchestrator.engine.errors import CelestraError

from .exceptions import ApiError, BadRequest, IllegalState, NotFound
from .views.common import ApiView, bool_param, page, parse_filters, text_q

TENANT = "main"
TRIGGER_SORT = {"triggerId": "trigger_id", "flowId": "flow_id", "namespace": "namespace",
                "nextExecutionDate": "next_execution_date", "date": "date", "updatedDate": "updated"}


# --- JSON shapes ---------------------------------------------------------------------------------------

def _date(value: Any) -> str | None:
    from orchestrator.runtime.schedules import format_date

    return format_date(value) if value is not None else None


def _plain(value: Any) -> Any:
    """Parsed conditions (objects) back to maps, for the definition JSON."""
    if hasattr(value, "props") and hasattr(value, "type"):
        return {"type": value.type, **{k: _plain(v) for k, v in value.props.items()}}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _definition(trigger: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": trigger.id, "type": trigger.type}
    if trigger.description:
        data["description"] = trigger.description
    data.update({k: _plain(v) for k, v in trigger.props.items() if v is not None})
    if trigger.conditions:
        data["conditions"] = _plain(trigger.conditions)
    if trigger.labels:
        data["labels"] = [{"key": k, "value": v} for k, v in trigger.labels.items()]
    if trigger.stop_after:
        data["stopAfter"] = list(trigger.stop_after)
    data["disabled"] = trigger.disabled
    data["allowConcurrent"] = trigger.allow_concurrent
    return data


def _find_trigger(row: Any) -> Any:
    from flows_app.models import Flow
    from orchestrator.runtime.flows import get_flow

    flow = Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id, deleted=False).first()
    if flow is None:
        return None
    try:
        return get_flow(row.namespace, row.flow_id, flow.revision).find_trigger(row.trigger_id)
    except CelestraError:
        return None


def state_json(row: Any, trigger: Any = None) -> dict[str, Any]:
    """Kestra's ``Trigger`` (trigger context) JSON."""
    trigger = trigger if trigger is not None else _find_trigger(row)
    return {
        "tenantId": TENANT, "namespace": row.namespace, "flowId": row.flow_id, "triggerId": row.trigger_id,
        "date": _date(row.date), "nextExecutionDate": _date(row.next_execution_date), "backfill": row.backfill,
        "stopAfter": list(trigger.stop_after) if trigger is not None and trigger.stop_after else None,
        "disabled": row.disabled, "executionId": row.execution_id,
        "executionCurrentState": row.execution_current_state, "updatedDate": _date(row.updated),
        "evaluateRunningDate": None, "workerId": None,
    }


def _search_json(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        trigger = _find_trigger(row)
        out.append({"abstractTrigger": _definition(trigger) if trigger is not None else None,
                    "triggerContext": state_json(row, trigger)})
    return out


# --- helpers -------------------------------------------------------------------------------------------

def _state_or_404(namespace: str, flow_id: str, trigger_id: str, lock: bool = False) -> Any:
    from orchestrator.runtime.schedules import TriggerNotFound, get_state

    try:
        return get_state(namespace, flow_id, trigger_id, lock=lock)
    except TriggerNotFound as exc:
        raise NotFound(str(exc)) from None


def _key(body: Any) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        raise BadRequest("A trigger is expected: {namespace, flowId, triggerId}")
    missing = [name for name in ("namespace", "flowId", "triggerId") if not body.get(name)]
    if missing:
        raise ApiError(", ".join(f"{name}: must not be null" for name in missing))
    return str(body["namespace"]), str(body["flowId"]), str(body["triggerId"])


def _body_triggers(request) -> list[dict[str, Any]]:
    body = request.data
    if isinstance(body, dict) and isinstance(body.get("triggers"), list):
        body = body["triggers"]
    if not isinstance(body, list):
        raise BadRequest("A list of triggers is expected")
    # only the triggers of namespaces where the caller may operate triggers
    return [item for item in body if not isinstance(item, dict)
            or user_can(request.user, "trigger.run", str(item.get("namespace", "")))]


def _query(request) -> Any:
    """The trigger states matching ``q``, ``namespace``, ``flowId``, ``triggerId`` and ``filters[...]``."""
    from orchestrator.runtime.schedules import states_of

    # a search shows what the caller may read; a bulk change reaches what they may operate
    queryset = states_of().filter(namespace_q(request.user, "trigger.read" if request.method == "GET" else "trigger.run"))
    legacy = {"q": "CONTAINS", "namespace": "PREFIX", "flowId": "EQUALS", "triggerId": "EQUALS"}
    for f in parse_filters(request, legacy):
        if f.field == "q":
            queryset = queryset.filter(Q(trigger_id__icontains=f.value) | Q(flow_id__icontains=f.value)
                                       | Q(namespace__icontains=f.value))
        elif f.field == "namespace":
            queryset = queryset.filter(text_q("namespace", f))
        elif f.field in ("flowId", "id"):
            queryset = queryset.filter(text_q("flow_id", f))
        elif f.field == "triggerId":
            queryset = queryset.filter(text_q("trigger_id", f))
    return queryset


def _bulk(rows: Iterable[Any], action: Callable[[Any], Any], keep: Callable[[Any], bool] | None = None) -> Response:
    """Apply ``action`` to each state, re-read under a row lock (the scheduler changes states too)."""
    from flows_app.models import TriggerState

    count = 0
    for row in rows:
        try:
            with transaction.atomic():
                locked = TriggerState.objects.select_for_update().filter(pk=row.pk).first()
                if locked is None or (keep is not None and not keep(locked)):
                    continue
                action(locked)
            count += 1
        except CelestraError:
            continue
    return Response({"count": count})


def _rows_of(keys: Iterable[dict[str, Any]]) -> list[Any]:
    from orchestrator.runtime.schedules import TriggerNotFound, get_state

    rows = []
    for body in keys:
        try:
            rows.append(get_state(*_key(body)))
        except (TriggerNotFound, ApiError):
            continue
    return rows


# --- views ---------------------------------------------------------------------------------------------

class TriggerSearchView(ApiView):
    """``GET /triggers/search``: paged ``{abstractTrigger, triggerContext}``."""

    def get(self, request):
        return Response(page(request, _query(request), _search_json, TRIGGER_SORT,
                             ["namespace", "flow_id", "trigger_id"]))


class TriggerUpdateView(ApiView):
    """``PUT /triggers``: set ``disabled`` and start a backfill (``backfill: {start, end, inputs, labels}``)."""

    def put(self, request):
        from orchestrator.runtime.schedules import start_backfill

        body = request.data
        namespace, flow_id, trigger_id = _key(body)
        with transaction.atomic():
            row = _state_or_404(namespace, flow_id, trigger_id, lock=True)
            if "disabled" in body and body["disabled"] is not None and bool(body["disabled"]) != row.disabled:
                row.disabled = bool(body["disabled"])
                row.save(update_fields=["disabled", "updated"])
            backfill = body.get("backfill")
            if isinstance(backfill, dict) and (not row.backfill or backfill.get("start") != row.backfill.get("start")):
                try:
                    start_backfill(row, backfill)
                except CelestraError as exc:
                    raise ApiError(str(exc)) from None
        return Response(state_json(row))


class FlowTriggersView(ApiView):
    """``GET /triggers/{namespace}/{flowId}``: the trigger states of a flow (paged)."""

    def get(self, request, namespace, flow_id):
        from orchestrator.runtime.schedules import states_of

        return Response(page(request, states_of(namespace, flow_id), lambda rows: [state_json(r) for r in rows],
                             TRIGGER_SORT, ["trigger_id"]))


class TriggerView(ApiView):
    """``DELETE /triggers/{namespace}/{flowId}/{triggerId}``: forget the state (recreated from the flow)."""

    def delete(self, request, namespace, flow_id, trigger_id):
        from orchestrator.runtime.schedules import reset_state

        _state_or_404(namespace, flow_id, trigger_id)
        reset_state(namespace, flow_id, trigger_id)
        return Response(status=204)


class TriggerUnlockView(ApiView):
    """``POST /triggers/{namespace}/{flowId}/{triggerId}/unlock``: 409 when the trigger is not locked."""

    def post(self, request, namespace, flow_id, trigger_id):
        from orchestrator.runtime.schedules import unlock

        _state_or_404(namespace, flow_id, trigger_id)
        try:
            row = unlock(namespace, flow_id, trigger_id)
        except CelestraError as exc:
            raise IllegalState(str(exc)) from None
        return Response(state_json(row))


class TriggerRestartView(ApiView):
    """``POST /triggers/{namespace}/{flowId}/{triggerId}/restart``: evaluations restart from a clean lock."""

    def post(self, request, namespace, flow_id, trigger_id):
        with transaction.atomic():
            row = _state_or_404(namespace, flow_id, trigger_id, lock=True)
            row.execution_id = None
            row.save(update_fields=["execution_id", "updated"])
        return Response(state_json(row))


def _backfill_action(name: str) -> Callable[[Any], Any]:
    from orchestrator.runtime import schedules

    return {"pause": lambda row: schedules.set_backfill_paused(row, True),
            "unpause": lambda row: schedules.set_backfill_paused(row, False),
            "delete": schedules.delete_backfill}[name]


class BackfillView(ApiView):
    """``PUT /triggers/backfill/pause|unpause`` and ``POST /triggers/backfill/delete`` (body: a trigger)."""

    action = ""

    def _run(self, request):
        namespace, flow_id, trigger_id = _key(request.data)
        with transaction.atomic():
            row = _state_or_404(namespace, flow_id, trigger_id, lock=True)
            try:
                _backfill_action(self.action)(row)
            except CelestraError as exc:
                raise ApiError(str(exc)) from None
        return Response(state_json(row))

    def put(self, request):
        return self._run(request)

    def post(self, request):
        return self._run(request)


class BackfillBulkView(ApiView):
    """``/triggers/backfill/{pause|unpause|delete}/by-triggers`` (body: list) and ``/by-query``."""

    action = ""
    by = "triggers"

    def _run(self, request):
        rows = _rows_of(_body_triggers(request)) if self.by == "triggers" else list(_query(request))
        return _bulk(rows, _backfill_action(self.action), keep=lambda r: bool(r.backfill))

    def put(self, request):
        return self._run(request)

    def post(self, request):
        return self._run(request)


class SetDisabledBulkView(ApiView):
    """``POST /triggers/set-disabled/by-triggers|by-query?disabled=true``."""

    by = "triggers"

    def post(self, request):
        disabled = bool_param(request, "disabled", True)
        if isinstance(request.data, dict) and request.data.get("disabled") is not None:
            disabled = bool(request.data["disabled"])
        rows = _rows_of(_body_triggers(request)) if self.by == "triggers" else list(_query(request))

        def apply(row: Any) -> None:
            row.disabled = disabled
            row.save(update_fields=["disabled", "updated"])

        return _bulk(rows, apply)


class UnlockBulkView(ApiView):
    """``POST /triggers/unlock/by-triggers|by-query``: only locked triggers count."""

    by = "triggers"

    def post(self, request):
        rows = _rows_of(_body_triggers(request)) if self.by == "triggers" else list(_query(request))

        def apply(row: Any) -> None:
            row.execution_id = None
            row.save(update_fields=["execution_id", "updated"])

        return _bulk(rows, apply, keep=lambda r: bool(r.execution_id))


class DeleteBulkView(ApiView):
    """``DELETE /triggers/delete/by-triggers|by-query``."""

    by = "triggers"

    def delete(self, request):
        from orchestrator.runtime.schedules import reset_state

        rows = _rows_of(_body_triggers(request)) if self.by == "triggers" else list(_query(request))
        return _bulk(rows, lambda row: reset_state(row.namespace, row.flow_id, row.trigger_id))


ns = "<str:namespace>"

#: literal segments first: ``/triggers/backfill/...`` must not be read as ``/triggers/{namespace}/{flowId}``
routes = [
    path("triggers", TriggerUpdateView.as_view()),
    path("triggers/search", TriggerSearchView.as_view()),
    path("triggers/backfill/pause", BackfillView.as_view(action="pause")),
    path("triggers/backfill/unpause", BackfillView.as_view(action="unpause")),
    path("triggers/backfill/delete", BackfillView.as_view(action="delete")),
    *[path(f"triggers/backfill/{action}/{by}", BackfillBulkView.as_view(action=action, by=by.removeprefix("by-")))
      for action in ("pause", "unpause", "delete") for by in ("by-triggers", "by-query")],
    path("triggers/set-disabled/by-triggers", SetDisabledBulkView.as_view(by="triggers")),
    path("triggers/set-disabled/by-query", SetDisabledBulkView.as_view(by="query")),
    path("triggers/unlock/by-triggers", UnlockBulkView.as_view(by="triggers")),
    path("triggers/unlock/by-query", UnlockBulkView.as_view(by="query")),
    path("triggers/delete/by-triggers", DeleteBulkView.as_view(by="triggers")),
    path("triggers/delete/by-query", DeleteBulkView.as_view(by="query")),
    path(f"triggers/{ns}/<str:flow_id>", FlowTriggersView.as_view()),
    path(f"triggers/{ns}/<str:flow_id>/<str:trigger_id>", TriggerView.as_view()),
    path(f"triggers/{ns}/<str:flow_id>/<str:trigger_id>/unlock", TriggerUnlockView.as_view()),
    path(f"triggers/{ns}/<str:flow_id>/<str:trigger_id>/restart", TriggerRestartView.as_view()),
]
