#!/usr/bin/env python
"""What choosing the epoch on the test fold would report: a diagnostic of the gap to the paper.

    python -m scripts.diagnostics.test_selection --models amsnet concat     # fusion heads: seconds each
    python -m scripts.diagnostics.test_selection --models frlm &            # branches: the engine's minutes per
    python -m scripts.diagnostics.test_selection --models urlm              #   fold, one process per model

The engine selects every model's epoch on a validation split drawn from the training part of each
fold and evaluates the test fold once, at the end. A paper that picked the epoch with the best
test accuracy (or stopped training there) reports more than its model achieves on unseen data. This
script measures how much more, on our own models, `[paper]` folds, seed 0:

- fusion heads (AMSNet, concatenation): each fold's head is retrained over the run store's seed-0
  branches exactly as the engine does (`training._run_fusion`; branch weights `model.pt`, kept
  locally, not committed), and after every epoch evaluated on the test fold's frozen branch
  embeddings; the branches keep their validation-selected epochs;
- branches (FRLM, URLM): each fold is trained again exactly as the engine's stage 1
  (`training._run_single_stage`), the whole branch evaluated on the test fold after every epoch.

The test fold is watched through `train_model`'s ``on_epoch``, which cannot steer the training.
Per fold: the engine's result (validation-selected epoch), checked against the run store's stored
test WA/UA (identical, so the rest is the same computation); the best test WA over all epochs;
the test WA at the last epoch. The mean of the per-fold maxima is a number no honest protocol can
produce (it is chosen with the test labels), printed to size the gap, never as a result.

Writes ``results/tables/test_selection.csv`` (one row per model and fold; processes running
different models fill it together) and ``test_selection.md``; REPORT.md shows the Markdown under
"Diagnostics beyond the paper".
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.report.paper import ABLATIONS
from amsnet_lib.studies import experiment
from amsnet_lib.data.splits import fold_data
from amsnet_lib.train.training import branch_model, branch_embeddings
from amsnet_lib.train.runstore import RunStore, branch_key
from amsnet_lib.train.training import frozen_fusion_model, fusion_embeddings, train_fusion_head
from amsnet_lib.train.runstore import fusion_dirs
from amsnet_lib.train.training import evaluate_split, seed_everything, train_model
from scripts.diagnostics.head_seeds import add_common_args, collect, finished_rows, paper_folds, write_markdown

SEED = 0


def head_on_test(exp, feats, fold, store: RunStore) -> dict | None:
    """One fold: the engine's head training with the test fold watched; None without branch weights."""
    import torch

    n_classes, cpu = len(feats.classes), torch.device("cpu")
    d, branch_dirs = fusion_dirs(exp, len(feats), SEED, fold.name, store)
    if not all((branch_dirs[b] / "model.pt").is_file() for b in ("frlm", "urlm")):
        return None
    model = frozen_fusion_model(exp, n_classes, branch_dirs, store, cpu, SEED)
    fd = fold_data(feats, fold, exp.branch_train.val_fraction, SEED, cpu, exp.normalisation)
    with torch.no_grad():
        emb = fusion_embeddings(model, fd)
        test_emb = branch_embeddings({"frlm": model.frlm, "urlm": model.urlm}, fd.test)
    watched = []

    def look(epoch: int) -> None:
        with torch.no_grad():
            ev = evaluate_split(model.head, test_emb, n_classes)
        watched.append((epoch, ev["wa"], ev["ua"]))

    res = train_fusion_head(model, emb, exp, n_classes, SEED, on_epoch=look)
    return _summary(res, evaluate_split(model, fd.test, n_classes), watched, d)  # end to end, as the engine reports it


def branch_on_test(exp, feats, fold, store: RunStore) -> dict:
    """One fold of a branch (FRLM or URLM), trained as the engine's stage 1 (``_run_single_stage``)
    with the test fold watched after every epoch (the whole branch on the test utterances)."""
    import torch

    name, n_classes, cpu = exp.model, len(feats.classes), torch.device("cpu")
    fd = fold_data(feats, fold, exp.branch_train.val_fraction, SEED, cpu, exp.normalisation)
    seed_everything(SEED)
    model = branch_model(name, exp, n_classes)
    watched = []

    def look(epoch: int) -> None:
        ev = evaluate_split(model, fd.test, n_classes)
        watched.append((epoch, ev["wa"], ev["ua"]))

    res = train_model(model, fd.fit, fd.val, exp.stage_train(name), n_classes, seed=SEED, progress=False, on_epoch=look)
    d = store.fold_dir(name, branch_key(name, exp, len(feats)), SEED, fold.name)
    return _summary(res, evaluate_split(model, fd.test, n_classes), watched, d)


def _summary(res, ev: dict, watched: list, d) -> dict:
    """A fold's row: the engine's (validation-selected) test WA/UA, the stored one, and the watched curve's best."""
    curve = pd.DataFrame(watched, columns=["epoch", "wa", "ua"])
    best = curve.loc[curve["wa"].idxmax()]
    stored = json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").is_file() else None
    return {"selected_epoch": res.best_epoch, "wa": round(100 * ev["wa"], 4), "ua": round(100 * ev["ua"], 4),
            "stored_wa": round(100 * stored["wa"], 4) if stored else None,
            "stored_ua": round(100 * stored["ua"], 4) if stored else None,
            "epochs": len(curve), "test_best_epoch": int(best["epoch"]),
            "test_best_wa": round(100 * best["wa"], 4), "test_best_ua": round(100 * best["ua"], 4),
            "last_wa": round(100 * curve["wa"].iloc[-1], 4)}


def markdown(df: pd.DataFrame) -> str:
    lines = ["# Selecting the epoch on the test fold (EmoDB, [paper] folds, seed 0)", "",
             "Written by `scripts/diagnostics/test_selection.py` (see its docstring). The engine selects on a validation split "
             "from the training part; here the same models are trained again, identically, while the test fold is "
             "watched after every epoch (never used by the training; a fusion head's branches keep their own "
             "validation-selected epochs). 'selected on test' takes each fold's best "
             "test WA over the epochs: chosen with the test labels, so not a result; it sizes how much such a "
             "choice inflates a reported figure. WA/UA in %, mean over the 5 folds.", "",
             "| model | folds | ours: selected on validation, WA / UA | selected on test, WA / UA | gain (WA) | "
             "last epoch, WA | paper's Table 5 WA |", "|---|---|---|---|---|---|---|"]
    for model, g in df.groupby("model"):
        lines.append(f"| {model} | {len(g)} | {g['wa'].mean():.2f} / {g['ua'].mean():.2f} | "
                     f"{g['test_best_wa'].mean():.2f} / {g['test_best_ua'].mean():.2f} | "
                     f"{g['test_best_wa'].mean() - g['wa'].mean():+.2f} | {g['last_wa'].mean():.2f} | "
                     f"{ABLATIONS['emodb'][model][0]:.2f} (reported) |")
    known = df[df["stored_wa"].notna()]
    if len(known):
        same = bool(((known["wa"] - known["stored_wa"]).abs() < 1e-6).all() and ((known["ua"] - known["stored_ua"]).abs() < 1e-6).all())
        lines += ["", f"Validation-selected models against the run store's ({len(known)} folds): "
                  + ("identical test WA and UA on every fold." if same else "NOT identical: see test_selection.csv.")]
    lines += ["", "Per fold:", "", "| model | fold | selected epoch | WA | best test epoch | best test WA | epochs |",
              "|---|---|---|---|---|---|---|"]
    for r in df.sort_values(["model", "fold"]).itertuples():
        lines.append(f"| {r.model} | {r.fold} | {r.selected_epoch} | {r.wa:.2f} | {r.test_best_epoch} | "
                     f"{r.test_best_wa:.2f} | {r.epochs} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["amsnet", "concat", "frlm", "urlm"],
                    choices=["amsnet", "concat", "frlm", "urlm"],
                    help="fusion heads (seconds each) and branches (the engine's minutes per fold; several "
                         "processes, one per model, may fill the same table)")
    add_common_args(ap, "test_selection")
    a = ap.parse_args(argv)

    out = Path(a.out)
    feats, folds = paper_folds(a.data_dir, a.threads)
    store = RunStore(a.run_dir)
    rows, have = finished_rows(out, ["model", "fold"])

    def one(item):
        model, fold = item
        exp = experiment("emodb", model, "paper", "full", features=feats.config)
        r = (branch_on_test if model in ("frlm", "urlm") else head_on_test)(exp, feats, fold, store)
        return None if r is None else {"model": model, "fold": fold.name, **r}

    todo = [(m, f) for m in a.models for f in folds if (m, f.name) not in have]
    for model, fold in collect(todo, one, rows, out, ["model", "fold"]):
        print(f"skipped {(model, fold.name)}: the branches' weights are not in {store.root} (train them: amsnet train "
              f"--model {model})", file=sys.stderr)
    return write_markdown(rows, out, markdown, "# Selecting the epoch on the test fold")


if __name__ == "__main__":
    sys.exit(main())
