"""Reproducible benchmarks: `make bench` (python -m bench.run) and `make bench-quick`."""
