"""Benchmarks (not tests): `python -m bench.run` measures everything; see docs/BENCHMARKS.md."""
