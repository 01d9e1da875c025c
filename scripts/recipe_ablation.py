#!/usr/bin/env python
"""What carries the tuned recipe's gain: the recipe ablation table, from the seeds trained so far.

    amsnet pretrain --studies recipe_ablation --no-loso --seeds 0 --variants without   # seed 0 of every variant
    python -m scripts.recipe_ablation --seeds 0          # then the table (trains only the cheap fusion heads)
    python -m scripts.recipe_ablation                    # seeds 0, 1, 2: the study as registered

The study is ``studies.recipe_ablation_study`` (FRLM and AMSNet under the tuned recipe with each
component removed in turn; URLM keeps its paper training, so it has nothing to remove), ``[paper]``.
Its stage-1 trainings are the expensive part (about 9 CPU-hours for three seeds on the 2-core CPU);
``amsnet pretrain --seeds`` trains them seed by seed, and this script reports the seeds given, each
experiment's folds read back from the run store (``--train`` also trains what is missing, the fusion
heads of AMSNet's variants in seconds each; without it, an unfinished variant says "not run").

Writes ``results/tables/recipe_ablation_emodb_paper.{csv,md}``: WA and UA (%) mean and standard
deviation over the folds (and the seeds given), and Δ against the full tuned recipe of the same
model, seeds and folds. Test folds are read once per experiment, as for every row of the tables; the
table selects nothing (the recipe was chosen on validation, docs/RECIPE.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd

from amsnet_lib.corpora import load_corpus
from amsnet_lib.errors import AmsnetError
from amsnet_lib.features import extract_features
from amsnet_lib.paper import ABLATION_LABELS
from amsnet_lib.paths import REPO_ROOT
from amsnet_lib.studies import recipe_ablation_study
from amsnet_lib.tables import NOT_RUN, write_table
from amsnet_lib.training import run_experiment

FULL = "all components"


def ablation_rows(results: dict, seeds: tuple[int, ...]) -> pd.DataFrame:
    """One row per (model, variant): WA / UA mean ± std (%) over the folds and ``seeds``, Δ against
    the model's full tuned recipe; ``results`` maps (model, component) -> ExperimentResult or None."""
    rows, full = [], {}
    for (model, component), res in results.items():
        row = {"model": ABLATION_LABELS.get(model, model), "tuned recipe": component, "seeds": ", ".join(map(str, seeds))}
        if res is None:
            rows.append({**row, "WA [paper] (%)": NOT_RUN})
            continue
        s = res.summary()
        if component == FULL:
            full[model] = s
        ref = full.get(model)
        rows.append({**row, "WA [paper] (%)": s["wa"], "WA std": s["wa_std"], "UA [paper] (%)": s["ua"], "UA std": s["ua_std"],
                     "ΔWA vs all components": round(s["wa"] - ref["wa"], 2) if ref and component != FULL else None,
                     "ΔUA vs all components": round(s["ua"] - ref["ua"], 2) if ref and component != FULL else None,
                     "folds": s["n_folds"]})
    out = pd.DataFrame(rows)
    return out.astype({"folds": "Int64"}) if "folds" in out else out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds to report (default: the study's)")
    p.add_argument("--train", action="store_true", help="also train what the run store lacks (default: report only)")
    p.add_argument("--train-only", nargs="+", default=None, metavar="TEXT",
                   help="with --train: train only the variants whose label contains one of these (e.g. 'amsnet without mixup')")
    p.add_argument("--data-dir", default=None, help="EmoDB folder (default: $AMSNET_EMODB_DIR, else ./data/emodb)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "tables"), help="folder of the table")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    args = p.parse_args(argv)

    study = recipe_ablation_study("emodb", "paper", args.profile)
    seeds = tuple(args.seeds) if args.seeds else study[0].seeds
    table = load_corpus("emodb", data_dir=args.data_dir)
    results, features = {}, {}
    for cfg in study:
        cfg = dataclasses.replace(cfg, seeds=seeds)
        if cfg.features not in features:  # every variant shares the features: read from the cache once
            features[cfg.features] = extract_features(table, cfg.features, progress=False)
        feats = features[cfg.features]
        component = cfg.variant.split("without ", 1)[1] if "without " in cfg.variant else FULL
        label = (cfg.model, component if component == FULL else f"without {component}")
        train = args.train and (not args.train_only or any(t in f"{cfg.model} {label[1]}" for t in args.train_only))
        try:
            res = run_experiment(cfg, feats, store=args.run_dir, progress=False, finished_only=not train)
        except AmsnetError:
            res = None
        results[label] = None if res is None or res.missing else res
        print(f"{cfg.model} {label[1]}: " + (NOT_RUN if results[label] is None else
                                              "WA {wa:.2f} UA {ua:.2f}".format(**results[label].summary())), flush=True)
    out = ablation_rows(results, seeds)
    seeds_note = ("seeds " + ", ".join(map(str, seeds)) +
                  ("" if set(seeds) >= set(study[0].seeds) else
                   f" of the study's {', '.join(map(str, study[0].seeds))}: the other seeds are not run yet"))
    write_table(out, Path(args.out) / "recipe_ablation_emodb_paper",
                caption="The tuned recipe without each of its components, EmoDB [paper]",
                notes=[f"Regenerate: `python -m scripts.recipe_ablation{' --seeds ' + ' '.join(map(str, seeds)) if args.seeds else ''}` "
                       "(after `amsnet pretrain --studies recipe_ablation --no-loso`).",
                       f"WA, UA: mean over the 5 folds and {seeds_note}; std over folds and seeds. Δ = variant − all components, "
                       "percentage points, same folds and seeds.",
                       "URLM keeps its paper training in the tuned recipe (no URLM component to remove); AMSNet's variants "
                       "change its FRLM (and, for label smoothing, its head) only."])
    print(f"wrote {Path(args.out) / 'recipe_ablation_emodb_paper'}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
