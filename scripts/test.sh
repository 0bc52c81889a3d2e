#!/usr/bin/env bash
# `make test`: the test services, then two passes, then the services stopped (also on failure).
#   pass 1: every test on the embedded default (SQLite + a local folder), and the PostgreSQL tests;
#   pass 2: the integration tests on the shared backend (each test its own PostgreSQL database and
#           S3 prefix; FMHUB_TEST_BACKEND=shared, see tests/shared_backend.py).
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

FMHUB_TEST_BACKEND=shared "$PY" -m pytest -q tests/integration -m "not browser and not postgres" "$@"
pass2=$?
end=$(date +%s)
echo "test: pass 2 (PostgreSQL + S3) exit $pass2 in $((end - mid)) s"

[ "$pass1" = 0 ] && [ "$pass2" = 0 ]
