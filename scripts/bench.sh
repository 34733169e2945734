#!/usr/bin/env bash
# Run the benchmark suite (issue 7): prints the table and rewrites the results block of docs/benchmarks.md.
#   ./scripts/bench.sh            the full run (well under 15 minutes)
#   ./scripts/bench.sh --smoke    tiny clips, 1 s of wrk (what CI runs, through tests/bench/test_smoke.py)
# Other options: --only 1,3 (some figures), --json FILE, --out FILE, --keep DIR (keep logs and clips).
# Needs ffmpeg, and PostgreSQL (127.0.0.1:5432, trust) and RabbitMQ (127.0.0.1:5672, guest) for the
# distributed figures; installs wrk (the load generator) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v wrk >/dev/null 2>&1 || install_programs wrk
./scripts/setup.sh --test
exec .venv/bin/python -m bench "$@"
