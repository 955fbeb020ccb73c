"""Warm render cost of typical task properties with the Pebble expression engine.

Run with ``.venv/bin/python bench/bench_expressions.py``; prints microseconds per render, then the
cost of the hostile-input guards: the first ``jq`` call of a process (it starts a sandbox process)
and how long a runaway expression takes to be stopped.

``jq`` programs run in a sandbox process since the hostile-input work (no server environment, killed
at the budget): a warm ``jq`` call went from about 9 µs (in-process binding) to a pipe round trip,
about 140-230 µs on the 2-core shared development machine.
"""
from __future__ import annotations

import statistics
import sys
import time
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


RUNAWAY = {
    "jq loop `def f: f; f` (budget 1 s)": "{{ '{}' | jq('def f: f; f') }}",
    "regex `(a|aa)+$` on 41 characters (budget 1 s)": "{{ '" + "a" * 40 + "!'.matches('(a|aa)+$') }}",
    "toJson of 2**60 shared leaves": "{% set a = [1, 1] %}" + "{% set a = [a, a] %}" * 60 + "{{ a | toJson }}",
}


def first_jq_call() -> float:
    """Milliseconds of the first jq call of a process: the sandbox process starts."""
    from orchestrator.engine.expressions import _jq

    _jq.POOL.close()
    started = time.perf_counter()
    expressions.render("{{ {'a': 1} | jq('.a') }}", CONTEXT)
    return (time.perf_counter() - started) * 1000


def stopped_after(template: str) -> float:
    """Seconds until a runaway expression fails."""
    started = time.perf_counter()
    try:
        expressions.render(template, CONTEXT, deadline=time.monotonic() + 1.0)
    except expressions.ExpressionError:
        pass
    return time.perf_counter() - started


def main() -> None:
    width = max(len(name) for name in (*CASES, *RUNAWAY))
    for name, template in CASES.items():
        number = 2000 if "jq" in name or "loop" in name else 20000
        print(f"{name.ljust(width)}  {measure(template, number=number):8.2f} µs/render")
    print(f"{'first jq call of a process'.ljust(width)}  {first_jq_call():8.2f} ms")
    for name, template in RUNAWAY.items():
        print(f"{name.ljust(width)}  {stopped_after(template):8.3f} s to fail")


if __name__ == "__main__":
    main()
