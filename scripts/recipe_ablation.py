#!/usr/bin/env python
"""What carries the tuned recipe's gain: the recipe ablation table and figure, from the seeds trained so far.

    amsnet pretrain --studies recipe_ablation --no-loso --seeds 0 --fusion                 # seed 0 of every variant
    amsnet pretrain --studies recipe_ablation --no-loso --models frlm --seeds 1 2 --fusion  # FRLM's seeds 1 and 2
    python -m scripts.recipe_ablation                    # the table and figure: each row over the seeds finished

The same table and figure as notebook 03 writes (``Session.run_recipe_ablation``, which
``./run_all.sh`` runs), without the rest of the notebook: ``results/tables/recipe_ablation_emodb_paper``
and ``results/figures/recipe_ablation_emodb_paper.png``. The study is
``studies.recipe_ablation_study`` (about 9 CPU-hours of stage-1 trainings for its three seeds on the
2-core CPU); ``--train`` trains whatever of it the run store lacks first.
"""
from __future__ import annotations

import argparse
import sys

from amsnet_lib.report import plotting, recipe_ablation, session


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", action="store_true", help="also train what the run store lacks (default: report only)")
    p.add_argument("--data-dir", default=None, help="EmoDB folder (default: $AMSNET_EMODB_DIR, else ./data/emodb)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--results", default=None, help="results folder: tables/ and figures/ (default: ./results)")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    args = p.parse_args(argv)

    s = session.setup("emodb", emodb_dir=args.data_dir, protocol="paper", profile=args.profile, run_dir=args.run_dir,
                      results_dir=args.results, train=args.train)
    for c, table in s.run_recipe_ablation(["recipe_ablation"]).items():
        print(table.to_string(index=False))
        s.save_table(table, "recipe_ablation", c, caption=f"{recipe_ablation.CAPTION}, {c} (protocol {s.protocol})",
                     notes=recipe_ablation.NOTES)
        figure = s.figures_dir / f"{s.name('recipe_ablation', c)}.png"
        drawn = plotting.recipe_ablation(table, title=s.title(recipe_ablation.CAPTION, c), save=figure)
        print(f"wrote {s.tables_dir / s.name('recipe_ablation', c)}.md" + (f" and {figure}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
