# Runnel — every command a user or CI needs. Tools are installed into .tools/ by the targets themselves.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
EMULATOR_VENV := $(TOOLS)/emulator
LAMBDA_VENV := $(TOOLS)/lambda
CHECKOV_VENV := $(TOOLS)/checkov
BENCH_VENV := $(TOOLS)/bench
CARGO_FUZZ := $(TOOLS)/cargo-fuzz/bin/cargo-fuzz
CARGO_FUZZ_VERSION := 0.13.2
# make fuzz: seconds per target.
FUZZ_SECONDS ?= 300
SPARK_VENV := $(TOOLS)/spark
FLINK_VENV := $(TOOLS)/flink
# PyFlink 2.3 runs on Python 3.11 and Java 17.
FLINK_PYTHON ?= python3.11
# Glue 5.0 runs Python 3.11 (and Spark 3.5.4, pinned in tools/spark.txt).
SPARK_PYTHON ?= python3.11
# The Python side of the benchmarks is a Python 3.11 Lambda handler.
BENCH_PYTHON ?= python3.11
export PATH := $(CURDIR)/$(LAMBDA_VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

.PHONY: demo test disk-check bench tools lint unit fuzz fuzz-smoke faults glue-check flink-check infra-check scaffold-check sam-build deploy-test local-tools test-big clean-tools

## test: every check and every test, against a private emulator started and stopped here.
## Builds are not incremental here: one pass needs no incremental cache, and it would double the
## disk a fresh clone uses (about 15 GB free are needed).
test: export CARGO_INCREMENTAL := 0
test: disk-check tools lint infra-check
	scripts/with-emulator cargo test --workspace --all-targets
	$(MAKE) fuzz-smoke
	$(MAKE) glue-check
	$(MAKE) flink-check
	$(MAKE) scaffold-check
	$(MAKE) sam-build
	$(MAKE) deploy-test
	$(MAKE) local-tools
	scripts/faults 3
	scripts/e2e

disk-check:
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); if [ "$$avail" -lt 15 ]; then echo "make test: warning: only $${avail} GB free here; a fresh clone's builds need about 15 GB" >&2; fi

## deploy-test: deploy the built template (with a FIFO readings queue and a readings table) to a fresh
## emulator and check what it created.
deploy-test: tools
	scripts/with-emulator bash -c 'RUNNEL_PARAMETERS="ReadingsQueueType=fifo ReadingsTableStream=true ReadingsFirehose=true IngestTrigger=sqs" scripts/deploy-emulator runnel-emu && $(LAMBDA_VENV)/bin/python -m unittest -v infra/tests/test_deployed.py'

## local-tools: the built functions under `sam local invoke` / `start-lambda` (in a Docker engine
## from scripts/with-docker), `cargo lambda watch` / `invoke` and `cargo lambda deploy`, against
## the emulator.
local-tools: tools
	scripts/with-docker --optional scripts/with-emulator $(LAMBDA_VENV)/bin/python -m unittest -v infra/tests/test_local_tools.py

## infra-check: the SAM template passes sam validate --lint, cfn-lint and checkov.
infra-check: tools
	cd infra && SAM_CLI_TELEMETRY=0 sam validate --lint --region us-east-1 -t template.yaml
	cd infra && cfn-lint template.yaml
	cd infra && BC_SKIP_MAPPING=TRUE ../$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet
	@# checkov drops resources whose condition is false with the defaults: check the optional ones too.
	mkdir -p infra/.aws-sam && scripts/template-with-options infra/template.yaml infra/.aws-sam/template-all-options.yaml ReadingsQueueType=fifo ReadingsTableStream=true ReadingsFirehose=true IngestTrigger=sqs TumblingWindowSeconds=60 \
	  KafkaBootstrapServers=b-1.kafka.example.com:9096 KafkaSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-AbCdEf
	cd infra/.aws-sam && BC_SKIP_MAPPING=TRUE ../../$(CHECKOV_VENV)/bin/checkov -f template-all-options.yaml --framework cloudformation --compact --quiet

## scaffold-check: `runnel new` projects (kinesis, s3) lint, test, validate and run on the emulator.
scaffold-check: tools
	scripts/scaffold-check

## sam-build: sam build (release, x86_64 here) and check a bootstrap per function.
sam-build: tools
	cd infra && SAM_CLI_TELEMETRY=0 sam build --parameter-overrides Architecture=x86_64 --no-cached
	scripts/check-sam-build infra/.aws-sam/build

## glue-check: the Glue jobs' Spark code in a local Spark session (local[2]) on real output of
## the functions, produced on the emulator (they are built on first use, as by cargo lambda watch).
glue-check: tools $(SPARK_VENV)/.installed
	@command -v java >/dev/null || { echo "glue-check: java not found; Spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	scripts/with-emulator $(SPARK_VENV)/bin/python -W ignore::ResourceWarning -m unittest -v infra/tests/test_glue_jobs.py

$(SPARK_VENV)/.installed: tools/spark.txt
	@command -v $(SPARK_PYTHON) >/dev/null || { echo "glue-check: $(SPARK_PYTHON) not found; install Python 3.11 or set SPARK_PYTHON" >&2; exit 1; }
	PYTHON=$(SPARK_PYTHON) scripts/venv $(SPARK_VENV) tools/spark.txt

## flink-check: the device_minute aggregate computed by the pipeline (panes merged) against the
## same tumbling-window GROUP BY in Flink SQL (PyFlink, local mini cluster) over the same readings.
flink-check: $(FLINK_VENV)/.installed
	scripts/flink-check

$(FLINK_VENV)/.installed: tools/flink.txt
	@command -v $(FLINK_PYTHON) >/dev/null || { echo "flink-check: $(FLINK_PYTHON) not found; install Python 3.11 or set FLINK_PYTHON" >&2; exit 1; }
	PYTHON=$(FLINK_PYTHON) scripts/venv $(FLINK_VENV) tools/flink.txt

## fuzz-smoke: every fuzz target for 6 s (about a minute in all) from the seeds and saved crashes.
fuzz-smoke: $(CARGO_FUZZ)
	CARGO_FUZZ=$(CURDIR)/$(CARGO_FUZZ) scripts/fuzz 6

## fuzz: long runs, FUZZ_SECONDS per target (default 300); the corpus grows in fuzz/corpus/.
fuzz: $(CARGO_FUZZ)
	CARGO_FUZZ=$(CURDIR)/$(CARGO_FUZZ) scripts/fuzz $(FUZZ_SECONDS)

$(CARGO_FUZZ):
	cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS)/cargo-fuzz

## faults: the fault campaign, FAULTS_RUNS seeded runs (default 100; FAULTS_SEED picks them): S3
## faults through a proxy and the function killed mid-run; prints "N runs, L lost, D duplicated".
FAULTS_RUNS ?= 100
faults: tools sam-build
	scripts/faults $(FAULTS_RUNS)

## test-big: the streaming ingest test on a 500 MB input (slow).
test-big: tools
	RUNNEL_BIG_INPUT_MB=500 scripts/with-emulator cargo test --release -p runnel-tests --test ingest large -- --nocapture

## demo: the whole pipeline on a local emulator, with a summary; fails loudly on a wrong count.
demo: tools sam-build $(SPARK_VENV)/.installed
	scripts/demo

## bench: every benchmark in one run, printed with the targets (BENCHMARKS.md); ~30 min cold.
bench: tools sam-build $(SPARK_VENV)/.installed $(BENCH_VENV)/.installed $(FLINK_VENV)/.installed
	scripts/bench

$(BENCH_VENV)/.installed: tools/bench.txt
	@command -v $(BENCH_PYTHON) >/dev/null || { echo "bench: $(BENCH_PYTHON) not found; install Python 3.11 or set BENCH_PYTHON" >&2; exit 1; }
	PYTHON=$(BENCH_PYTHON) scripts/venv $(BENCH_VENV) tools/bench.txt

## tools: pinned Python tools in project venvs (a fast no-op when already installed).
tools: $(EMULATOR_VENV)/.installed $(LAMBDA_VENV)/.installed $(CHECKOV_VENV)/.installed

$(EMULATOR_VENV)/.installed: tools/emulator.txt
	scripts/venv $(EMULATOR_VENV) tools/emulator.txt

$(LAMBDA_VENV)/.installed: tools/lambda.txt
	scripts/venv $(LAMBDA_VENV) tools/lambda.txt

$(CHECKOV_VENV)/.installed: tools/checkov.txt
	scripts/venv $(CHECKOV_VENV) tools/checkov.txt

## lint: formatting, clippy and the framework's docs, warnings are errors; runnel also alone
## with its default features (no app compiled in) and with each app's feature alone.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p runnel --lib -- -D warnings
	@# Each app alone: the compiler keeps the rule that apps do not use each other (the default
	@# build above shows that nothing else uses them).
	for app in alert glue producer replay eventbridge; do cargo clippy -q -p runnel --lib --features $$app -- -D warnings || exit 1; done
	RUSTDOCFLAGS="-D warnings" cargo doc -p runnel --no-deps --all-features

## unit: unit tests only (no emulator needed).
unit:
	cargo test --workspace --lib --bins

clean-tools:
	rm -rf $(TOOLS)
