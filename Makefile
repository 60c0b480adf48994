# Cleared: `make run` sets everything up and runs the app; `make test` runs the suite.
SHELL := /bin/bash
PORT ?= 8000
# Exported: the app builds the links in its emails from it (CLEARED_SITE_URL).
export PORT
# Paying online: with no STRIPE_SECRET_KEY, `make run` starts localstripe (the fake
# Stripe server, online/localstripe_server.py) on STRIPE_PORT and points the app at it.
STRIPE_PORT ?= 8420
ifeq ($(strip $(STRIPE_SECRET_KEY)),)
export STRIPE_API_BASE ?= http://127.0.0.1:$(STRIPE_PORT)
endif
VENV := .venv
PY := $(VENV)/bin/python
# The first Python 3.12+ on PATH (pyenv's shims honour .python-version).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: run test install lint format bench check-python

check-python:
	@test -n "$(PYTHON)" || { echo "Cleared needs Python 3.12 or newer on PATH."; exit 1; }

$(VENV)/.installed: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@trap 'trap - INT TERM EXIT; kill 0 2>/dev/null' INT TERM EXIT; \
	if [ -z "$(STRIPE_SECRET_KEY)" ]; then \
	  $(PY) -m online.localstripe_server --port $(STRIPE_PORT) --state-file var/localstripe.pickle \
	    --webhook-secret "$${STRIPE_WEBHOOK_SECRET:-whsec_cleared_dev_only}" \
	    --webhook-url http://127.0.0.1:$(PORT)/online/stripe/webhook/ & \
	fi; \
	$(VENV)/bin/celery -A config worker --queues=celery,heartbeat --loglevel=INFO --concurrency=2 --hostname=worker@%h & \
	$(VENV)/bin/celery -A config worker --queues=webhooks --loglevel=INFO --concurrency=2 --hostname=webhooks@%h & \
	$(VENV)/bin/celery -A config beat --loglevel=INFO & \
	echo ""; \
	echo "  Cleared is running at http://127.0.0.1:$(PORT)/"; \
	echo "  Log in as rep, rep2, manager or auditor, password: demo.  Ctrl-C stops web, workers and beat."; \
	if [ -z "$(STRIPE_SECRET_KEY)" ]; then echo "  Test payments: localstripe on port $(STRIPE_PORT); pay with the card 4242 4242 4242 4242."; fi; \
	echo "  manager also needs a two-factor code: run '$(PY) manage.py demo_code' in another terminal,"; \
	echo "  or add the key CLEAREDDEMOMANAGERTWOFACTORCODES to an authenticator app."; \
	echo ""; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# make bench: issue 23's table at 100,000 deals; make bench DEALS=1000000 adds the
# 1,000,000 column; ARGS passes more (e.g. ARGS="--reuse --reuse-results 100k").
bench: install
	$(PY) bench/table.py $(if $(DEALS),--deals $(DEALS)) $(ARGS)
	$(PY) bench/processor_run.py
