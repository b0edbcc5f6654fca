#!/usr/bin/env bash
# Install keyops with its test tools into .venv (if needed) and run the whole suite.
# The suite runs every API test on SQLite and on PostgreSQL (KEYOPS_TEST_PG_ADMIN_URL,
# default postgresql://postgres@127.0.0.1:5432/postgres); without a reachable
# PostgreSQL that half is skipped with the reason, unless CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
