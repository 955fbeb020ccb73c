"""``manage.py flow migrate``: lint and rewrite flow files between Kestra 1.x and 2.0 syntax.

The rewrite is :func:`orchestrator.engine.migrate.migrate` (pure, on the text); this module reads
and writes the files, checks that what it writes still parses, and reports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from orchestrator.engine.flow import FlowValidationError
from orchestrator.engine.migrate import Migration, MigrationError, migrate

GENERATIONS = {1: "1.x", 2: "2.0"}


def migrate_files(files: list[Path], to: int, write: bool, out: Callable[[str], None],
                  err: Callable[[str], None]) -> tuple[int, int]:
    """Migrate each file; returns (files that change or would change, files that failed)."""
    from orchestrator.runtime.flows import parse

    changed = failed = 0
    for path in files:
        source = path.read_text()
        try:
            result: Migration = migrate(source, to)
        except MigrationError as exc:
            failed += 1
            err(f"✘ - {path}: {exc}")
            continue
        uses = " + ".join(GENERATIONS[g] for g in sorted(result.uses)) or "either"
        if result.changed:
            try:
                parse(result.text)
            except FlowValidationError as exc:
                failed += 1
                err(f"✘ - {path}: the {GENERATIONS[to]} rewrite would not parse, nothing written: {exc}")
                continue
            changed += 1
            verb = "rewritten" if write else "would change"
            out(f"{'✎' if write else '→'} - {path} (uses {uses}): {verb} to {GENERATIONS[to]}")
            if write:
                path.write_text(result.text)
        else:
            out(f"✓ - {path} (uses {uses}): nothing to rewrite to {GENERATIONS[to]}")
        for note in result.changes:
            out(f"  - {note}")
        for note in result.problems:
            out(f"  ⚠ {note}")
    return changed, failed
