#!/usr/bin/env bash
# `make test`: the test services, then two passes, then the services stopped (also on failure).
#   pass 1: every test on the embedded default (SQLite + a local folder), the PostgreSQL tests and the
#           Ray tests (the test Ray head; the Ray Train bucket test uses the S3 server);
#   pass 2: the integration tests on the shared backend (each test its own PostgreSQL database and
#           S3 prefix; FMHUB_TEST_BACKEND=shared, see tests/shared_backend.py), less PASS2_SKIP.
# Services missing fail the run here (FMHUB_REQUIRE_SERVICES=1) instead of skipping their tests.
# Usage: scripts/test.sh [extra pytest arguments for both passes]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${FMHUB_TEST_PYTHON:-.venv/bin/python}
export FMHUB_TEST_PYTHON=$PY HF_HUB_OFFLINE=1 FMHUB_REQUIRE_SERVICES=1
mkdir -p test-output

trap 'scripts/test-services.sh stop' EXIT
scripts/test-services.sh start || { echo "test: the test services did not start"; exit 1; }
eval "$(scripts/test-services.sh env)"

start=$(date +%s)
"$PY" -m pytest -q "$@"
pass1=$?
mid=$(date +%s)
echo "test: pass 1 (SQLite + local folder) exit $pass1 in $((mid - start)) s"

# Pass 2 leaves out what trains real models or reads data files the same way on either backend
# (pass 1 runs them): about 5 of its 14 minutes on 2 cores.
PASS2_SKIP=(
  tests/integration/test_smoke_runs.py
  tests/integration/test_shared_datasets.py
  tests/integration/test_cli_finetune.py::test_other_tasks_few_steps_on_real_data
  tests/integration/test_cli_finetune.py::test_sequence_tasks_few_steps_on_real_data
  tests/integration/test_cli_finetune.py::test_smollm2_from_its_gguf_package_fine_tunes_and_evaluates
  "tests/integration/test_examples.py::test_notebook_runs_against_a_server[token-classification]"
  "tests/integration/test_examples.py::test_notebook_runs_against_a_server[question-answering]"
  "tests/integration/test_examples.py::test_notebook_runs_against_a_server[summarization]"
  "tests/integration/test_examples.py::test_notebook_runs_against_a_server[translation]"
)
FMHUB_TEST_BACKEND=shared "$PY" -m pytest -q tests/integration -m "not browser and not postgres and not ray" \
  "${PASS2_SKIP[@]/#/--deselect=}" "$@"
pass2=$?
end=$(date +%s)
echo "test: pass 2 (PostgreSQL + S3) exit $pass2 in $((end - mid)) s"

[ "$pass1" = 0 ] && [ "$pass2" = 0 ]
