#!/usr/bin/env bash
# Run every test: set up what is missing (the test tools, and wrk for the benchmark smoke test), check the
# style, then the whole suite: two test processes (pytest-xdist), then, alone, the tests marked `serial`
# (they restart the machine's RabbitMQ under the others' feet). Arguments go to pytest instead (one run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
./scripts/setup.sh --test
command -v wrk >/dev/null 2>&1 || install_programs wrk
.venv/bin/ruff check .
if [ "$#" -gt 0 ]; then
    exec .venv/bin/pytest -q "$@"
fi
.venv/bin/pytest -q -n 2 -m "not serial" --durations 15
.venv/bin/pytest -q -m serial
