"""What a maintainer runs: the README's headline from the results (``update_docs``, which
``run_all.sh`` calls), the shipped model's training (``train_shipped_model``), the recipe ablation
(``recipe_ablation``) and the environment (``setup_env.sh``). Run from the repository root as
``python -m scripts.<name>``. One-off diagnostics whose results are committed live in
:mod:`scripts.diagnostics`. They use the library's public modules and write tables through
:func:`amsnet_lib.report.tables.write_table`.
"""
