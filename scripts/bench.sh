#!/usr/bin/env bash
# Run the benchmark suite (issue 7): prints the table and rewrites the results block of docs/benchmarks.md.
#   ./scripts/bench.sh            the full run (well under 15 minutes)
#   ./scripts/bench.sh --smoke    tiny clips, 1 s of wrk (what CI runs, through tests/bench/test_smoke.py)
# Other options: --only 1,3 (some figures), --json FILE, --out FILE, --keep DIR (keep logs and clips).
# Needs ffmpeg, and PostgreSQL (127.0.0.1:5432, trust) and RabbitMQ (127.0.0.1:5672, guest) for the
# distributed figures; installs wrk (the load generator) when it is missing, and gifski (figure 9's
# reference, the npm package's prebuilt binary, into .bench-tools/) when npm is there; without gifski
# figure 9 says it was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v wrk >/dev/null 2>&1 || install_programs wrk
GIFSKI_VERSION=1.7.1  # bench/gifski.py's GIFSKI_VERSION
if [ -z "${BENCH_GIFSKI:-}" ] && ! command -v gifski >/dev/null 2>&1 \
        && ! ls .bench-tools/node_modules/gifski/bin/*/gifski >/dev/null 2>&1; then
    if command -v npm >/dev/null 2>&1; then
        echo "bench: installing gifski@$GIFSKI_VERSION (npm) into .bench-tools/" >&2
        npm install --prefix .bench-tools --no-audit --no-fund --loglevel=error "gifski@$GIFSKI_VERSION" >&2 \
            || echo "bench: could not install gifski; figure 9 will be skipped" >&2
    else
        echo "bench: npm not found, so no gifski: figure 9 will be skipped (or set BENCH_GIFSKI)" >&2
    fi
fi
./scripts/setup.sh --test
exec .venv/bin/python -m bench "$@"
