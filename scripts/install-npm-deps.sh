#!/usr/bin/env bash
# Installs the npm modules of the end-to-end tests (tests/e2e: ws and
# playwright-core, pinned by tests/e2e/package-lock.json) into
# tests/e2e/node_modules with `npm ci`, when it is missing or older than
# package-lock.json. Idempotent; `make test` runs it before ctest.
# Downloads no browser: the tests drive Debian's /usr/bin/chromium.
# If npm fails (no network, say), it warns and exits 0, so the rest of
# `make test` still runs; the e2e tests then fail, saying what is missing.
set -euo pipefail
cd "$(dirname "$0")/../tests/e2e"

stamp=node_modules/.wsreg-npm-ci  # written after a complete npm ci
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "wsreg: npm not found; run scripts/install-deps.sh (as root) first" >&2
  exit 0
fi

echo "wsreg: installing the e2e tests' npm modules (npm ci in tests/e2e)" >&2
if PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error; then
  touch "$stamp"
else
  echo "wsreg: npm ci failed (is the npm registry reachable?); the e2e tests will fail" \
       "until it succeeds: run scripts/install-npm-deps.sh again when online" >&2
fi
