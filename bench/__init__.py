"""Benchmarks: each module has run() -> list of result rows; `python -m bench` runs them all."""
