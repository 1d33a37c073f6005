# orgalerts — every target creates the virtual environment and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/accounts.yaml
ACCOUNT ?=
STAMP  := $(VENV)/.installed

.PHONY: install deploy-org plan drift drift-repair onboard offboard teardown verify watch sandbox sandbox-stop \
        test corpus replay-corpus lint typecheck check bench bench-percall bench-stacksets permissions doctor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

install: $(STAMP)

## Deploy to every account of the configured OUs. On the shipped sandbox config it then proves an alert arrives.
deploy-org: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) deploy
	@if grep -q '^sandbox:' $(CONFIG); then \
		$(BIN)/orgalerts --config $(CONFIG) verify --show-message; \
	fi

plan: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) plan

## Scheduled re-run: find drift and repair it; exits non-zero on drift that could not be repaired.
drift: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) drift --repair --markdown drift-report.md

## The same as `make drift` (the name the scheduling examples use).
drift-repair: drift

onboard: $(STAMP)
	@test -n "$(ACCOUNT)" || (echo "usage: make onboard ACCOUNT=123456789012" >&2; exit 2)
	$(BIN)/orgalerts --config $(CONFIG) onboard $(ACCOUNT)

offboard: $(STAMP)
	@test -n "$(ACCOUNT)" || (echo "usage: make offboard ACCOUNT=123456789012" >&2; exit 2)
	$(BIN)/orgalerts --config $(CONFIG) offboard $(ACCOUNT)

teardown: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) teardown

verify: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) verify --show-message

watch: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) watch

doctor: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) doctor

permissions: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) permissions

sandbox: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) sandbox

sandbox-stop: $(STAMP)
	$(BIN)/orgalerts --config $(CONFIG) sandbox --stop

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile tests

## Real CloudTrail records (not in the repository) through the sandbox; fails loudly if the corpus is missing.
CORPUS ?= ../shared/corpus/cloudtrail
corpus: $(STAMP)
	@test -d "$(CORPUS)/iam" || (echo "make corpus: no CloudTrail corpus at $(CORPUS)/iam (set CORPUS=...)" >&2; exit 2)
	ORGALERTS_CORPUS="$(CORPUS)" $(BIN)/python -m pytest -s corpus_tests

## The same corpus through `orgalerts replay` (no AWS, no sandbox): per record the decision and each destination's text.
replay-corpus: $(STAMP)
	@test -d "$(CORPUS)/iam" || (echo "make replay-corpus: no CloudTrail corpus at $(CORPUS)/iam (set CORPUS=...)" >&2; exit 2)
	$(BIN)/orgalerts --config $(CONFIG) replay "$(CORPUS)/iam"

lint: $(STAMP)
	$(BIN)/ruff check orgalerts tests bench corpus_tests
	$(BIN)/ruff format --check orgalerts tests bench corpus_tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

## Writes bench/latest.md (git-ignored); to update the committed results on purpose:
## make bench BENCH_OUT=bench/RESULTS.md
BENCH_OUT ?= bench/latest.md
bench: $(STAMP)
	$(BIN)/python bench/run.py --out $(BENCH_OUT)

## Orchestrator CPU per API call, one operation at a time, back to back (prints a table; bench/percall.py)
bench-percall: $(STAMP)
	$(BIN)/python bench/percall.py

## direct vs stacksets at 10, 100, 1,000 accounts (measured with injected latency + StackSets' modelled operations).
## Writes bench/stacksets-latest.md; the committed bench/STACKSETS.md: make bench-stacksets STACKSETS_OUT=bench/STACKSETS.md
STACKSETS_OUT ?= bench/stacksets-latest.md
bench-stacksets: $(STAMP)
	$(BIN)/python bench/stacksets.py --out $(STACKSETS_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
