#!/usr/bin/env bash
# make test after ruff: pytest on PYTEST_WORKERS pytest-xdist workers (0: in one process), and
# beside it the layer contracts (import-linter) and pyright, whose report follows pytest's.
# pytest mostly waits on its services, so the checks cost it little. Fails if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
workers=${PYTEST_WORKERS:-3}

checks_log=$(mktemp)
# The checks run in a session of their own, so that Ctrl-C or a CI timeout ends them too.
setsid --wait bash -c '.venv/bin/lint-imports && node_modules/.bin/pyright' >"$checks_log" 2>&1 &
checks=$!
trap 'rm -f "$checks_log"' EXIT
trap 'kill -- -"$checks" 2>/dev/null; exit 130' INT TERM HUP

echo "==> pytest ($workers workers; layer contracts and pyright run beside it)"
# loadfile: a module's tests stay on one worker, so its module fixtures start once; the
# longest modules go first (tests/conftest.py LONGEST_FIRST), in collection order.
.venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder
tests=$?
# Exit 5 means pytest collected nothing: that is a broken suite, never a pass.
if [ "$tests" -eq 5 ]; then
  echo "pytest collected no tests" >&2
fi

wait "$checks"
checked=$?
echo "==> layers and types"
cat "$checks_log"

if [ "$tests" -ne 0 ] || [ "$checked" -ne 0 ]; then
  [ "$tests" -ne 0 ] && echo "make test: pytest failed (exit $tests)" >&2
  [ "$checked" -ne 0 ] && echo "make test: layer contracts or pyright failed (see above)" >&2
  exit 1
fi
