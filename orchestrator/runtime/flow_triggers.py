"""Flow triggers (spec §7.4): executions of other flows started when an execution ends."""
from __future__ import annotations


def fire_flow_triggers(execution_id: str) -> None:
    """Evaluate the Flow triggers of every flow against the ended execution (not implemented yet)."""
    return None
