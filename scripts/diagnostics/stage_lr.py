#!/usr/bin/env python
"""A learning rate per stage, each chosen on validation (beyond the paper), and what the branches add to each other.

    python -m scripts.diagnostics.stage_lr                 # selects, trains what is missing, writes the table
    python -m scripts.diagnostics.stage_lr --no-train      # the table from what the run store holds

The paper trains every stage with one learning rate (5e-5 to 1e-4). Its learning-rate study
(§4.5; ours: notebook 04, `results/tables/learning_rate_emodb_paper.md`) pre-trains FRLM and URLM
with 1e-5 ... 1e-3 on the `[paper]` folds, and the two branches do not agree on the best: FRLM's
validation loss keeps falling up to 1e-3, URLM's is lowest at 1e-4. This script chooses:

1. each branch's learning rate: the lowest mean validation loss, at the epoch each fold selected,
   over the learning-rate study's branch trainings of that branch (their run-store entries;
   :meth:`amsnet_lib.train.training.ExperimentResult.validation`);
2. each fusion head's learning rate (AMSNet, concatenation): the same criterion, over heads trained
   with each of the study's learning rates on the branches chosen in 1.
   (:func:`amsnet_lib.studies.with_stage_learning_rates`; the heads train in seconds each).

Then, for the paper's branches and the chosen ones, under ``[paper]`` and leave-one-speaker-out
where the run store holds them: how often each branch is right where the other is wrong, and the
two branches' class probabilities averaged (a late fusion with nothing trained) beside the learned
AMSNet and concatenation heads (:func:`complementarity`) and the engine's late fusion, its weight
chosen on validation (``model="late"``; it trains nothing but needs the branches' weights).

Nothing is chosen on a test fold; the test WA/UA of every candidate is printed beside its
validation figures so that a reader sees what the choice cost or gained. The chosen AMSNet and
concatenation go into ``results/tables/summary.csv`` (variant ``lr frlm=...,urlm=...,fusion=...``).
Writes ``results/tables/stage_lr.csv`` and ``.md`` (REPORT.md, "Diagnostics beyond the paper").

Trainings land in the run store like any other (a branch whose weights are not kept locally, as the
committed store's, is trained again with the same seed on this machine). ``[paper]`` protocol, seed 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from amsnet_lib.atomic import atomic_write_text
from amsnet_lib.errors import AmsnetError
from amsnet_lib.report import significance
from amsnet_lib.studies import LEARNING_RATES, experiment, with_learning_rate, with_stage_learning_rates
from amsnet_lib.train.engine import EngineConfig, pretrain
from amsnet_lib.train.training import run_experiment
from amsnet_lib.report.summary import update_summary
from amsnet_lib.train.runstore import RunStore
from scripts.diagnostics.head_seeds import paper_folds

BRANCH_STAGES = ("frlm", "urlm")
FUSIONS = ("amsnet", "concat")


def candidate_row(stage: str, lr: float, exp, feats, store: RunStore) -> tuple[dict, object]:
    """One candidate: its validation figures and test WA/UA from the run store (``None`` result if not finished)."""
    row = {"stage": stage, "lr": lr}
    try:
        res = run_experiment(exp, feats, store=store, device="cpu", finished_only=True, progress=False)
    except AmsnetError:
        res = None
    if res is None or res.missing:
        return {**row, "trained_on": "not run"}, None
    s = res.summary()
    return {**row, **res.validation(), "wa": s["wa"], "ua": s["ua"], "wa_std": s["wa_std"], "ua_std": s["ua_std"],
            "folds": s["n_folds"], "trained_on": s["trained_on"]}, res


def choose(rows: list[dict]) -> float | None:
    """The learning rate of the lowest mean validation loss among finished candidates (ties: the first)."""
    done = [r for r in rows if "val_loss" in r]
    return min(done, key=lambda r: r["val_loss"])["lr"] if done else None


def complementarity(frlm, urlm) -> dict:
    """How two branch results' test predictions relate, utterance by utterance (same folds and seeds).

    Shares (percent of test utterances) both branches classify correctly, only FRLM, only URLM,
    neither; and a fusion with nothing trained: the two branches' class probabilities averaged
    (late fusion), WA/UA as the tables give them (mean over folds and seeds). Nothing here is
    chosen; it says how much the branches could add to each other.
    """
    f, u = significance.aligned_predictions({"FRLM": frlm, "URLM": urlm}).values()
    f_ok, u_ok = (f["pred"] == f["true"]).to_numpy(), (u["pred"] == u["true"]).to_numpy()
    share = (lambda m: round(100 * float(np.mean(m)), 2))
    average = significance.late_fusion_sweep(frlm, urlm, weights=(0.5,)).iloc[0]
    return {"both": share(f_ok & u_ok), "only_frlm": share(f_ok & ~u_ok), "only_urlm": share(~f_ok & u_ok),
            "neither": share(~f_ok & ~u_ok), "average_wa": float(average["WA (%)"]), "average_ua": float(average["UA (%)"])}


def markdown(df: pd.DataFrame, chosen: dict, pairs: list[dict] | None = None) -> str:
    """The page: what was chosen, the chosen fusions' test figures, every candidate's row."""
    lines = ["# A learning rate per stage, chosen on validation (beyond the paper)", "",
             "`scripts/diagnostics/stage_lr.py`, EmoDB, `[paper]` protocol (stratified random 5-fold, speaker-dependent), seed 0. "
             "Each stage's learning rate is the one with the lowest mean validation loss at the selected epochs "
             "(`val loss`); branches first, over the learning-rate study's trainings, then each fusion head over the "
             "chosen branches. Test WA/UA are shown for every candidate, never used to choose. The heads' validation "
             "split is the one their branches were early-stopped on, so head validation figures are optimistic, alike "
             "for every head. 'trained on': rows from GPU sessions used float16-rounded features.", ""]
    picks = ", ".join(f"{k} {v:g}" if v is not None else f"{k} not chosen (no finished candidate)" for k, v in chosen.items())
    lines += [f"Chosen: {picks}.", ""]
    for model in FUSIONS:
        r = df[(df["stage"] == model) & (df["chosen"])]
        if len(r):
            r = r.iloc[0]
            lines.append(f"- **{model}** with the chosen learning rates: WA {r.wa:.2f} ± {r.wa_std:.2f}, "
                         f"UA {r.ua:.2f} ± {r.ua_std:.2f} `[paper]` (mean ± std over {int(r.folds)} folds).")
    lines += ["", "| stage | lr | val loss | val WA (%) | val UA (%) | WA [paper] (%) | UA [paper] (%) | chosen | trained on |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        cell = {k: "" if pd.isna(r.get(k)) else f"{r[k]:.4f}" if k == "val_loss" else f"{r[k]:.2f}"
                for k in ("val_loss", "val_wa", "val_ua", "wa", "ua")}
        lines.append(f"| {r['stage']} | {r['lr']:g} | {cell['val_loss']} | {cell['val_wa']} | {cell['val_ua']} | {cell['wa']} | "
                     f"{cell['ua']} | {'yes' if r['chosen'] else ''} | {r['trained_on']} |")
    lines += ["", "Branch rows are the learning-rate study's FRLM and URLM (each trained with one learning rate); fusion "
              "rows train only the head, over the chosen branches (`lr frlm=...,urlm=...,fusion=<lr>`)."]
    if pairs:
        lines += ["", "**What the branches could add to each other.**", "",
                  "Each branch's test WA, the test utterances (percent, all folds) the pair classifies correctly: both, "
                  "only one, neither; and the two branches' class probabilities averaged, a late fusion with nothing "
                  "trained (WA / UA, mean over folds). A fusion that took one branch's answer per utterance could at "
                  "best reach the share at least one branch gets right (100 minus 'neither'). The learned heads over the "
                  "same branches beside them (the paper's heads; over the chosen branches, the heads' chosen rates), and "
                  "the engine's late fusion (`--model late`): the same average with FRLM's weight w chosen per fold on "
                  "the validation split (lowest cross-entropy among 0, 0.05, ..., 1; 'late w': its mean over the folds). "
                  "`[loso]` = leave one speaker out (10 folds), with the learning rates chosen under `[paper]`.", "",
                  "| protocol | FRLM lr | URLM lr | FRLM WA (%) | URLM WA (%) | both right | only FRLM | only URLM | neither | "
                  "averaged WA (%) | averaged UA (%) | AMSNet WA (%) | concat WA (%) | late WA (%) | late UA (%) | late w |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        wa = (lambda v: "not run" if v is None or pd.isna(v) else f"{v:.2f}")
        for p in pairs:
            lines.append(f"| [{p['protocol']}] | {p['frlm_lr']:g} | {p['urlm_lr']:g} | {p['frlm_wa']:.2f} | {p['urlm_wa']:.2f} | "
                         f"{p['both']:.2f} | {p['only_frlm']:.2f} | {p['only_urlm']:.2f} | {p['neither']:.2f} | "
                         f"{p['average_wa']:.2f} | {p['average_ua']:.2f} | {wa(p.get('amsnet_wa'))} | {wa(p.get('concat_wa'))} | "
                         f"{wa(p.get('late_wa'))} | {wa(p.get('late_ua'))} | {wa(p.get('late_w'))} |")
    return "\n".join(lines) + "\n"


def pair_experiment(model: str, protocol: str, frlm_lr: float, urlm_lr: float, fusion_lr: float | None = None):
    """A fusion ``model`` over the branches trained with ``frlm_lr`` / ``urlm_lr`` under ``protocol``: the
    paper's configuration when both are its rate, else with a learning rate per stage."""
    exp = experiment("emodb", model, protocol, "full")
    if (frlm_lr, urlm_lr) != (exp.branch_train.lr,) * 2:
        exp = with_stage_learning_rates(exp, frlm=frlm_lr, urlm=urlm_lr, fusion=fusion_lr)
    return exp


def rate_pairs(chosen: dict) -> list[tuple[str, float, float]]:
    """``(protocol, FRLM lr, URLM lr)`` of every branch pair compared: the paper's rate for both and
    the chosen rates, each under ``[paper]`` and leave-one-speaker-out."""
    paper_lr = experiment("emodb", "amsnet", "paper", "full").branch_train.lr
    return [(protocol, f, u) for protocol in ("paper", "loso")
            for f, u in dict.fromkeys([(paper_lr, paper_lr), (chosen["frlm"], chosen["urlm"])])]


def branch_pairs(feats, store: RunStore, chosen: dict, found: dict) -> list[dict]:
    """:func:`complementarity` of the paper's branches (one learning rate) and of the chosen ones, under
    ``[paper]`` and, where the run store holds them, leave-one-speaker-out (the rates chosen under
    ``[paper]``: the learning-rate study is not run speaker-independently). ``found``: the
    ``[paper]`` results already read, branches by (stage, lr) and the fusion heads over the chosen
    branches by (model, head lr)."""
    out = []
    for protocol, f, u in rate_pairs(chosen):
        res = {}
        for stage, lr in (("frlm", f), ("urlm", u)):
            if protocol == "paper" and (stage, lr) in found:
                res[stage] = found[(stage, lr)]
            else:
                exp = with_learning_rate(experiment("emodb", stage, protocol, "full"), lr)
                res[stage] = candidate_row(stage, lr, exp, feats, store)[1]
        if all(r is not None for r in res.values()):
            learned = {}
            for model in (*FUSIONS, "late"):
                exp = pair_experiment(model, protocol, f, u, chosen.get(model))
                own = (model, exp.stage_train("fusion").lr) if protocol == "paper" and exp.variant else None
                r = found[own] if own in found else candidate_row(model, f, exp, feats, store)[1]
                summary = r.summary() if r is not None else {}
                learned[f"{model}_wa"] = summary.get("wa")
                if model == "late" and r is not None:
                    learned["late_ua"] = summary["ua"]
                    learned["late_w"] = round(float(r.predictions.groupby(["seed", "fold"])["alpha_frlm"].first().mean()), 2)
            out.append({"protocol": protocol, "frlm_lr": f, "urlm_lr": u, "frlm_wa": res["frlm"].summary()["wa"],
                        "urlm_wa": res["urlm"].summary()["wa"], **learned, **complementarity(res["frlm"], res["urlm"])})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="EmoDB root (default: $AMSNET_EMODB_DIR or ./data/emodb)")
    ap.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    ap.add_argument("--no-train", action="store_true", help="train nothing: report what the run store holds")
    ap.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray the trainings run on (default: all cores)")
    ap.add_argument("--ray-address", default=None, help="a Ray cluster to train on instead (docs/CLUSTER.md)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--summary", default=str(ROOT / "results" / "tables" / "summary.csv"), help="'' to skip")
    ap.add_argument("--out", default=str(ROOT / "results" / "tables" / "stage_lr"), help="output stem (.csv and .md)")
    a = ap.parse_args(argv)

    feats, _ = paper_folds(a.data_dir, 1)
    store = RunStore(a.run_dir)
    rows, chosen, branch = [], {}, {}
    for stage in BRANCH_STAGES:
        found = [candidate_row(stage, lr, with_learning_rate(experiment("emodb", stage, "paper", "full"), lr), feats, store)
                 for lr in LEARNING_RATES]
        branch.update({(stage, r["lr"]): res for r, res in found})
        chosen[stage] = choose([r for r, _ in found])
        rows += [{**r, "chosen": r["lr"] == chosen[stage]} for r, _ in found]
    if None in (chosen["frlm"], chosen["urlm"]):
        print("no finished learning-rate study branches in the run store: run notebook 04 (or ./run_all.sh) first",
              file=sys.stderr)
        return 1

    def fusion_exp(model, lr):
        return with_stage_learning_rates(experiment("emodb", model, "paper", "full"), frlm=chosen["frlm"], urlm=chosen["urlm"], fusion=lr)

    exps = [fusion_exp(m, lr) for m in FUSIONS for lr in LEARNING_RATES]
    if not a.no_train:
        pretrain(exps, feats, store=store, device=a.device, engine=EngineConfig(address=a.ray_address, num_cpus=a.cpus),
                 fusion=True)
    for model in FUSIONS:
        found = [candidate_row(model, lr, fusion_exp(model, lr), feats, store) for lr in LEARNING_RATES]
        chosen[model] = choose([r for r, _ in found])
        branch.update({(model, r["lr"]): res for r, res in found})  # read once, for branch_pairs too
        for r, res in found:
            rows.append({**r, "chosen": r["lr"] == chosen[model]})
            if a.summary and res is not None and r["lr"] == chosen[model]:
                update_summary(res, a.summary, written_by="scripts/diagnostics/stage_lr.py")
    # the engine's late fusion over each pair of branches: seconds per fold where their weights are
    # here (a branch kept without them is trained again)
    for protocol, f, u in rate_pairs(chosen) if not a.no_train else []:
        exp = pair_experiment("late", protocol, f, u)
        res = run_experiment(exp, feats, store=store, device=a.device, progress=False)
        if a.summary and exp.variant:  # the paper-rate late fusion's row is notebook 03's
            update_summary(res, a.summary, written_by="scripts/diagnostics/stage_lr.py")
    pairs = branch_pairs(feats, store, chosen, branch)
    df = pd.DataFrame(rows)
    out = Path(a.out)
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False))
    text = markdown(df, chosen, pairs)
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
