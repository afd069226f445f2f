# One command per habit. `make` alone prints this help.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test test-unit test-integration test-e2e gallery test-faults lint format bench bench-report bench-audit bench-quick soak eval-triage clean

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## Run web + worker + beat on the embedded default (SQLite, no Redis, console SMS)
	$(BIN)/recovery run

test: $(STAMP) ## Run every test (integration tests skip without PostgreSQL/Redis unless CI)
	$(BIN)/pytest tests/unit
	$(BIN)/pytest tests/integration
	$(BIN)/pytest tests/e2e
	$(BIN)/pytest tests/faults

test-unit: $(STAMP) ## Fast unit tests only
	$(BIN)/pytest tests/unit

test-integration: $(STAMP) ## Real-stack tests: PostgreSQL, Redis, Celery worker, gunicorn
	$(BIN)/pytest tests/integration

test-e2e: $(STAMP) ## Browser tests: headless Chromium on the staff pages
	$(BIN)/pytest tests/e2e

gallery: $(STAMP) ## Every page at 1280 and 390 px as PNGs in var/gallery (GALLERY=dir for another)
	RECOVERY_E2E_SHOTS=$(or $(GALLERY),var/gallery) $(BIN)/pytest tests/e2e/test_gallery_browser.py

test-faults: $(STAMP) ## The real stack under faults: killed worker, hung provider, cut database, PostgreSQL and Redis restarted
	$(BIN)/pytest tests/faults

lint: $(STAMP) ## ruff format --check, ruff check, mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff format and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Full benchmark (minutes); writes bench/results.md and bench/leak_audit_results.md
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.leak_audit

bench-audit: $(STAMP) ## The leak audit on 100,000 and 1,000,000 call-log rows: time, peak memory
	$(BIN)/python -m bench.leak_audit

bench-report: $(STAMP) ## The recovery report's page, API and CSV on 1,000,000 episodes; writes bench/report_results.md
	$(BIN)/python -m bench.report_service

bench-quick: $(STAMP) ## A few seconds of each benchmark, to check they run
	$(BIN)/python -m bench.run --quick
	$(BIN)/python -m bench.leak_audit --quick

soak: $(STAMP) ## An hour of `recovery run` under a missed call every 5 s; must stay up
	$(BIN)/python -m bench.soak

eval-triage: $(STAMP) ## Triage on the labelled corpus: emergency recall, routine paged, per language
	$(BIN)/python -m tests.triage.evaluate

clean: ## Remove the virtualenv and local data (var/)
	rm -rf $(VENV) var
