# Celestra: `make run` starts the local server, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/celestra_ci
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: venv setup run test test-local test-services faults browser-deps lint check bench conformance openapi clean

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
# Redis with real worker processes; then the fault suite (CI size) on servers of its own.
test: lint check setup test-local test-services faults

# ruff (lint) on the whole repository, mypy (strict) on the engine; see pyproject.toml
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Django's system checks, and no model change without its migration
check: venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# Debian's Chromium for the browser tests (tests/browser), installed from the OS packages when missing.
browser-deps:
	sh tests/browser/install_chromium.sh

test-local: venv browser-deps
	$(PY) -m pytest -q -p no:cacheprovider

# Short leases and republish delays, so that recovery tests end in seconds (docs/reliability.md).
FAST_RECOVERY := CELESTRA_LEASE_TIMEOUT=4 CELESTRA_HEARTBEAT_INTERVAL=0.5 CELESTRA_REPUBLISH_AFTER=3 \
	CELESTRA_RECONCILE_INTERVAL=1

test-services: venv browser-deps
	CELESTRA_REQUIRE_SERVICES=1 DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(FAST_RECOVERY) \
		$(PY) -m pytest -q -p no:cacheprovider

# Faults injected into real roles on a PostgreSQL cluster and a redis-server of their own (docs/reliability.md).
# CI size by default; FAULTS_SIZE=200 for a larger run, FAULTS_BROKER=amqp for RabbitMQ (127.0.0.1:5672).
FAULTS_SIZE ?= 20
FAULTS_BROKER ?= redis
faults: venv
	CELESTRA_FAULTS=1 CELESTRA_FAULTS_SIZE=$(FAULTS_SIZE) CELESTRA_FAULTS_BROKER=$(FAULTS_BROKER) \
		$(PY) -m pytest -q -p no:cacheprovider tests/faults

# The Kestra corpus beside the checkout (../shared), or one level further up (../../shared); CORPUS=dir overrides.
CORPUS ?= $(firstword $(wildcard ../shared/kestra-flows ../../shared/kestra-flows) ../shared/kestra-flows)
conformance: setup
	$(PY) manage.py conformance --corpus $(CORPUS) --manifest $(CORPUS)/manifest.yaml $(CONFORMANCE_ARGS)

# The OpenAPI document of the REST API, committed so that clients can be generated from the repository.
openapi: venv
	$(PY) manage.py spectacular --file docs/openapi.yaml

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf var
