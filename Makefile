# Runnel — every command a user or CI needs. Tools are installed into .tools/ by the targets themselves.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
EMULATOR_VENV := $(TOOLS)/emulator
LAMBDA_VENV := $(TOOLS)/lambda
export PATH := $(CURDIR)/$(LAMBDA_VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

.PHONY: test tools lint unit integration clean-tools

## test: every check and every test, against a private emulator started and stopped here.
test: tools lint
	scripts/with-emulator cargo test --workspace --all-targets

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
