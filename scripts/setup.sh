#!/usr/bin/env bash
# Set up transmute from a fresh clone: ffmpeg (a system package), then a virtualenv in .venv with
# transmute and its test tools installed. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_ffmpeg() { ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; }

if need_ffmpeg; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "setup: installing ffmpeg with apt-get" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install ffmpeg
    else
        echo "setup: ffmpeg is missing. Install ffmpeg 5 or newer (it provides ffmpeg and ffprobe), then run this again." >&2
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
