"""Diagnostics, reports and the shipped model's training: run from the repository root as
``python -m scripts.<name>`` (e.g. ``python -m scripts.head_seeds --help``). They use the
library's public modules and write tables through :func:`amsnet_lib.report.tables.write_table`.
"""
