#!/usr/bin/env python
"""How much the fusion head's seed decides: heads retrained over the same pre-trained branches.

    python -m scripts.diagnostics.head_seeds                          # AMSNet and concatenation, corpus and speaker standardisation
    python -m scripts.diagnostics.head_seeds --seeds 0 1 2 --models amsnet --normalisations corpus

AMSNet and concatenation differ only in their head (eq 12's weighted sum vs concatenation), and a
head trains in seconds over frozen branches. For each `[paper]` fold this script loads the seed-0
branches of the run store (FRLM and URLM weights, `model.pt`: kept locally, not committed), then
trains the head again with each seed of ``--seeds``: the head's initial weights and batch order
change, nothing else (the fold, its validation split and the branches stay those of seed 0).
Head seed 0 is the run store's own head: the script checks that it reproduces the stored test
WA/UA exactly, which shows the rest is the same computation.

Writes ``results/tables/head_seeds.csv`` (one row per experiment, fold and head seed; appended
fold by fold, so an interrupted run resumes) and ``head_seeds.md`` (mean over the folds per head
seed, and the spread over seeds); REPORT.md shows the Markdown under "Diagnostics beyond the paper".
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.atomic import atomic_write_text, locked
from amsnet_lib.data.corpora import load_corpus
from amsnet_lib.data.features import extract_features
from amsnet_lib.studies import experiment
from amsnet_lib.data.splits import fold_data
from amsnet_lib.train.training import frozen_fusion_model, fusion_embeddings, train_fusion_head, evaluate_split, make_folds
from amsnet_lib.train.runstore import RunStore, fusion_dirs

BRANCH_SEED = 0
KEYS = ["model", "normalisation", "fold", "head_seed"]


def paper_folds(data_dir, threads: int):
    """EmoDB's features and ``[paper]`` folds as the engine makes them, torch set as for the engine's
    CPU trainings (threads, deterministic algorithms). Shared with ``scripts/diagnostics/test_selection.py``."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    base = experiment("emodb", "amsnet", "paper", "full")
    feats = extract_features(load_corpus("emodb", data_dir, download=False), base.features, progress=False)
    return feats, make_folds(feats.table, "paper", n_folds=base.n_folds, split_seed=base.split_seed)


def add_common_args(ap: argparse.ArgumentParser, name: str) -> None:
    """The options every head-retraining script takes: data, run store, threads, output stem."""
    ap.add_argument("--data-dir", default=None, help="EmoDB root (default: $AMSNET_EMODB_DIR or ./data/emodb)")
    ap.add_argument("--run-dir", default=None, help="run store holding the branches' weights (default: $AMSNET_RUN_DIR or ./runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "results" / "tables" / name), help="output stem (.csv and .md)")


def finished_rows(out: Path, keys: list[str]) -> tuple[list[dict], set[tuple]]:
    """The rows ``out``.csv holds from an earlier (maybe interrupted) run, and their ``keys`` as strings."""
    done = pd.read_csv(out.with_suffix(".csv")) if out.with_suffix(".csv").is_file() else pd.DataFrame(columns=keys)
    return done.to_dict("records"), {tuple(r) for r in done[keys].astype(str).itertuples(index=False)}


def collect(todo: list, one, rows: list[dict], out: Path, keys: list[str]) -> list:
    """``one(item)`` for each item of ``todo`` (a row, or None when the branches' weights are
    missing); each row is merged into ``out``.csv at once (under a lock, replacing a row of the same
    ``keys``: several processes may fill one table) and ``rows`` becomes the table, so an
    interrupted run resumes. Returns the items that were skipped."""
    from tqdm.auto import tqdm

    skipped, csv = [], out.with_suffix(".csv")
    for item in tqdm(todo, desc="trainings", unit="fold"):
        row = one(item)
        if row is None:
            skipped.append(item)
            continue
        with locked(csv):
            table = finished_rows(out, keys)[0]
            mine = tuple(str(row[k]) for k in keys)
            table = [r for r in table if tuple(str(r[k]) for k in keys) != mine] + [row]
            atomic_write_text(csv, pd.DataFrame(table).to_csv(index=False))
        rows[:] = table
    return skipped


def write_markdown(rows: list[dict], out: Path, markdown, title: str) -> int:
    """``out``.md from the rows (or a "Not run" page under ``title``), printed too; the exit status."""
    text = markdown(pd.DataFrame(rows)) if rows else f"{title}\n\nNot run: no branch weights found.\n"
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)
    return 0


def retrain_head(exp, feats, fold, head_seed: int, store: RunStore, cached: dict) -> dict | None:
    """Test metrics of ``exp``'s head trained with ``head_seed`` over the seed-0 branches of ``fold``;
    None when the store lacks the branches' weights. ``cached`` keeps the fold's embeddings."""
    import torch

    n_classes, cpu = len(feats.classes), torch.device("cpu")
    d, branch_dirs = fusion_dirs(exp, len(feats), BRANCH_SEED, fold.name, store)
    if not all((branch_dirs[b] / "model.pt").is_file() for b in ("frlm", "urlm")):
        return None
    # the engine's own stage 2 (training._run_fusion), with the head's seed in place of the run's
    model = frozen_fusion_model(exp, n_classes, branch_dirs, store, cpu, head_seed)
    key = (exp.normalisation, fold.name)
    if key not in cached:  # the branches and the fold's data do not depend on the head's seed
        fd = fold_data(feats, fold, exp.branch_train.val_fraction, BRANCH_SEED, cpu, exp.normalisation)
        with torch.no_grad():
            cached.clear()
            cached[key] = (fd, fusion_embeddings(model, fd))
    fd, emb = cached[key]
    res = train_fusion_head(model, emb, exp, n_classes, head_seed)
    ev = evaluate_split(model, fd.test, n_classes)
    stored = json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").is_file() else None
    return {"wa": round(100 * ev["wa"], 4), "ua": round(100 * ev["ua"], 4), "best_epoch": res.best_epoch,
            "stored_wa": round(100 * stored["wa"], 4) if stored else None,
            "stored_ua": round(100 * stored["ua"], 4) if stored else None}


def markdown(df: pd.DataFrame) -> str:
    lines = ["# Fusion heads retrained with other seeds over the same branches (EmoDB, [paper] folds)", "",
             "Written by `scripts/diagnostics/head_seeds.py` (see its docstring): each fold's seed-0 FRLM and URLM, frozen as in the "
             "paper's stage 2; only the head's initial weights and batch order change with the seed. Test WA/UA (%), "
             "mean over the 5 folds per head seed; then the mean, standard deviation and range of those 5-fold means "
             "over the seeds. Head seed 0 is the run store's head.", ""]
    full = df.groupby(["model", "normalisation", "head_seed"]).filter(lambda g: len(g) == 5)
    if full.empty:
        return "\n".join(lines + ["Not run: no experiment has all 5 folds yet.", ""])
    per_seed = full.groupby(["model", "normalisation", "head_seed"], sort=False)[["wa", "ua"]].mean().reset_index()
    lines += ["| model | standardisation | head seeds | WA mean (%) | WA std over seeds | WA range | UA mean (%) | UA std over seeds | UA range |",
              "|---|---|---|---|---|---|---|---|---|"]
    for (model, norm), g in per_seed.groupby(["model", "normalisation"], sort=False):
        lines.append(f"| {model} | {norm} | {len(g)} | {g['wa'].mean():.2f} | {g['wa'].std(ddof=0):.2f} | "
                     f"{g['wa'].min():.2f}-{g['wa'].max():.2f} | {g['ua'].mean():.2f} | {g['ua'].std(ddof=0):.2f} | "
                     f"{g['ua'].min():.2f}-{g['ua'].max():.2f} |")
    zero = df[(df["head_seed"] == BRANCH_SEED) & df["stored_wa"].notna()]
    if len(zero):
        same = bool(((zero["wa"] - zero["stored_wa"]).abs() < 1e-6).all() and ((zero["ua"] - zero["stored_ua"]).abs() < 1e-6).all())
        lines += ["", f"Head seed 0 against the run store's heads ({len(zero)} folds): "
                  + ("identical test WA and UA on every fold." if same else "NOT identical: see head_seeds.csv.")]
    lines += ["", "Per head seed (mean over the 5 folds):", "",
              "| model | standardisation | head seed | WA (%) | UA (%) |", "|---|---|---|---|---|"]
    for r in per_seed.itertuples():
        lines.append(f"| {r.model} | {r.normalisation} | {r.head_seed} | {r.wa:.2f} | {r.ua:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="head seeds (0: the run store's)")
    ap.add_argument("--models", nargs="+", default=["amsnet", "concat"], choices=["amsnet", "concat"])
    ap.add_argument("--normalisations", nargs="+", default=["corpus", "speaker"], choices=["corpus", "speaker"])
    add_common_args(ap, "head_seeds")
    a = ap.parse_args(argv)

    out = Path(a.out)
    feats, folds = paper_folds(a.data_dir, a.threads)
    store = RunStore(a.run_dir)
    rows, have = finished_rows(out, KEYS)
    todo = [(m, n, f, s) for n in a.normalisations for f in folds for m in a.models for s in a.seeds
            if (m, n, f.name, str(s)) not in have]
    cached = {}

    def one(item):
        model, norm, fold, seed = item
        exp = experiment("emodb", model, "paper", "full", normalisation=norm, features=feats.config)
        r = retrain_head(exp, feats, fold, seed, store, cached)
        return None if r is None else {"model": model, "normalisation": norm, "fold": fold.name, "head_seed": seed, **r}

    missing = {(m, n, f.name) for m, n, f, _ in collect(todo, one, rows, out, KEYS)}
    for m in sorted(missing):
        print(f"skipped {m}: the branches' weights are not in {store.root} (train them: amsnet train --model {m[0]} "
              f"--normalisation {m[1]})", file=sys.stderr)
    return write_markdown(rows, out, markdown, "# Fusion head seeds")


if __name__ == "__main__":
    sys.exit(main())
