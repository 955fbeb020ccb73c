"""Kestra's bulk execution actions: ``/executions/{action}/by-ids`` and ``/executions/{action}/by-query``.

Each action is checked on every execution first; when one is refused (not found, or in a state the
action does not apply to), nothing is done and the answer is Kestra's ``BulkErrorResponse``
(400, ``{message: "invalid bulk <action>", invalids: [...]}``). Otherwise the action runs on each
execution, through the same service functions as the single-execution routes, and the answer is
``{count}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rest_framework import status
from rest_framework.response import Response

from orchestrator.engine import states

from ... import models, services_admin
from .. import serializers
from ..exceptions import BadRequest
from .common import ApiView, bool_param
from .executions import ExecutionSearchView


def _terminated(state: str) -> bool:
    return state in states.TERMINATED


@dataclass(frozen=True)
class BulkAction:
    #: the word of Kestra's error message: "invalid bulk <label>"
    label: str
    #: the refusal message for an execution in ``state``, or None when the action applies
    refuse: Callable[[str, Any], str | None]
    #: run the action on one execution
    apply: Callable[[str, Any, Any], None]
    #: None: a found execution is always kept (delete decides with its own flag)
    method: str = "post"


def _restart(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.restart_execution(execution_id)


def _replay(execution_id: str, request: Any, extra: Any) -> None:
    latest = bool_param(request, "latestRevision", False)
    revision = None
    if latest:
        row = models.Execution.objects.get(pk=execution_id)
        flow = models.Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id).first()
        revision = flow.revision if flow is not None else None
    services_admin.replay_execution(execution_id, None, revision=revision)


def _change_status(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.change_status(execution_id, extra)


def _kill(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.kill_execution(execution_id, cascade=False)


def _resume(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.resume_execution(execution_id, {})


def _pause(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.pause_execution(execution_id)


def _unqueue(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.unqueue(execution_id, extra)


def _force_run(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.force_run(execution_id)


def _labels(execution_id: str, request: Any, extra: Any) -> None:
    row = models.Execution.objects.get(pk=execution_id)
    merged = {str(label.get("key")): label.get("value") for label in row.labels or []}
    merged.update({label["key"]: label["value"] for label in extra})
    services_admin.set_execution_labels(execution_id, [{"key": k, "value": v} for k, v in merged.items()])


def _delete(execution_id: str, request: Any, extra: Any) -> None:
    services_admin.delete_execution(execution_id, delete_logs=bool_param(request, "deleteLogs", True),
                                    delete_metrics=bool_param(request, "deleteMetrics", True),
                                    delete_storage=bool_param(request, "deleteStorage", True))


ACTIONS: dict[str, BulkAction] = {
    "restart": BulkAction("restart", lambda s, x: None if (_terminated(s) or s == states.PAUSED) and s != states.KILLED
                          else "execution not in state PAUSED or terminated, or is KILLED", _restart),
    "replay": BulkAction("replay", lambda s, x: None, _replay),
    "change-status": BulkAction("change executions state", lambda s, x: None if _terminated(s) and s != states.KILLED
                                else "execution not in a terminated state or is killed", _change_status),
    "kill": BulkAction("kill", lambda s, x: "execution already finished" if _terminated(s) else None, _kill,
                       method="delete"),
    "resume": BulkAction("resume", lambda s, x: None if s == states.PAUSED else "execution not in state PAUSED",
                         _resume),
    "pause": BulkAction("pause", lambda s, x: None if s == states.RUNNING else "execution not in state RUNNING",
                        _pause),
    "unqueue": BulkAction("unqueue", lambda s, x: None if s == states.QUEUED else "execution not in state QUEUED",
                          _unqueue),
    "force-run": BulkAction("force run", lambda s, x: "execution in a terminated state" if _terminated(s) else None,
                            _force_run),
    "labels": BulkAction("set labels", lambda s, x: None if _terminated(s) else "execution is not terminated",
                         _labels),
}


def _invalid(message: str, execution_id: str) -> dict[str, Any]:
    return {"message": message, "invalidValue": execution_id, "propertyPath": "execution"}


def run_bulk(request, action: BulkAction, ids: list[str], extra: Any = None, *,
             keep_non_terminated: bool = True) -> Response:
    """Check every execution, then act on all of them, or on none."""
    from accounts_app.permissions import require

    # ids given by the caller: each one's namespace must allow the action (a query is already filtered)
    needed = "execution.delete" if action.label == "delete" else "execution.run"
    for namespace in set(models.Execution.objects.filter(pk__in=ids).values_list("namespace", flat=True)):
        require(request.user, needed, namespace)
    found = dict(models.Execution.objects.filter(pk__in=ids, deleted=False).values_list("id", "state"))
    invalids = []
    for execution_id in ids:
        state = found.get(execution_id)
        if state is None or (not keep_non_terminated and not _terminated(state)):
            invalids.append(_invalid("execution not found", execution_id))
            continue
        refusal = action.refuse(state, extra)
        if refusal:
            invalids.append(_invalid(refusal, execution_id))
    if invalids:
        return Response({"message": f"invalid bulk {action.label}", "invalids": invalids},
                        status=status.HTTP_400_BAD_REQUEST)
    for execution_id in ids:
        action.apply(execution_id, request, extra)
    return Response({"count": len(ids)})


def _ids_body(request) -> list[str]:
    body = request.data
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise BadRequest("A JSON list of execution ids is expected")
    return list(dict.fromkeys(body))


def _query_ids(request) -> list[str]:
    return list(ExecutionSearchView.filtered(request).values_list("id", flat=True))


def _extra(request, name: str, body_labels: Any = None) -> Any:
    """The action's own argument: the new status, the unqueue state, or the labels to set."""
    if name == "change-status":
        new_status = (request.query_params.get("newStatus") or "").upper()
        if not new_status:
            raise BadRequest("Required QueryValue [newStatus] not specified")
        if new_status not in states.ALL_STATES:
            raise BadRequest(f"Failed to convert argument [newStatus] for value [{new_status}]")
        if new_status not in states.TERMINATED:
            raise BadRequest("You can only change the state of an execution to a terminal state.")
        return new_status
    if name == "unqueue":
        state = request.query_params.get("state")
        if state and state.upper() not in states.ALL_STATES:
            raise BadRequest(f"Failed to convert argument [state] for value [{state}]")
        return state.upper() if state else None
    if name == "labels":
        serializer = serializers.LabelSerializer(data=body_labels, many=True)
        serializer.is_valid(raise_exception=True)
        return list(serializer.validated_data)
    return None


class ExecutionBulkView(ApiView):
    """``POST|DELETE /executions/{action}/by-ids`` and ``/executions/{action}/by-query``."""

    def post(self, request, action: str, selector: str):
        return self._run(request, action, selector, "post")

    def delete(self, request, action: str, selector: str):
        return self._run(request, action, selector, "delete")

    def _run(self, request, name: str, selector: str, method: str):
        action = ACTIONS.get(name)
        if action is None or action.method != method:
            raise BadRequest(f"Unknown bulk action '{method.upper()} {name}/{selector}'")
        if name == "labels":
            if selector == "by-ids":
                body = request.data if isinstance(request.data, dict) else {}
                ids = body.get("executionsId")
                if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
                    raise BadRequest("A body {executionsId: [...], executionLabels: [...]} is expected")
                return run_bulk(request, action, list(dict.fromkeys(ids)),
                                _extra(request, name, body.get("executionLabels") or []))
            return run_bulk(request, action, _query_ids(request), _extra(request, name, request.data))
        ids = _ids_body(request) if selector == "by-ids" else _query_ids(request)
        return run_bulk(request, action, ids, _extra(request, name))


class ExecutionDeleteBulkView(ApiView):
    """``DELETE /executions/by-ids`` and ``DELETE /executions/by-query``: soft deletes, as the single route."""

    delete_action = BulkAction("delete", lambda s, x: None, _delete, method="delete")

    def delete(self, request, selector: str):
        include = bool_param(request, "includeNonTerminated", False)
        ids = _ids_body(request) if selector == "by-ids" else _query_ids(request)
        return run_bulk(request, self.delete_action, ids, keep_non_terminated=include)
