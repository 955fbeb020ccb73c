"""Settings of the benchmark's Celestra processes: the production settings, plus the step timer.

``bench/run.py`` starts ``manage.py server executor|worker`` with ``DJANGO_SETTINGS_MODULE`` set
to this module. The only difference with ``orchestrator.settings`` is that the Celery worker
imports :mod:`bench.instrument` at start-up; it records the duration of each executor step when
``CELESTRA_BENCH_STEP_LOG`` is set.
"""
from orchestrator.settings import *  # noqa: F403

CELERY_IMPORTS = ["bench.instrument"]
