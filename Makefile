# Auterity AI Router: `make run` sets up and starts everything, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test setup lint format migrate seed clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

# DEBUG defaults to true here, as for `make run`: seed_demo refuses the default admin password
# with DEBUG off (set DEMO_ADMIN_PASSWORD then).
seed: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo

# Web (granian, http://127.0.0.1:8000), provider simulator (:9100), Celery worker and beat
# (schedules in the database, editable in the admin), all under honcho (Procfile); once the
# web server answers, the banner prints the admin login and the demo key, which seed_demo keeps
# across runs in var/demo-api-key. Ctrl-C stops them together.
run: seed
	$(PY) manage.py collectstatic --noinput -v0
	DEBUG=$${DEBUG:-true} $(VENV)/bin/honcho start

# SQLite unless DATABASE_URL is set (CI sets it to PostgreSQL).
test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/ staticfiles/ .pytest_cache
