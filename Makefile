# Tessera: `make run` serves the demo on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench migrate seed clean-dev

$(VENV)/.installed-run: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed-run
	$(PIP) install --quiet -r requirements-test.txt
	touch $@

migrate: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput

seed: migrate
	test -f var/passes/pass-certificate.pem || $(PY) manage.py make_dev_pass_certificates
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_engagement_demo

run: seed
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) ./scripts/serve-dev

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

# Every benchmark in one run against gunicorn + the local PostgreSQL and Redis, with the pgbench
# floor; writes bench/results.json. Needs wrk and pgbench (Debian packages). BENCH_ARGS=--quick for a
# short smoke run.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) \
		|| { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean-dev:
	rm -rf var/tessera.sqlite3* var/celery-broker.sqlite3*
