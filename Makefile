# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8501
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test test-sqlite lint format bench install clean deploy-local deploy-stop deploy-status

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate, load the demo data into an empty database, and serve the app on http://localhost:$(PORT)
run: $(STAMP)
	$(BIN)/vru db upgrade
	$(BIN)/vru seed --if-empty --with-demo-users
	$(BIN)/vru serve --port $(PORT)

## Every test; on PostgreSQL too when VRU_TEST_POSTGRES_URL is set (CI sets it)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

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
deploy-local: $(STAMP)
	VRU=$(abspath $(BIN))/vru PYTHON=$(abspath $(BIN))/python deploy/deploy.sh start $(WORKERS) $(PORT)

deploy-stop:
	deploy/deploy.sh stop

deploy-status:
	deploy/deploy.sh status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
