# Runnel — every command a user or CI needs. Tools are installed into .tools/ by the targets themselves.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
EMULATOR_VENV := $(TOOLS)/emulator
LAMBDA_VENV := $(TOOLS)/lambda
export PATH := $(CURDIR)/$(LAMBDA_VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

.PHONY: test tools lint unit glue-check test-big clean-tools

## test: every check and every test, against a private emulator started and stopped here.
test: tools lint glue-check
	scripts/with-emulator cargo test --workspace --all-targets

## glue-check: the Glue job script compiles and its planning rules pass their tests.
glue-check:
	$(PYTHON) -m py_compile infra/glue/daily_etl.py
	$(PYTHON) -m unittest infra/glue/test_daily_etl.py

## test-big: the streaming ingest test on a 500 MB input (slow).
test-big: tools
	RUNNEL_BIG_INPUT_MB=500 scripts/with-emulator cargo test --release -p runnel-tests --test ingest large -- --nocapture

## tools: pinned Python tools in project venvs (a fast no-op when already installed).
tools: $(EMULATOR_VENV)/.installed $(LAMBDA_VENV)/.installed

$(EMULATOR_VENV)/.installed: tools/emulator.txt
	scripts/venv $(EMULATOR_VENV) tools/emulator.txt

$(LAMBDA_VENV)/.installed: tools/lambda.txt
	scripts/venv $(LAMBDA_VENV) tools/lambda.txt

## lint: formatting and clippy, warnings are errors.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## unit: unit tests only (no emulator needed).
unit:
	cargo test --workspace --lib --bins

clean-tools:
	rm -rf $(TOOLS)
