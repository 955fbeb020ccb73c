"""The jq sandbox process: reads one JSON request per line on stdin, answers one JSON line on stdout.

It runs with an empty environment (so ``$ENV`` and ``env`` are ``{}``), in an empty working
directory, under an address-space limit; the parent kills it when a program runs past its budget.
This file is run by path (``python -I _jq_child.py``), never imported by the engine.
"""
from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from typing import Any


def _limit_memory() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if limit <= 0:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not every platform lets a process lower it
        pass


def main() -> None:
    os.environ.clear()  # unsetenv() each name: jq's $ENV reads the C environment
    _limit_memory()
    import jq

    max_chars = int(sys.argv[2]) if len(sys.argv) > 2 else 10 * 1024 * 1024

    @lru_cache(maxsize=256)
    def program(text: str) -> Any:
        return jq.compile(text)

    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        try:
            compiled = program(request["p"])
        except ValueError as exc:
            answer: dict[str, Any] = {"error": "compile", "message": str(exc)}
        else:
            try:
                if "t" in request:
                    results = compiled.input_text(request["t"]).all()
                else:
                    results = compiled.input_value(request["v"]).all()
                answer = {"ok": results}
            except ValueError as exc:
                answer = {"error": "value", "message": str(exc)}
            except MemoryError:
                answer = {"error": "memory", "message": "the jq program ran out of memory"}
        try:
            text = json.dumps(answer, separators=(",", ":"))
        except MemoryError:
            text = json.dumps({"error": "memory", "message": "the jq program ran out of memory"})
        if len(text) > max_chars:
            text = json.dumps({"error": "size", "message": f"the jq result exceeds {max_chars} characters"})
        out.write(text + "\n")
        out.flush()


if __name__ == "__main__":
    main()
