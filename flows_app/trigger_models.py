"""Stored trigger state (Kestra's "trigger context", spec §7.1) and MultipleCondition windows.

One table serves both, because both are "the state of one trigger of one flow":

* ``condition_id = ""``: the trigger context: the ``disabled`` flag set by the API or the Toggle task
  (the YAML ``disabled`` is separate: either disables), the Schedule clock (``date``,
  ``next_execution_date``), the backfill object and the lock (``execution_id`` of the execution a
  Schedule created and that has not ended yet).
* ``condition_id = <MultipleCondition or preconditions id>``: the current window of that condition
  (``window_start``/``window_end``), the names of the sub-conditions already satisfied in it
  (``results``) and the outputs of the executions that satisfied them (``outputs``).
"""
from __future__ import annotations

from django.db import models


class TriggerState(models.Model):
    namespace = models.CharField(max_length=150)
    flow_id = models.CharField(max_length=100)
    trigger_id = models.CharField(max_length=256)
    #: "" for the trigger context, else the id of a MultipleCondition / preconditions of the trigger
    condition_id = models.CharField(max_length=256, blank=True, default="")
    #: the trigger type, to find the Schedule states without parsing flows
    type = models.CharField(max_length=256, blank=True, default="")
    #: hash of the trigger definition: a changed definition resets the Schedule clock (spec §7.2)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    disabled = models.BooleanField(default=False)
    #: last evaluated / scheduled date
    date = models.DateTimeField(null=True, blank=True)
    next_execution_date = models.DateTimeField(null=True, blank=True, db_index=True)
    #: ``{start, end, currentDate, paused, inputs, labels, previousNextExecutionDate}`` (spec §7.3)
    backfill = models.JSONField(null=True, blank=True)
    #: the lock: the execution created by this trigger that has not ended
    execution_id = models.CharField(max_length=32, null=True, blank=True)
    execution_current_state = models.CharField(max_length=16, null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "flow_id", "trigger_id", "condition_id"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "flow_id", "trigger_id", "condition_id"],
                                    name="unique_trigger_state"),
        ]
        indexes = [models.Index(fields=["namespace", "flow_id"])]

    def __str__(self) -> str:
        suffix = f" [{self.condition_id}]" if self.condition_id else ""
        return f"{self.namespace}.{self.flow_id}/{self.trigger_id}{suffix}"

    @property
    def uid(self) -> str:
        """Kestra's trigger key: ``<tenant>_<namespace>_<flowId>_<triggerId>``."""
        return f"main_{self.namespace}_{self.flow_id}_{self.trigger_id}"


__all__ = ["TriggerState"]
