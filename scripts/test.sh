#!/usr/bin/env bash
# Run every test: set up what is missing, check the style, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/pytest -q "$@"
