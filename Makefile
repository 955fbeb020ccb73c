# Celestra: `make run` starts the local server, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/celestra_ci
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: venv setup run test test-local test-services lint check bench conformance openapi clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

setup: venv
	$(PY) manage.py migrate -v0
	$(PY) manage.py load_flows flows

run: setup
	$(PY) manage.py server local

# Lint and checks first, then the whole suite twice: SQLite + in-process broker, then Postgres +
# Redis with real worker processes.
test: lint check setup test-local test-services

# ruff (lint) on the whole repository, mypy (strict) on the engine; see pyproject.toml
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Django's system checks, and no model change without its migration
check: venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

test-local: venv
	$(PY) -m pytest -q -p no:cacheprovider

test-services: venv
	CELESTRA_REQUIRE_SERVICES=1 DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) \
		$(PY) -m pytest -q -p no:cacheprovider

conformance: setup
	$(PY) manage.py conformance --corpus ../shared/kestra-flows --manifest ../shared/kestra-flows/manifest.yaml

# The OpenAPI document of the REST API, committed so that clients can be generated from the repository.
openapi: venv
	$(PY) manage.py spectacular --file docs/openapi.yaml

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf var
