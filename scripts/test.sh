#!/usr/bin/env bash
# Install keyops with its test tools into .venv (if needed) and run the whole suite.
# The suite runs every API test on SQLite and on PostgreSQL (KEYOPS_TEST_PG_ADMIN_URL,
# default postgresql://postgres@127.0.0.1:5432/postgres); without a reachable
# PostgreSQL that half is skipped with the reason, unless CI=true, where it fails.
#
# With no arguments the suite runs as two pytest processes side by side: the tests that
# run on PostgreSQL (every test whose id names "postgresql") and all the others. The two
# sets are complementary, so every test runs exactly once; each process makes its own
# databases. KEYOPS_TEST_JOBS=1 runs them one after the other instead. With arguments,
# they are handed to one pytest as they are (bash scripts/test.sh tests/api -k jwk).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
if [ "$#" -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi

groups=("not postgresql" "postgresql")
if [ "${KEYOPS_TEST_JOBS:-2}" = "1" ]; then
    status=0
    for group in "${groups[@]}"; do
        echo "== pytest -k '$group'"
        "${pytest[@]}" -k "$group" || status=1
    done
    exit "$status"
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for i in "${!groups[@]}"; do
    "${pytest[@]}" -k "${groups[$i]}" >"$logs/$i.log" 2>&1 &
    pids+=("$!")
done
status=0
for i in "${!groups[@]}"; do
    wait "${pids[$i]}" || status=1
    echo "== pytest -k '${groups[$i]}'"
    cat "$logs/$i.log"
done
exit "$status"
