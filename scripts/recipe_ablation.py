#!/usr/bin/env python
"""What carries the tuned recipe's gain: the recipe ablation table, from the seeds trained so far.

    amsnet pretrain --studies recipe_ablation --no-loso --seeds 0 --fusion       # seed 0 of every variant
    amsnet pretrain --studies recipe_ablation --no-loso --models frlm --seeds 1 2  # FRLM's seeds 1 and 2
    python -m scripts.recipe_ablation                    # the table: each row over the seeds finished

The study is ``studies.recipe_ablation_study`` (FRLM and AMSNet under the tuned recipe with each
component removed in turn; URLM keeps its paper training, so it has nothing to remove), ``[paper]``.
Its stage-1 trainings are the expensive part (about 9 CPU-hours for three seeds on the 2-core CPU);
``amsnet pretrain --seeds`` trains them seed by seed. This script reads the folds back from the run
store and reports each row over the seeds whose every fold is finished (``--train`` also trains what
is missing; without it, a variant with no finished seed says "not run").

Writes ``results/tables/recipe_ablation_emodb_paper.{csv,md}``: WA and UA (%) mean and standard
deviation over the folds and the row's seeds, and Δ against the full tuned recipe of the same
model over the same seeds and folds with its 95 % interval and p from the paired bootstrap of
:func:`amsnet_lib.significance.significance_table` (the same test utterances, resampled within each
fold and seed); and ``results/figures/recipe_ablation_emodb_paper.png``, those Δ and intervals. Test folds are read once per experiment, as for every row of the tables; the
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
from amsnet_lib.plotting import significance as significance_figure
from amsnet_lib.significance import significance_table
from amsnet_lib.studies import recipe_ablation_study
from amsnet_lib.tables import NOT_RUN, write_table
from amsnet_lib.training import run_experiment

FULL = "all components"


#: Columns of :func:`amsnet_lib.significance.significance_table` the table keeps (Δ = variant − all components).
SIGNIFICANCE_COLUMNS = ("ΔWA 95 % CI", "ΔUA 95 % CI", "p (UA, bootstrap)")


def ablation_rows(results: dict) -> pd.DataFrame:
    """One row per (model, variant): WA / UA mean ± std (%) over the folds and seeds, Δ against the
    model's full tuned recipe over the same seeds. ``results`` maps (model, component) to None (not
    run) or ``{"summary": ..., "reference": summary of the full recipe on the same seeds (None for
    the full recipe itself), "seeds": (...)}``, optionally with ``"significance"``: the variant's
    row of :func:`~amsnet_lib.significance.significance_table` against the full recipe, whose
    :data:`SIGNIFICANCE_COLUMNS` the row takes."""
    rows = []
    for (model, component), r in results.items():
        row = {"model": ABLATION_LABELS.get(model, model), "tuned recipe": component}
        if r is None:
            rows.append({**row, "seeds": "", "WA [paper] (%)": NOT_RUN})
            continue
        s, ref = r["summary"], r["reference"]
        rows.append({**row, "seeds": ", ".join(map(str, r["seeds"])), "WA [paper] (%)": s["wa"], "WA std": s["wa_std"],
                     "UA [paper] (%)": s["ua"], "UA std": s["ua_std"],
                     "ΔWA vs all components": round(s["wa"] - ref["wa"], 2) if ref else None,
                     "ΔUA vs all components": round(s["ua"] - ref["ua"], 2) if ref else None,
                     **{c: (r.get("significance") or {}).get(c) for c in SIGNIFICANCE_COLUMNS},
                     "folds": s["n_folds"]})
    out = pd.DataFrame(rows)
    return out.astype({"folds": "Int64"}) if "folds" in out else out


def variant_significance(variant, full) -> dict:
    """The paired bootstrap of ``variant`` against ``full`` (two :class:`ExperimentResult` over the same
    seeds and folds): :func:`~amsnet_lib.significance.significance_table`'s row, Δ = variant − full."""
    return significance_table({"variant": variant, "full": full}, "variant").iloc[0].to_dict()


def figure(rows: pd.DataFrame, path):
    """Δ UA and Δ WA of each removed component with its 95 % interval, one panel per model."""
    tables = {}
    for model, t in rows[pd.to_numeric(rows["ΔWA vs all components"], errors="coerce").notna()].groupby("model", sort=False):
        seeds = t["seeds"].iloc[0] if t["seeds"].nunique() == 1 else "see the table"
        tables[f"{model}, seeds {seeds}"] = t.rename(columns={"ΔWA vs all components": "ΔWA (pp)", "ΔUA vs all components": "ΔUA (pp)"}
                                                     ).assign(model=t["tuned recipe"])
    if tables:
        significance_figure(tables, xlabel="without the component − all components (points), 95 % interval",
                            title="The tuned recipe without each component, EmoDB [paper]", save=path)
    return path if tables else None


def _finished(cfg, feats, run_dir, seeds):
    """``cfg`` over ``seeds`` read back from the run store, or None when a fold of them is not finished."""
    if not seeds:
        return None
    try:
        res = run_experiment(dataclasses.replace(cfg, seeds=tuple(seeds)), feats, store=run_dir, progress=False,
                             finished_only=True)
    except AmsnetError:
        return None
    return None if res.missing else res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds to consider (default: the study's)")
    p.add_argument("--train", action="store_true", help="also train what the run store lacks (default: report only)")
    p.add_argument("--train-only", nargs="+", default=None, metavar="TEXT",
                   help="with --train: train only the variants whose label contains one of these (e.g. 'amsnet without mixup')")
    p.add_argument("--data-dir", default=None, help="EmoDB folder (default: $AMSNET_EMODB_DIR, else ./data/emodb)")
    p.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "tables"), help="folder of the table")
    p.add_argument("--figures", default=str(REPO_ROOT / "results" / "figures"), help="folder of the figure")
    p.add_argument("--profile", default="full", choices=["full", "quick"])
    args = p.parse_args(argv)

    study = recipe_ablation_study("emodb", "paper", args.profile)
    seeds = tuple(args.seeds) if args.seeds else study[0].seeds
    table = load_corpus("emodb", data_dir=args.data_dir)
    features, done, full = {}, {}, {}
    for cfg in study:
        if cfg.features not in features:  # every variant shares the features: read from the cache once
            features[cfg.features] = extract_features(table, cfg.features, progress=False)
        feats = features[cfg.features]
        component = cfg.variant.split("without ", 1)[1] if "without " in cfg.variant else FULL
        label = (cfg.model, component if component == FULL else f"without {component}")
        if args.train and (not args.train_only or any(t in f"{cfg.model} {label[1]}" for t in args.train_only)):
            run_experiment(dataclasses.replace(cfg, seeds=seeds), feats, store=args.run_dir, progress=False)
        # each seed on its own: a row reports the seeds whose every fold is finished
        done[label] = (cfg, [s for s in seeds if _finished(cfg, feats, args.run_dir, (s,)) is not None])
        if component == FULL:
            full[cfg.model] = label
    results = {}
    for label, (cfg, own) in done.items():
        ref_cfg, ref_seeds = done[full[label[0]]]
        common = own if label == full[label[0]] else [s for s in own if s in ref_seeds]
        res = _finished(cfg, features[cfg.features], args.run_dir, common)
        ref = None if label == full[label[0]] else _finished(ref_cfg, features[cfg.features], args.run_dir, common)
        results[label] = None if res is None else {"summary": res.summary(), "seeds": tuple(common),
                                                   "reference": None if ref is None else ref.summary(),
                                                   "significance": None if ref is None else variant_significance(res, ref)}
        print(f"{label[0]} {label[1]}: " + (NOT_RUN if res is None else
                                            "WA {wa:.2f} UA {ua:.2f}".format(**res.summary()) + f" (seeds {common})"), flush=True)
    out = ablation_rows(results)
    write_table(out, Path(args.out) / "recipe_ablation_emodb_paper",
                caption="The tuned recipe without each of its components, EmoDB [paper]",
                notes=[f"Regenerate: `python -m scripts.recipe_ablation` (after `amsnet pretrain --studies recipe_ablation "
                       "--no-loso`; `--models`, `--seeds` and `--variants` train a part of it).",
                       f"WA, UA: mean over the 5 folds and the seeds of the row (of the study's {', '.join(map(str, seeds))}: "
                       "those whose every fold is finished); std over folds and seeds. Δ = variant − all components on the "
                       "same seeds, percentage points, same folds; its 95 % interval and two-sided p from the paired "
                       "bootstrap over the test utterances (10,000 resamples within each fold and seed, "
                       "`significance.significance_table`): the trained models held fixed, so the seeds' spread is not in it.",
                       "URLM keeps its paper training in the tuned recipe (no URLM component to remove); AMSNet's variants "
                       "change its FRLM (and, for label smoothing, its head) only."])
    print(f"wrote {Path(args.out) / 'recipe_ablation_emodb_paper'}.md")
    fig = figure(out, Path(args.figures) / "recipe_ablation_emodb_paper.png")
    if fig:
        print(f"wrote {fig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
