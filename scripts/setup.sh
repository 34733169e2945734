#!/usr/bin/env bash
# Set up transmute from a fresh clone: the system programs it needs (ffmpeg to convert; wrk, which the
# benchmark suite and its CI smoke test drive), then a virtualenv in .venv with transmute and its test
# tools installed. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)

if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "setup: installing ${missing[*]} with apt-get" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install "${missing[@]}"
    else
        echo "setup: missing ${missing[*]}. Install ffmpeg 5 or newer (it provides ffmpeg and ffprobe) and wrk," \
             "then run this again." >&2
        exit 1
    fi
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: transmute needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and run this again." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Install only when pyproject.toml changed since the last install (keeps repeated runs fast).
stamp=.venv/.transmute-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e ".[test]" >&2
    touch "$stamp"
fi
echo "setup: ready ($(ffmpeg -version | head -n1 | cut -d' ' -f1-3); $(.venv/bin/python --version))" >&2
