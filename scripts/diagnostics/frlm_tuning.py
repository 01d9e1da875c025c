#!/usr/bin/env python
"""FRLM regularisation, chosen on validation: train variants on some folds, tabulate their validation curves.

    python -m scripts.diagnostics.frlm_tuning                                     # train what is missing, then tabulate
    python -m scripts.diagnostics.frlm_tuning --no-train                          # tabulate what the run store holds
    python -m scripts.diagnostics.frlm_tuning --variants 0.3,0 0.5,0 --folds fold0 fold1
    python -m scripts.diagnostics.frlm_tuning --no-train --variants 0.3,0 0.3,0,256   # a hidden size of Fig. 7's study

The paper gives neither FRLM's dropout rate nor any weight decay, and FRLM overfits EmoDB's ~385
training utterances of a fold (training accuracy -> 99 %, validation loss rising after ~100
epochs). Each variant is a ``dropout,weight_decay`` pair applied to the paper configuration
(``studies.experiment("emodb", "frlm", "paper", "full")``, whose FRLM settings were chosen with this
script; weight decay is L2 in RMSprop, on FRLM only), trained
by the one engine into the run store (resumable, finished folds skipped). The table compares the
variants where the choice must be made, on each fold's validation split (10 % of the training
part): the lowest validation loss, and the validation UA and training accuracy at that epoch. The
test folds are scored by the engine as always, but this script does not show them: a choice
made on them would leak the test set into the configuration.

Writes ``results/tables/frlm_tuning.csv`` and ``.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.atomic import atomic_write_text
from amsnet_lib.config import ExperimentConfig
from amsnet_lib.data.corpora import load_corpus
from amsnet_lib.data.features import extract_features
from amsnet_lib.studies import experiment
from amsnet_lib.train.training import run_experiment
from amsnet_lib.train.runstore import RunStore, branch_key, fusion_dirs

DEFAULT_VARIANTS = ("0.3,0", "0.5,0", "0.5,0.001")


def variant(base: ExperimentConfig, spec: str) -> ExperimentConfig:
    """``DROPOUT,WD[,HIDDEN]``: the paper configuration with FRLM's dropout, weight decay and
    (optionally) BLSTM units per direction replaced. ``0.3,0,256`` is the run the Fig. 7 study
    trains for hidden 256 (same run key), so that study's runs can be judged here on validation."""
    parts = spec.split(",")
    if len(parts) not in (2, 3):
        raise SystemExit(f"variant {spec!r}: expected DROPOUT,WD or DROPOUT,WD,HIDDEN")
    dropout, weight_decay = float(parts[0]), float(parts[1])
    hidden = int(parts[2]) if len(parts) == 3 else base.frlm.hidden_size
    label = f"dropout={dropout:g},weight_decay={weight_decay:g}" + (f",hidden={hidden}" if len(parts) == 3 else "")
    return dataclasses.replace(
        base,
        frlm=dataclasses.replace(base.frlm, dropout=dropout, hidden_size=hidden),
        frlm_train=dataclasses.replace(base.stage_train("frlm"), weight_decay=weight_decay),
        variant=label,
    )


def validation_row(fold_dir: Path) -> dict | None:
    curves, metrics = fold_dir / "curves.csv", fold_dir / "metrics.json"
    if not (curves.is_file() and metrics.is_file()):
        return None
    c = pd.read_csv(curves)
    best = c.loc[c["val_loss"].idxmin()]
    return {"best_epoch": int(best["epoch"]), "epochs_run": int(c["epoch"].max()),
            "val_loss": round(float(best["val_loss"]), 3), "val_ua": round(100 * float(best["val_ua"]), 2),
            "val_wa": round(100 * float(best["val_wa"]), 2), "train_acc": round(100 * float(best["train_acc"]), 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), metavar="DROPOUT,WD[,HIDDEN]")
    ap.add_argument("--folds", nargs="+", default=["fold0", "fold1", "fold2", "fold3", "fold4"],
                    help="folds of the paper protocol (default: all five)")
    ap.add_argument("--data-dir", default=None, help="EmoDB root (default: $AMSNET_EMODB_DIR or ../shared/data/emodb)")
    ap.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    ap.add_argument("--no-train", action="store_true", help="only tabulate the folds the run store holds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "results" / "tables" / "frlm_tuning"))
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    table = load_corpus("emodb", a.data_dir, download=False)
    base = experiment("emodb", "frlm", "paper", "full")
    feats = extract_features(table, base.features, progress=False)
    store = RunStore(a.run_dir)
    rows = []
    for spec in a.variants:
        exp = variant(base, spec)
        if not a.no_train:
            run_experiment(exp, feats, store=store, only_folds=a.folds)
        key = branch_key("frlm", exp, len(feats))
        for fold in a.folds:
            d = store.fold_dir("frlm", key, exp.seeds[0], fold)
            r = validation_row(d)
            rows.append({"variant": exp.variant, "run": f"frlm-{key}", "fold": fold,
                         **(r or {"best_epoch": "not run"})})
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    out = Path(a.out)
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False))
    lines = ["# FRLM regularisation on validation (EmoDB, [paper] folds, seed 0)", "",
             "Written by `scripts/diagnostics/frlm_tuning.py`: the paper configuration of FRLM with the dropout after attention "
             "pooling and RMSprop's weight decay varied (the paper gives neither). Metrics of each fold's validation "
             "split (10 % of its training part) at the epoch of lowest validation loss (the epoch early stopping "
             "keeps); the test folds are not shown, so that the choice cannot be made on them.", "",
             "| variant | fold | best epoch / run | val loss | val UA (%) | val WA (%) | train acc (%) | run |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["best_epoch"] == "not run":
            lines.append(f"| {r['variant']} | {r['fold']} | not run | | | | | {r['run']} |")
        else:
            lines.append(f"| {r['variant']} | {r['fold']} | {r['best_epoch']} / {r['epochs_run']} | {r['val_loss']:.3f} | "
                         f"{r['val_ua']:.2f} | {r['val_wa']:.2f} | {r['train_acc']:.2f} | {r['run']} |")
    ran = df[df["best_epoch"] != "not run"]
    if len(ran):
        lines += ["", "Mean over the folds run:", "", "| variant | folds | val loss | val UA (%) | train acc (%) |", "|---|---|---|---|---|"]
        for name, g in ran.groupby("variant", sort=False):
            lines.append(f"| {name} | {len(g)} | {g['val_loss'].astype(float).mean():.3f} | "
                         f"{g['val_ua'].astype(float).mean():.2f} | {g['train_acc'].astype(float).mean():.2f} |")
    # FRLM is chosen for the fusion it feeds: the fusion heads' own validation over each FRLM
    # variant, where the run store holds them (`amsnet train --model amsnet --hidden-size 256`, ...)
    fusion_rows = []
    for model in ("amsnet", "concat"):
        for spec in a.variants:
            exp = variant(dataclasses.replace(base, model=model), spec)
            found = [r for r in (validation_row(fusion_dirs(exp, len(feats), exp.seeds[0], f, store)[0]) for f in a.folds) if r]
            if found:
                fusion_rows.append({"model": model, "frlm": exp.variant, "folds": len(found),
                                    "val_loss": sum(r["val_loss"] for r in found) / len(found),
                                    "val_ua": sum(r["val_ua"] for r in found) / len(found)})
    if fusion_rows:
        lines += ["", "The fusion heads over each FRLM (their own validation split, lowest validation loss; mean over "
                  "the folds run; FRLM variants without fusion runs are left out):", "",
                  "| model | FRLM | folds | val loss | val UA (%) |", "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['frlm']} | {r['folds']} | {r['val_loss']:.3f} | {r['val_ua']:.2f} |" for r in fusion_rows]
        print(pd.DataFrame(fusion_rows).round(3).to_string(index=False))
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
