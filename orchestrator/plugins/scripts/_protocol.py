"""Kestra's script output protocol: ``::{"outputs": {...}, "metrics": [...], "logs": [...]}::`` lines.

A line of stdout or stderr that is, as a whole, a JSON object between ``::`` and ``::`` is not
logged: its ``outputs`` are merged into the task's ``vars`` (later keys win), its ``metrics`` are
recorded and its ``logs`` emitted at their level. As in Kestra, the line is read as a whole: one
malformed part (a bad level, a metric without a name) makes it an invalid line, reported with a
WARN log and otherwise ignored. Any other line is logged, INFO for stdout and ERROR for stderr.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any

from orchestrator.engine.timeutil import parse_duration

PATTERN = re.compile(r"::(\{.*\})::")
LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
METRIC_TYPES = ("counter", "timer", "gauge")


class InvalidLine(ValueError):
    pass


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise InvalidLine(f"{what}: expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise InvalidLine(f"{what}: expected a number, got '{value}'") from None
    raise InvalidLine(f"{what}: expected a number")


def parse(payload: str) -> tuple[dict[str, Any], list[tuple[str, str, float, dict[str, str]]], list[tuple[str, str]]]:
    """``(outputs, metrics, logs)`` of one protocol payload (the JSON between the ``::``)."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise InvalidLine(str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidLine("expected a JSON object")
    outputs = data.get("outputs")
    if outputs is not None and not isinstance(outputs, dict):
        raise InvalidLine("'outputs' must be an object")
    metrics = []
    for index, entry in enumerate(data.get("metrics") or []):
        if not isinstance(entry, dict):
            raise InvalidLine(f"metrics[{index}] must be an object")
        kind = str(entry.get("type") or "").lower()
        if kind not in METRIC_TYPES:
            raise InvalidLine(f"metrics[{index}]: unknown metric type '{entry.get('type')}'")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidLine(f"metrics[{index}]: a metric needs a name")
        value = entry.get("value")
        if kind == "timer" and isinstance(value, str):
            try:  # Jackson reads a Duration from ISO-8601 text too
                seconds = parse_duration(value).total_seconds()
            except ValueError:
                seconds = _number(value, f"metrics[{index}].value")
        else:
            seconds = _number(value, f"metrics[{index}].value")
        tags = entry.get("tags") or {}
        if not isinstance(tags, dict):
            raise InvalidLine(f"metrics[{index}].tags must be an object")
        metrics.append((kind, name, seconds, {str(k): "" if v is None else str(v) for k, v in tags.items()}))
    logs = []
    for index, entry in enumerate(data.get("logs") or []):
        if not isinstance(entry, dict):
            raise InvalidLine(f"logs[{index}] must be an object")
        level = str(entry.get("level") or "INFO").upper()
        if level not in LEVELS:
            raise InvalidLine(f"logs[{index}]: unknown level '{entry.get('level')}'")
        message = entry.get("message")
        logs.append((level, "" if message is None else str(message)))
    return dict(outputs or {}), metrics, logs


class LogConsumer:
    """Reads the lines of a script (from both streams, possibly from two threads) into a run context."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.vars: dict[str, Any] = {}
        self.stdout_lines = 0
        self.stderr_lines = 0
        self._lock = threading.Lock()

    def accept(self, line: str, stderr: bool) -> None:
        match = PATTERN.fullmatch(line)
        with self._lock:
            if stderr:
                self.stderr_lines += 1
            else:
                self.stdout_lines += 1
            if match is None:
                self.ctx.log("ERROR" if stderr else "INFO", line)
                return
            try:
                outputs, metrics, logs = parse(match.group(1))
            except InvalidLine as exc:
                self.ctx.log("WARN", f"Invalid outputs '{exc}'")
                return
            self.vars.update(outputs)
            for kind, name, value, tags in metrics:
                self.ctx.metric(kind, name, value, tags)
            for level, message in logs:
                self.ctx.log(level, message)
