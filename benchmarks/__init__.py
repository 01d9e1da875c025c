"""Measurements of speed and robustness: run from the repository root as ``python -m benchmarks.<name>``
(``run_benchmarks.sh`` runs the set that writes ``results/benchmarks.md``). They use the library's
public modules only, as ``tests/test_scripts.py`` checks.
"""
