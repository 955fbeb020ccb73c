"""Schedule and ScheduleOnDates triggers (spec §7.2, §7.3), trigger state, Toggle, scheduled starts.

The scheduler keeps one :class:`flows_app.models.TriggerState` row per trigger (Kestra's trigger
context). For Schedule-like triggers it holds the clock: ``date`` (last scheduled date) and
``next_execution_date``; :func:`evaluate_schedules`, called by the timer sweep about every second,
fires every enabled, unlocked trigger whose next date is due:

* the candidate date is the stored next date; when more than one date is due (the scheduler was down,
  the trigger was disabled or locked), ``recoverMissedSchedules`` decides: ``ALL`` runs them one by one
  in order, ``LAST`` only the latest, ``NONE`` skips to the next future date;
* ``lateMaximumDelay`` skips a date evaluated too late (never while backfilling);
* ``conditions`` are evaluated per date with ``trigger.date`` set; a failing date is skipped;
* the execution gets ``trigger.date/next/previous``, the rendered ``inputs`` and ``labels``;
* the trigger is locked (``execution_id``) until that execution ends, unless ``allowConcurrent``;
  :func:`on_execution_end` releases it and applies ``stopAfter``.

A backfill (started through the API) replays every date of ``[start, end]`` first, then normal
scheduling resumes where it was. Deploying a flow syncs the states (:func:`sync_trigger_states`): a new
or changed Schedule starts at its next date after now (never immediately); the ``disabled`` flag of
the state survives changes.

Every evaluation is isolated: an error is logged and the sweep goes on.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F

from orchestrator.engine import states
from orchestrator.engine.conditions import ConditionContext, ConditionError, all_valid, parse_datetime
from orchestrator.engine.errors import CelestraError
from orchestrator.engine.timeutil import now as utcnow
from orchestrator.engine.timeutil import parse_duration
from orchestrator.plugins.core.trigger import Schedule, ScheduleOnDates

log = logging.getLogger("celestra.scheduler")

SCHEDULE = Schedule.type
SCHEDULE_ON_DATES = ScheduleOnDates.type
SCHEDULE_TYPES = (SCHEDULE, SCHEDULE_ON_DATES)
#: dates skipped at most while looking for one that passes the conditions
MAX_SKIPS = 1000
#: executions a backfill with ``allowConcurrent`` may create in one tick
BACKFILL_BATCH = 50


class TriggerNotFound(CelestraError):
    pass


# --------------------------------------------------------------------------------------------------
# Dates of a trigger

def _zone(trigger: Any) -> timezone | ZoneInfo:
    name = trigger.props.get("timezone")
    if isinstance(name, str) and name and "{{" not in name:
        try:
            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - validated at deploy; be lenient here
            pass
    from django.conf import settings

    default = getattr(settings, "CELESTRA", {}).get("SCHEDULE_TIME_ZONE") or "UTC"
    return timezone.utc if default == "UTC" else ZoneInfo(default)


def _cron_text(trigger: Any) -> tuple[str, bool]:
    """The cron text in croniter's spelling (see ``plugins.core.trigger.cron_problem``)."""
    import re

    text = str(trigger.props.get("cron") or "").strip()
    if text.startswith("@"):
        return {"@annually": "@yearly", "@midnight": "@daily"}.get(text.lower(), text.lower()), False
    fields = text.split()
    with_seconds = bool(trigger.props.get("withSeconds")) and len(fields) == 6
    day_index = 3 if with_seconds else 2
    week_index = 5 if with_seconds else 4
    fields[day_index] = re.sub(r"\bLW\b", "L", fields[day_index])
    fields[week_index] = re.sub(r"\b(\w+)L\b", r"L\1", fields[week_index])
    fields = [("*" if field == "?" else field) for field in fields]
    return " ".join(fields), with_seconds


def _dates(trigger: Any) -> list[datetime]:
    """The listed dates of a ScheduleOnDates trigger, sorted, in the trigger time zone."""
    from orchestrator.engine import expressions

    from .environment import static_extras

    raw = trigger.props.get("dates")
    value = expressions.render(raw, dict(static_extras())) if raw is not None else []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    zone = _zone(trigger)
    out = []
    for item in value if isinstance(value, list) else [value]:
        try:
            moment = parse_datetime(item)
        except ConditionError:
            continue
        if isinstance(item, str) and "+" not in item[10:] and not item.endswith("Z") and "[" not in item:
            moment = moment.replace(tzinfo=zone)  # a local date-time is in the trigger time zone
        out.append(moment.astimezone(zone))
    return sorted(set(out))


def next_date(trigger: Any, after: datetime) -> datetime | None:
    """The first date of the trigger strictly after ``after`` (conditions not considered)."""
    zone = _zone(trigger)
    if trigger.type == SCHEDULE_ON_DATES:
        return next((d for d in _dates(trigger) if d > after), None)
    from croniter import croniter

    text, with_seconds = _cron_text(trigger)
    start = after.astimezone(zone)
    try:
        found = croniter(text, start, second_at_beginning=with_seconds).get_next(datetime)
    except Exception as exc:  # noqa: BLE001 - croniter raises several types
        raise CelestraError(f"invalid cron expression '{trigger.props.get('cron')}': {exc}") from None
    while found <= after:  # sub-second `after`
        found = croniter(text, found, second_at_beginning=with_seconds).get_next(datetime)
    return found


def previous_date(trigger: Any, before: datetime) -> datetime | None:
    """The last date of the trigger strictly before ``before``."""
    zone = _zone(trigger)
    if trigger.type == SCHEDULE_ON_DATES:
        earlier = [d for d in _dates(trigger) if d < before]
        return earlier[-1] if earlier else None
    from croniter import croniter

    text, with_seconds = _cron_text(trigger)
    try:
        found = croniter(text, before.astimezone(zone), second_at_beginning=with_seconds).get_prev(datetime)
    except Exception as exc:  # noqa: BLE001
        raise CelestraError(f"invalid cron expression '{trigger.props.get('cron')}': {exc}") from None
    return found


def first_date_from(trigger: Any, moment: datetime) -> datetime | None:
    """The first date of the trigger at or after ``moment``."""
    return next_date(trigger, moment - timedelta(microseconds=1))


def format_date(moment: datetime | None) -> str | None:
    """A ZonedDateTime as Kestra serialises it: ISO-8601 with its offset (``Z`` for UTC)."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def fingerprint(trigger: Any) -> str:
    """A hash of the trigger definition: any change resets the stored clock (spec §7.2)."""

    def plain(value: Any) -> Any:
        if hasattr(value, "props") and hasattr(value, "type"):
            return {"type": value.type, "props": plain(value.props)}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    data = {"type": trigger.type, "props": plain(trigger.props), "conditions": plain(trigger.conditions),
            "labels": plain(trigger.labels), "stopAfter": list(trigger.stop_after),
            "allowConcurrent": trigger.allow_concurrent, "disabled": trigger.disabled}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Trigger states of deployed flows

def sync_trigger_states(namespace: str, flow_id: str, parsed: Any, moment: datetime | None = None) -> None:
    """Create, reset or delete the trigger states of a flow that was just deployed."""
    from flows_app.models import TriggerState

    moment = moment or utcnow()
    triggers = {t.id: t for t in getattr(parsed, "triggers", None) or []}
    existing = {row.trigger_id: row for row in
                TriggerState.objects.select_for_update().filter(namespace=namespace, flow_id=flow_id, condition_id="")}
    stale = [tid for tid in existing if tid not in triggers]
    if stale:
        TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id__in=stale).delete()
    for trigger_id, trigger in triggers.items():
        digest = fingerprint(trigger)
        row = existing.get(trigger_id)
        if row is not None and row.fingerprint == digest and row.type == trigger.type:
            continue
        if row is None:
            row = TriggerState(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, condition_id="")
        else:  # a changed definition: its MultipleCondition windows go too
            TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).exclude(
                condition_id="").delete()
        row.type, row.fingerprint = trigger.type, digest
        row.backfill = None
        if trigger.type in SCHEDULE_TYPES:
            row.date = moment
            try:
                row.next_execution_date = next_date(trigger, moment)
            except CelestraError as exc:
                log.warning("%s.%s/%s: %s", namespace, flow_id, trigger_id, exc)
                row.next_execution_date = None
        row.save()


def remove_trigger_states(namespace: str, flow_id: str) -> None:
    from flows_app.models import TriggerState

    TriggerState.objects.filter(namespace=namespace, flow_id=flow_id).delete()


def _flow_and_trigger(namespace: str, flow_id: str, trigger_id: str) -> tuple[Any, Any, Any]:
    """(flow row, parsed latest revision, trigger) or TriggerNotFound."""
    from flows_app.models import Flow

    from .flows import get_flow

    row = Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if row is None:
        raise TriggerNotFound(f"Unable to find flow {namespace}.{flow_id}. Make sure the flow exists and the "
                              "current execution is authorized to access it.")
    parsed = get_flow(namespace, flow_id, row.revision)
    trigger = parsed.find_trigger(trigger_id)
    if trigger is None:
        raise TriggerNotFound(f"Unable to find trigger {trigger_id} for the flow {namespace}.{flow_id}")
    return row, parsed, trigger


def get_state(namespace: str, flow_id: str, trigger_id: str, *, create: bool = True, lock: bool = False) -> Any:
    """The stored state of a trigger (created from the flow definition when missing).

    ``lock`` (inside a transaction) locks the row: whoever changes a state must, since the scheduler
    tick changes it concurrently (a stale ``backfill`` saved back would replay dates).
    """
    from flows_app.models import TriggerState

    queryset = TriggerState.objects.select_for_update() if lock else TriggerState.objects
    row = queryset.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, condition_id="").first()
    if row is not None or not create:
        if row is None:
            raise TriggerNotFound(f"Unable to find trigger {trigger_id} for the flow {namespace}.{flow_id}")
        return row
    _, _, trigger = _flow_and_trigger(namespace, flow_id, trigger_id)
    row = TriggerState(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, condition_id="",
                       type=trigger.type, fingerprint=fingerprint(trigger))
    if trigger.type in SCHEDULE_TYPES:
        row.date = utcnow()
        row.next_execution_date = next_date(trigger, row.date)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # created meanwhile
        return queryset.get(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, condition_id="")
    return row


def set_trigger_disabled(namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> Any:
    """Enable or disable a trigger through its stored state (API, Toggle task)."""
    _flow_and_trigger(namespace, flow_id, trigger_id)  # the flow and the trigger must exist
    with transaction.atomic():
        row = get_state(namespace, flow_id, trigger_id, lock=True)
        if row.disabled != disabled:
            row.disabled = disabled
            row.save(update_fields=["disabled", "updated"])
    return row


def unlock(namespace: str, flow_id: str, trigger_id: str) -> Any:
    """Clear the lock of a trigger; CelestraError when it is not locked."""
    with transaction.atomic():
        row = get_state(namespace, flow_id, trigger_id, lock=True)
        if not row.execution_id:
            raise CelestraError("Trigger is not locked")
        row.execution_id = None
        row.save(update_fields=["execution_id", "updated"])
    return row


def start_backfill(row: Any, backfill: dict[str, Any], moment: datetime | None = None) -> Any:
    """Store a backfill on a Schedule's state (``PUT /triggers``): ``{start, end?, inputs?, labels?}``."""
    moment = moment or utcnow()
    if row.type != SCHEDULE:
        raise CelestraError("Backfill is only supported by Schedule triggers")
    if not backfill.get("start"):
        raise CelestraError("backfill.start: must not be null")
    try:
        start = parse_datetime(backfill["start"])
        end = parse_datetime(backfill["end"]) if backfill.get("end") else moment
    except ConditionError as exc:
        raise CelestraError(f"Invalid backfill: {exc}") from None
    if end < start:
        raise CelestraError("Invalid backfill: the end date is before the start date")
    previous = (row.backfill or {}).get("previousNextExecutionDate") or format_date(row.next_execution_date)
    row.backfill = {
        "start": format_date(start), "end": format_date(end), "currentDate": format_date(start),
        "paused": bool(backfill.get("paused", False)), "inputs": backfill.get("inputs") or {},
        "labels": backfill.get("labels") or [], "previousNextExecutionDate": previous,
    }
    row.save(update_fields=["backfill", "updated"])
    return row


def set_backfill_paused(row: Any, paused: bool) -> Any:
    if not row.backfill:
        raise CelestraError("No backfill found for this trigger")
    row.backfill = {**row.backfill, "paused": paused}
    row.save(update_fields=["backfill", "updated"])
    return row


def delete_backfill(row: Any) -> Any:
    if not row.backfill:
        raise CelestraError("No backfill found for this trigger")
    previous = row.backfill.get("previousNextExecutionDate")
    row.backfill = None
    if previous:
        row.next_execution_date = parse_datetime(previous)
    row.save(update_fields=["backfill", "next_execution_date", "updated"])
    return row


def reset_state(namespace: str, flow_id: str, trigger_id: str) -> None:
    """Delete a trigger state; it is recreated from the flow definition (``DELETE /triggers/...``)."""
    from flows_app.models import TriggerState

    TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).delete()


def on_execution_end(execution: Any) -> None:
    """An execution ended: release the lock of the trigger that created it, apply its ``stopAfter``."""
    try:
        _on_execution_end(execution)
    except Exception:
        log.exception("trigger state update failed for execution %s", execution.id)


def _on_execution_end(execution: Any) -> None:
    from flows_app.models import TriggerState

    from .flows import get_flow

    spec = execution.trigger or {}
    trigger_id = spec.get("id")
    if not trigger_id:
        return
    final = execution.state.current
    key = {"namespace": execution.namespace, "flow_id": execution.flow_id, "trigger_id": trigger_id,
           "condition_id": ""}
    TriggerState.objects.filter(**key, execution_id=execution.id).update(
        execution_id=None, execution_current_state=final, updated=utcnow())
    try:
        flow = get_flow(execution.namespace, execution.flow_id, execution.flow_revision)
    except CelestraError:
        return
    trigger = flow.find_trigger(trigger_id)
    if trigger is None or trigger.type != spec.get("type") or final not in (trigger.stop_after or []):
        return
    with transaction.atomic():
        row = TriggerState.objects.select_for_update().filter(**key).first()
        if row is None:
            row = TriggerState(**key, type=trigger.type, fingerprint=fingerprint(trigger))
        row.disabled = True
        row.save()
    from .flow_triggers import trigger_log

    trigger_log(execution.namespace, execution.flow_id, trigger_id, "INFO",
                f"Trigger '{trigger_id}' disabled: execution {execution.id} ended {final} (stopAfter)")


# --------------------------------------------------------------------------------------------------
# The scheduler tick

#: (namespace, flow_id) -> (revision, updated) of the flows whose trigger states are known to exist
_ensured: dict[tuple[str, str], tuple[int, Any]] = {}
_ensured_at = [float("-inf")]
#: seconds between two checks that every deployed flow has its trigger states
ENSURE_EVERY = 60.0


def ensure_trigger_states(moment: datetime | None = None, force: bool = False) -> int:
    """Create the missing trigger states of deployed flows (flows deployed before states existed, states
    deleted by hand); at most every ``ENSURE_EVERY`` seconds. Returns the number of flows synced."""
    import time as clock

    from flows_app.models import Flow, TriggerState

    from .flows import get_flow

    if not force and clock.monotonic() - _ensured_at[0] < ENSURE_EVERY:
        return 0
    _ensured_at[0] = clock.monotonic()
    rows = list(Flow.objects.filter(deleted=False).values_list("namespace", "flow_id", "revision", "updated"))
    stale = [(ns, fid, rev, upd) for ns, fid, rev, upd in rows if _ensured.get((ns, fid)) != (rev, upd)]
    if not stale:
        return 0
    known = set(TriggerState.objects.filter(condition_id="").values_list("namespace", "flow_id", "trigger_id"))
    synced = 0
    for namespace, flow_id, revision, updated in stale:
        try:
            parsed = get_flow(namespace, flow_id, revision)
            if any((namespace, flow_id, t.id) not in known for t in parsed.triggers):
                with transaction.atomic():
                    sync_trigger_states(namespace, flow_id, parsed, moment)
                synced += 1
            _ensured[(namespace, flow_id)] = (revision, updated)
        except Exception:
            log.exception("scheduler: cannot sync the trigger states of %s.%s", namespace, flow_id)
    return synced


def evaluate_schedules(moment: datetime | None = None) -> list[str]:
    """Fire the due Schedule / ScheduleOnDates triggers; return the ids of the executions created."""
    from django.db.models import Q

    from flows_app.models import TriggerState

    moment = moment or utcnow()
    try:
        ensure_trigger_states(moment)
    except Exception:
        log.exception("scheduler: cannot check the trigger states")
    try:
        due = list(TriggerState.objects.filter(condition_id="", type__in=SCHEDULE_TYPES, disabled=False)
                   .filter(Q(next_execution_date__lte=moment) | Q(backfill__isnull=False))
                   .values_list("pk", flat=True)[:500])
    except Exception:
        log.exception("scheduler: cannot list the due triggers")
        return []
    created: list[str] = []
    for pk in due:
        try:
            created.extend(_evaluate_one(pk, moment))
        except Exception:
            log.exception("scheduler: trigger state %s failed", pk)
    return created


def _evaluate_one(pk: int, moment: datetime) -> list[str]:
    from flows_app.models import Execution, Flow, TriggerState

    from .flows import get_flow

    with transaction.atomic():
        row = TriggerState.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.disabled:
            return []
        flow_row = Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id, deleted=False).first()
        if flow_row is None:
            row.delete()
            return []
        if flow_row.disabled:
            return []
        flow = get_flow(row.namespace, row.flow_id, flow_row.revision)
        trigger = flow.find_trigger(row.trigger_id)
        if trigger is None or trigger.type not in SCHEDULE_TYPES or trigger.disabled or flow.disabled:
            return []
        if row.execution_id and not trigger.allow_concurrent:
            current = Execution.objects.filter(pk=row.execution_id).values_list("state", flat=True).first()
            if current is not None and current not in states.TERMINATED:
                return []
            row.execution_id, row.execution_current_state = None, current
        if row.backfill:
            if row.backfill.get("paused"):
                row.save()
                return []
            return _backfill(row, flow, trigger, moment)
        return _scheduled(row, flow, trigger, moment)


def _policy(trigger: Any) -> str:
    value = trigger.props.get("recoverMissedSchedules")
    if value:
        return str(value)
    from django.conf import settings

    return str(getattr(settings, "CELESTRA", {}).get("RECOVER_MISSED_SCHEDULES") or "ALL")


def _scheduled(row: Any, flow: Any, trigger: Any, moment: datetime) -> list[str]:
    if row.next_execution_date is None:
        row.next_execution_date = next_date(trigger, moment)
        row.save()
        return []
    candidate = row.next_execution_date
    if candidate > moment:
        return []
    later = next_date(trigger, candidate)
    if later is not None and later <= moment:  # behind: several dates are due
        policy = _policy(trigger)
        if policy == "NONE":
            row.next_execution_date = next_date(trigger, moment)
            row.save()
            return []
        if policy == "LAST":
            candidate = previous_date(trigger, moment + timedelta(microseconds=1)) or candidate
    late = trigger.props.get("lateMaximumDelay")
    if late:
        try:
            delay = parse_duration(str(late))
        except ValueError:
            delay = None
        if delay is not None and moment > candidate + delay:
            from .flow_triggers import trigger_log

            trigger_log(row.namespace, row.flow_id, row.trigger_id, "WARN",
                        f"Schedule date {format_date(candidate)} skipped: evaluated after the lateMaximumDelay {late}")
            row.date = candidate
            row.next_execution_date = next_date(trigger, candidate)
            row.save()
            return []
    candidate, failed = _passing(flow, trigger, candidate, moment)
    if candidate is None or candidate > moment:
        row.next_execution_date = candidate if candidate is not None else None
        row.save()
        return [failed] if failed else []
    created = _fire(row, flow, trigger, candidate, None)
    row.date = candidate
    row.next_execution_date = next_date(trigger, candidate)
    if created and not trigger.allow_concurrent:
        row.execution_id, row.execution_current_state = created, states.CREATED
    row.save()
    return [created] if created else []


def _backfill(row: Any, flow: Any, trigger: Any, moment: datetime) -> list[str]:
    backfill = dict(row.backfill)
    end = parse_datetime(backfill.get("end")) if backfill.get("end") else moment
    current = parse_datetime(backfill.get("currentDate") or backfill["start"])
    created: list[str] = []
    for _ in range(BACKFILL_BATCH if trigger.allow_concurrent else 1):
        candidate = first_date_from(trigger, current)
        if candidate is not None and candidate <= end:
            candidate, failed = _passing(flow, trigger, candidate, end, backfill=True)
            if failed:
                created.append(failed)
        if candidate is None or candidate > end:  # done: normal scheduling resumes
            previous = backfill.get("previousNextExecutionDate")
            row.backfill = None
            row.next_execution_date = parse_datetime(previous) if previous else next_date(trigger, moment)
            row.save()
            return created
        new_id = _fire(row, flow, trigger, candidate, backfill)
        current = candidate + timedelta(microseconds=1)
        backfill["currentDate"] = format_date(next_date(trigger, candidate))
        if new_id:
            created.append(new_id)
            if not trigger.allow_concurrent:
                row.execution_id, row.execution_current_state = new_id, states.CREATED
    row.backfill = backfill
    row.save()
    return created


def _condition_context(flow: Any, trigger: Any, candidate: datetime) -> ConditionContext:
    from .environment import static_extras

    variables = {**static_extras(), "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
                 "trigger": {"date": format_date(candidate)}, "vars": dict(flow.variables or {})}
    return ConditionContext(execution=None, flow={"namespace": flow.namespace, "id": flow.id},
                            variables=variables, now=utcnow())


def _passing(flow: Any, trigger: Any, candidate: datetime | None, limit: datetime,
             backfill: bool = False) -> tuple[datetime | None, str | None]:
    """The first date from ``candidate`` passing the conditions (None past ``limit``).

    A condition that cannot be evaluated creates a FAILED execution carrying the error (so that it is
    visible) and skips that date; its id is returned second.
    """
    if not trigger.conditions:
        return candidate, None
    for _ in range(MAX_SKIPS):
        if candidate is None or candidate > limit:
            return candidate, None
        try:
            if all_valid(trigger.conditions, _condition_context(flow, trigger, candidate)):
                return candidate, None
        except ConditionError as exc:
            from .flow_triggers import create_failed_execution

            spec = {"id": trigger.id, "type": trigger.type, "variables": _variables(trigger, candidate)}
            failed = create_failed_execution(flow, trigger, spec,
                                             f"Unable to evaluate the conditions of trigger '{trigger.id}': {exc}")
            return next_date(trigger, candidate), failed
        candidate = next_date(trigger, candidate)
    return candidate, None


def _next_passing(flow: Any, trigger: Any, candidate: datetime) -> datetime | None:
    """The next date after ``candidate`` that passes the conditions (``trigger.next``)."""
    following = next_date(trigger, candidate)
    if not trigger.conditions:
        return following
    for _ in range(MAX_SKIPS):
        if following is None:
            return None
        try:
            if all_valid(trigger.conditions, _condition_context(flow, trigger, following)):
                return following
        except ConditionError:
            return following
        following = next_date(trigger, following)
    return following


def _variables(trigger: Any, candidate: datetime, flow: Any = None) -> dict[str, Any]:
    zone = _zone(trigger)
    local = candidate.astimezone(zone)
    try:
        following = _next_passing(flow, trigger, local) if flow is not None else next_date(trigger, local)
        previous = previous_date(trigger, local)
    except CelestraError:
        following = previous = None
    return {"date": format_date(local), "next": format_date(following.astimezone(zone) if following else None),
            "previous": format_date(previous.astimezone(zone) if previous else None)}


def _labels_of(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(item.get("key")): item.get("value") for item in value if isinstance(item, dict)}
    return {}


def _fire(row: Any, flow: Any, trigger: Any, candidate: datetime, backfill: dict[str, Any] | None) -> str | None:
    """Create the execution of one scheduled (or backfilled) date."""
    from orchestrator.engine import expressions

    from .environment import static_extras
    from .flow_triggers import create_failed_execution, create_triggered_execution, trigger_log

    variables = _variables(trigger, candidate, flow)
    spec = {"id": trigger.id, "type": trigger.type, "variables": variables}
    context = {**static_extras(), "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
               "trigger": variables, "vars": dict(flow.variables or {})}
    try:
        inputs = expressions.render(dict(trigger.props.get("inputs") or {}), context)
        labels = {str(k): expressions.render_string(v, context) for k, v in (trigger.labels or {}).items()}
        if backfill:
            inputs.update(backfill.get("inputs") or {})
            labels.update({k: expressions.render_string(v, context)
                           for k, v in _labels_of(backfill.get("labels")).items()})
    except Exception as exc:  # noqa: BLE001 - a render error is the trigger's, made visible
        message = f"Trigger '{trigger.id}' cannot render its inputs or labels: {exc}"
        if trigger.fail_on_trigger_error:
            return create_failed_execution(flow, trigger, spec, message)
        trigger_log(flow.namespace, flow.id, trigger.id, "ERROR", message)
        return None
    return create_triggered_execution(flow, trigger, inputs, labels, spec,
                                      invalid_inputs="fail" if trigger.fail_on_trigger_error else "log")


# --------------------------------------------------------------------------------------------------
# Executions started at a given date (``scheduleDate``)

def defer_start(execution: Any, at: datetime) -> Any:
    """Make an execution created with ``start=False`` start at ``at`` (``scheduleDate``, spec §8.5).

    The execution stays CREATED with its ``scheduleDate`` until the timer sweep wakes it at that date;
    a date in the past starts it now. Returns the execution with ``schedule_date`` set.
    """
    from flows_app.models import Execution

    from .tasks import enqueue_advance

    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    with transaction.atomic():
        # an executor trusts its in-memory copy only at the row version it wrote: bump it
        bump = {"version": F("version") + 1} if any(f.name == "version" for f in Execution._meta.fields) else {}
        Execution.objects.filter(pk=execution.id).update(schedule_date=at, wake_at=at, **bump)
        if at <= utcnow():
            enqueue_advance(execution.id)
    execution.schedule_date = at
    return execution


def create_scheduled_execution(namespace: str, flow_id: str, inputs: dict[str, Any] | None, at: datetime,
                               **kwargs: Any) -> Any:
    """``services.create_execution`` for an execution that must start at ``at``."""
    from flows_app.services import create_execution

    with transaction.atomic():
        execution = create_execution(namespace, flow_id, inputs, start=False, **kwargs)
        return defer_start(execution, at)


def states_of(namespace: str | None = None, flow_id: str | None = None) -> Iterable[Any]:
    """Trigger contexts (not MultipleCondition windows), for the API."""
    from flows_app.models import TriggerState

    queryset = TriggerState.objects.filter(condition_id="")
    if namespace is not None:
        queryset = queryset.filter(namespace=namespace)
    if flow_id is not None:
        queryset = queryset.filter(flow_id=flow_id)
    return queryset
