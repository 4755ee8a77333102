# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8501
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test test-fast check lint format bench install lock clean deploy-local deploy-stop deploy-status

LOCK    = requirements.lock
RUN_STAMP = $(VENV)/.installed-run

# Running needs only the package; developing adds the [dev] extras. Both pin to $(LOCK).
$(RUN_STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

## Migrate, load the demo data into an empty database, and serve the app on http://localhost:$(PORT)
run: $(RUN_STAMP)
	$(BIN)/vru db upgrade
	$(BIN)/vru seed --if-empty --with-demo-users
	$(BIN)/vru serve --port $(PORT)

## The gates CI enforces before the tests: lint, format, types
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## The gates, then every test with coverage of registry/ (the floor is fail_under in pyproject.toml);
## on PostgreSQL too when VRU_TEST_POSTGRES_URL is set (CI sets it)
test: check
	$(BIN)/python -m pytest -n auto --cov --cov-report=term:skip-covered

## The quick lane while working: everything not marked slow, on SQLite only
test-fast: $(STAMP)
	VRU_TEST_POSTGRES_URL= $(BIN)/python -m pytest -n auto -m "not slow" -q

## Re-pin $(LOCK) from a fresh environment after changing dependencies in pyproject.toml
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## N app processes behind a private nginx on PORT, on the PostgreSQL in $VRU_DATABASE_URL
WORKERS ?= 2
deploy-local: $(RUN_STAMP)
	VRU=$(abspath $(BIN))/vru PYTHON=$(abspath $(BIN))/python deploy/deploy.sh start $(WORKERS) $(PORT)

deploy-stop:
	deploy/deploy.sh stop

deploy-status:
	deploy/deploy.sh status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
