"""The fault suite runs with ``make faults`` (``CELESTRA_FAULTS=1``); a plain ``pytest`` run leaves it
out (deselected, not skipped): it starts servers of its own and takes minutes."""
from __future__ import annotations

import os


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CELESTRA_FAULTS"):
        return
    kept = [item for item in items if "faults" not in item.keywords]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if "faults" in item.keywords])
        items[:] = kept
