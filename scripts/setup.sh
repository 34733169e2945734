#!/usr/bin/env bash
# Set up transmute from a fresh clone: ffmpeg and gifsicle (through apt-get or brew when missing), then a
# virtualenv in .venv with transmute installed. Safe to run again; it only does what is missing.
#   ./scripts/setup.sh                what `transmute serve` and `transmute convert` need
#   ./scripts/setup.sh --distributed  plus the RabbitMQ, PostgreSQL and S3 clients (`transmute api`, `worker`)
#   ./scripts/setup.sh --test         plus the test and lint tools (what scripts/test.sh runs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

extras=""
case "${1:-}" in
    "") ;;
    --distributed) extras="[distributed]" ;;
    --test) extras="[distributed,test]" ;;
    *) echo "setup: unknown option ${1}; use --distributed or --test." >&2; exit 2 ;;
esac

missing=()
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    missing+=(ffmpeg)
fi
# chromium: the web page's tests drive Debian's browser (Playwright never downloads one of its own).
if [ "$extras" = "[distributed,test]" ] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
# gifsicle: the GIF format's `lossy` and `colors` (2-3) options, and its smaller colour tables.
command -v gifsicle >/dev/null 2>&1 || missing+=(gifsicle)
# redis-server: the tests of the Redis fall-back start (and stop) a Redis of their own (only with --test).
if [ "$extras" = "[distributed,test]" ]; then
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    install_programs "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: transmute needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and run this again." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Install only when pyproject.toml changed since the last install of these extras (keeps repeated runs fast).
stamp=".venv/.transmute-installed${extras//[^a-z,]/}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e ".${extras}" >&2
    touch "$stamp"
fi
# An editable install leaves transmute's own modules uncompiled: where Python may not write bytecode
# (PYTHONDONTWRITEBYTECODE), every command would compile them again (about 0.07 s of each start).
.venv/bin/python -m compileall -q transmute >/dev/null
echo "setup: ready ($(ffmpeg -version | head -n1 | cut -d' ' -f1-3); $(.venv/bin/python --version))" >&2
