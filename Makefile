# Two commands: `make run` and `make test`. Everything else here serves them.
PY := .venv/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test lint install redis clean

.venv/.installed: requirements.txt
	@scripts/ensure_system.sh
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@scripts/ensure_system.sh
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: .venv/.installed node_modules/.installed

redis:
	@scripts/ensure_redis.sh

run: install redis
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py runlocal

test: install redis
	@scripts/ensure_postgres.sh
	@scripts/ensure_chromium.sh
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/15} \
		$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	.venv/bin/ruff check .
	.venv/bin/lint-imports  # the layers and no import cycles (.importlinter)

clean:
	rm -rf var/screenshots .pytest_cache
