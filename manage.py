#!/usr/bin/env python
"""Django's command-line utility for Celestra (the installed ``celestra`` command does the same)."""
from __future__ import annotations

import sys

if __name__ == "__main__":
    from orchestrator.cli import main

    main(sys.argv[1:], prog=sys.argv[0])
