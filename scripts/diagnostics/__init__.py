"""One-off diagnostics whose results are committed under ``results/`` (each table names its script),
and the reports of the GPU measurement sessions (``benchmarks/gpu_*.sh``). Nothing in the pipeline
runs them; run from the repository root as ``python -m scripts.diagnostics.<name>`` (e.g.
``python -m scripts.diagnostics.head_seeds --help``) to check or extend a committed result.
"""
