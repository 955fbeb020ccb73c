"""Flow SLAs (spec §10.11)."""
from __future__ import annotations

from typing import Any


def check_sla(flow: Any, execution: Any, decision: Any) -> None:
    """Apply the flow's SLAs to the execution (not implemented yet: SLAs are ignored)."""
    return None
