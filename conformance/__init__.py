"""Conformance runner: executes the cases of a Kestra corpus manifest against Celestra.

* :mod:`.manifest` loads the cases (shared inputs, variants, runs, steps); pure Python.
* :mod:`.matchers` compares an expected value with an actual one using the manifest's matcher
  vocabulary (``contains``, ``regex``, ``<descriptions>``...); pure Python.
* :mod:`.expectations` checks execution-level expectations (``state``, ``taskRuns``, ``logs``...)
  against plain execution JSON; pure Python.
* :mod:`.runner` drives each case through Celestra's services, API and CLI (needs Django).
"""
from __future__ import annotations
