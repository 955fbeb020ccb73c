"""The ``celestra`` command: Django's management commands under Celestra's settings.

``celestra server local``, ``celestra flow test flows/hello.yaml``, ``celestra conformance``...
take the same subcommands and options as ``manage.py``; this entry point exists so that an installed
package (``pip install .``) has a command that works outside the source tree.
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None, prog: str = "celestra") -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([prog, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover - `python -m orchestrator.cli`
    main()
