"""transmute's benchmark suite (issue 7): `scripts/bench.sh`, or `.venv/bin/python -m bench [--smoke]`.

Every figure is a ratio against a reference measured in the same run; see docs/benchmarks.md.
"""
