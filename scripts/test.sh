#!/usr/bin/env bash
# Run every test: set up what is missing (the test tools, and wrk for the benchmark smoke test), check the
# style, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
./scripts/setup.sh --test
command -v wrk >/dev/null 2>&1 || install_programs wrk
.venv/bin/ruff check .
exec .venv/bin/pytest -q "$@"
