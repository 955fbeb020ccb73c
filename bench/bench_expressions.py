"""Warm render cost of typical task properties with the Pebble expression engine.

Run with ``.venv/bin/python bench/bench_expressions.py``; prints microseconds per render.
"""
from __future__ import annotations

import statistics
import sys
import timeit
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.engine import expressions

CONTEXT = {
    "flow": {"id": "hello", "namespace": "company.team"},
    "execution": {"id": "5FTWv6rqZnkQ2AEMVasBqo", "startDate": datetime(2024, 5, 2, 10, 15, 30, tzinfo=timezone.utc)},
    "inputs": {"a": "A", "count": 7, "items": list(range(20))},
    "outputs": {"t": {"value": "hello"}, "fetch": {"body": '{"items": [{"id": 1}]}'}},
    "vars": {"x": "X"},
    "taskrun": {"value": "v1"},
}

CASES = {
    "typical property (3 variables + filter)": "{{ inputs.a }}-{{ outputs.t.value | upper }}-{{ vars.x }}",
    "typed single variable": "{{ inputs.count }}",
    "plain string (no template)": "just a plain string",
    "condition": "{{ inputs.count > 5 and vars.x == 'X' }}",
    "null coalescing + date": "{{ trigger.date ?? execution.startDate | date('yyyy-MM-dd') }}",
    "loop over 20 items": "{% for i in inputs.items %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}",
    "jq on a JSON body": "{{ outputs.fetch.body | jq('.items[0].id') | first }}",
}


def measure(template: str, repeat: int = 7, number: int = 20000) -> float:
    """Best-of median per-render time in microseconds, after a warm-up render."""
    expressions.render(template, CONTEXT)
    timings = timeit.repeat(lambda: expressions.render(template, CONTEXT), repeat=repeat, number=number)
    return statistics.median(t / number for t in timings) * 1e6


def main() -> None:
    width = max(len(name) for name in CASES)
    for name, template in CASES.items():
        number = 2000 if "jq" in name or "loop" in name else 20000
        print(f"{name.ljust(width)}  {measure(template, number=number):8.2f} µs/render")


if __name__ == "__main__":
    main()
