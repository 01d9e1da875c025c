#!/usr/bin/env python
"""Train the two-corpus model: the network chosen for corpora it never heard, fitted on all of EmoDB and RAVDESS.

    python -m scripts.train_two_corpus_model               # choose, fit, export to ONNX, write the card
    python -m scripts.train_two_corpus_model --card-only   # rewrite the card and the checkpoint's meta

Beyond the paper (issue #38 item 5). Each step reads measured files; nothing is typed in:

1. **The choice, leaving one corpus out.** With two corpora, leaving one out is training on the other. The
   cross-corpus table (``results/tables/cross_corpus.csv``, ``python -m scripts.cross_corpus --networks``)
   holds each candidate network trained on all of one corpus and scored on the other, over the six classes
   the two share, with each adaptation. The candidate with the best mean UA over the two directions, each
   candidate at its own best adaptation (which the card then recommends), is chosen; ties go to the
   earlier, simpler candidate. The held-out corpus is this choice's validation data: the model fitted
   afterwards sees both corpora, and no figure of it is a test of the choice.
2. **The fit.** The chosen network's tuned recipe on every utterance of both corpora: classes the union,
   epochs drawn with each corpus-and-class cell alike (``balance=corpus_class``), whole speakers held out
   to select the epoch. This is the configuration of ``amsnet train --corpus emodb+ravdess --protocol
   corpus_folds --model M --recipe tuned --balance corpus_class``, whose folds (each corpus on its own
   speaker-independent folds, the other corpus always in training) are the card's per-corpus figures.
3. **Replace or not.** The EmoDB-only shipped model's configuration (AMSNet, tuned recipe) gives way only
   if the chosen one beats it on the unseen corpus of each direction (same table, classes and adaptation).
   Either way the model ships as ``amsnet_lib/pretrained/emodb+ravdess.pt`` (``--checkpoint
   emodb+ravdess``); the card and the table say which is the default and why.

Writes ``amsnet_lib/pretrained/emodb+ravdess.{pt,onnx}``, ``MODEL_CARD_emodb+ravdess.md`` beside them and
``results/tables/two_corpus_model_choice.{csv,md}``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
from pathlib import Path

import pandas as pd

from amsnet_lib.serve.predict import SHIPPED_MODELS
from scripts.cross_corpus import NETWORKS, UNHEARD
from scripts.train_shipped_model import NOT_MEASURED, _acc_text, _git_commit, _wrap, read_accuracy

ROOT = Path(__file__).resolve().parents[1]
CORPORA = "emodb+ravdess"
OUT = SHIPPED_MODELS[CORPORA]
TABLES = ROOT / "results" / "tables"
#: The candidates, simplest first (ties go to the earlier): the cross-corpus table's networks.
CANDIDATES = {**NETWORKS, **{key: label for key, (label, *_) in UNHEARD.items()}}
#: The configuration of the EmoDB-only shipped model, which the chosen one must beat to replace it.
SHIPPED_KEY = "amsnet"
DIRECTIONS = (("emodb", "ravdess"), ("ravdess", "emodb"))


def _ua(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def leave_one_corpus_out(cross: pd.DataFrame, classes: str = "shared") -> pd.DataFrame:
    """Each candidate's UA on the corpus it did not hear, per direction, at the adaptation whose mean is best.

    Args:
        cross: ``results/tables/cross_corpus.csv`` (columns model, train, test, classes, adapt, UA (%)).
        classes: the class set scored (``shared``: the six both corpora have; ``four``).

    Returns:
        One row per candidate with both directions measured, in :data:`CANDIDATES` order: key, model,
        adapt, ``UA emodb → ravdess``, ``UA ravdess → emodb``, ``mean UA``.
    """
    rows = []
    for key, label in CANDIDATES.items():
        mine = cross[(cross["model"] == label) & (cross["classes"] == classes)]
        best = None
        for adapt, part in mine.groupby("adapt", sort=False):
            ua = {(r["train"], r["test"]): _ua(r["UA (%)"]) for _, r in part.iterrows()}
            values = [ua.get(d, math.nan) for d in DIRECTIONS]
            if any(math.isnan(v) for v in values):
                continue
            mean = sum(values) / len(values)
            if best is None or mean > best["mean UA"]:
                best = {"key": key, "model": label, "adapt": adapt,
                        **{f"UA {a} → {b}": v for (a, b), v in zip(DIRECTIONS, values)}, "mean UA": mean}
        if best is not None:
            rows.append(best)
    return pd.DataFrame(rows)


def choose(loco: pd.DataFrame) -> str:
    """The key of the best mean UA (the first of equals: the simpler candidate)."""
    if loco.empty:
        raise SystemExit("no candidate network has both directions in the cross-corpus table: run "
                         "`python -m scripts.cross_corpus --networks` first")
    return str(loco.loc[loco["mean UA"].idxmax(), "key"])


def replaces_shipped(cross: pd.DataFrame, chosen: str, adapt: str, classes: str = "shared") -> dict:
    """Whether ``chosen`` beats the EmoDB-only shipped model's configuration on the unseen corpus of each
    direction, at ``adapt`` over ``classes``: ``{"replaces": bool, "why": str, "directions": [...]}``."""
    if chosen == SHIPPED_KEY:
        return {"replaces": False, "directions": [],
                "why": "the chosen configuration is the shipped model's own: leaving one corpus out cannot tell them apart"}
    directions = []
    for a, b in DIRECTIONS:
        ua = {}
        for key in (chosen, SHIPPED_KEY):
            hit = cross[(cross["model"] == CANDIDATES[key]) & (cross["classes"] == classes) & (cross["adapt"] == adapt)
                        & (cross["train"] == a) & (cross["test"] == b)]
            ua[key] = _ua(hit["UA (%)"].iloc[0]) if len(hit) else math.nan
        directions.append({"train": a, "test": b, "chosen": ua[chosen], "shipped": ua[SHIPPED_KEY]})
    better = [d["chosen"] > d["shipped"] for d in directions]
    worse = [f"{d['train']} → {d['test']} ({d['chosen']:.2f} against {d['shipped']:.2f})"
             for d, b in zip(directions, better) if not b]
    why = ("better on the unseen corpus of each direction" if all(better) else
           "not better on the unseen corpus of every direction: " + "; ".join(worse))
    return {"replaces": all(better), "why": why, "directions": directions}


def joint_experiment(key: str, profile: str, features=None):
    """The chosen candidate's configuration on both corpora, as ``amsnet train --corpus emodb+ravdess
    --protocol corpus_folds --model M --recipe tuned --balance corpus_class`` builds it."""
    from amsnet_lib import studies

    if key not in NETWORKS:
        raise SystemExit(f"{CANDIDATES[key]!r} was chosen, and its configuration on two corpora is not defined here "
                         "(an option chosen on EmoDB's validation speakers, scripts/unseen_speaker_options.py): "
                         "add it to joint_experiment, then train its corpus_folds run for the card's figures")
    exp = studies.experiment(CORPORA, key, "corpus_folds", profile, recipe="tuned", features=features)
    return studies.with_balance(exp, "corpus_class")


def per_corpus(key: str, tables: Path) -> pd.DataFrame | None:
    """The corpus_folds run against each corpus alone (``scripts.joint_vs_alone``), when written."""
    path = tables / f"joint_{CORPORA}_{key}_tuned_balance-corpus_class.csv"
    return pd.read_csv(path) if path.is_file() else None


def choice_notes(loco: pd.DataFrame, chosen: str, decision: dict) -> list[str]:
    label = CANDIDATES[chosen]
    notes = [
        "Leave one corpus out: each network trained on all of one corpus and scored on the other, over the six "
        "classes both have (results/tables/cross_corpus.csv); per network, the adaptation whose mean UA over the "
        "two directions is best. This is validation for the two-corpus model, which sees both corpora.",
        f"Chosen: {label}, --adapt {loco.set_index('key').loc[chosen, 'adapt']} (the best mean UA; ties: the simpler).",
        f"The EmoDB-only shipped model's configuration ({CANDIDATES[SHIPPED_KEY]}) stays the default: {decision['why']}."
        if not decision["replaces"] else
        f"It replaces the EmoDB-only shipped model's configuration ({CANDIDATES[SHIPPED_KEY]}) as the default: "
        f"{decision['why']}.",
    ]
    return notes


def render_card(meta: dict, name: str = OUT.name) -> str:
    """MODEL_CARD_emodb+ravdess.md from the checkpoint's meta."""
    loco = pd.DataFrame(meta.get("choice", []))
    chosen, decision = meta.get("chosen", "?"), meta.get("replaces_shipped", {})
    label, adapt = CANDIDATES.get(chosen, chosen), meta.get("recommended_adapt", "speaker")
    joint = pd.DataFrame(meta.get("per_corpus") or [])
    lines = []
    for _, r in joint.iterrows():
        lines.append(f"- **{r['corpus']}** ({r['folds']} folds): WA {float(r['WA trained on both (%)']):.2f} %, UA "
                     f"{float(r['UA trained on both (%)']):.2f} %; the same network trained on {r['corpus']} alone, same "
                     f"folds: WA {float(r['WA alone (%)']):.2f} %, UA {float(r['UA alone (%)']):.2f} % (p = "
                     f"{float(r['p (UA, bootstrap)']):.2f}, paired bootstrap of UA)")
    per_corpus_text = "\n".join(lines) if lines else f"- {NOT_MEASURED}: train the corpus_folds run, then `python -m scripts.joint_vs_alone`"
    loco_lines = "\n".join(
        f"| {r['model']} | {r['adapt']} | {r['UA emodb → ravdess']:.2f} | {r['UA ravdess → emodb']:.2f} | {r['mean UA']:.2f} |"
        for _, r in loco.iterrows())
    shipped = meta.get("shipped_loso_accuracy", NOT_MEASURED)
    on_ravdess = [d["shipped"] for d in decision.get("directions", []) if (d["train"], d["test"]) == DIRECTIONS[0]]
    shipped_on_ravdess = f"UA {on_ravdess[0]:.2f} %" if on_ravdess and not math.isnan(on_ravdess[0]) else NOT_MEASURED
    quick = (" **This is a smoke-test model (quick profile or a subset): its predictions mean nothing.**"
             if meta.get("profile") != "full" or meta.get("n_utterances") != meta.get("corpus_utterances") else "")
    default = ("It is the default model." if decision.get("replaces") else
               "It is **not** the default: `amsnet predict` uses the EmoDB-only AMSNet unless given `--checkpoint emodb+ravdess`.")
    classes = ", ".join(meta.get("classes", []))
    return f"""# Model card: {label} trained on EmoDB and RAVDESS (`{name}`)

Trained {meta.get('date', '?')} with amsnet {meta.get('amsnet_version', '?')}{', commit ' + meta['git_commit'][:10] if meta.get('git_commit') else ''}; profile `{meta.get('profile', '?')}`.{quick}

Written by `scripts/train_two_corpus_model.py` (beyond the paper); every figure comes from `results/tables/`.
{default} Use it with `amsnet predict --checkpoint emodb+ravdess --adapt {adapt} FILES` (or
`ams.Recognizer("emodb+ravdess")`).

## Model
- **Network**: {label} (docs/RECIPE.md), chosen among the networks below by leaving one corpus out.
- **Configuration**: `{meta.get('configuration', '?')}`, stored in full inside the checkpoint.
- **Output**: one of {len(meta.get('classes', []))} classes, the union of the two corpora's: {classes}.
- **Input**: any WAV/FLAC, brought to 16 kHz mono; a file is scored whole (3-s windows, pooled), as for the
  EmoDB model.

## Training data
- {meta.get('data', '?')}. EmoDB: acted German, 10 speakers; RAVDESS: acted North-American English, 24 actors,
  two fixed sentences. Each training epoch draws every corpus-and-class cell alike (`balance=corpus_class`); the
  epoch is chosen on whole speakers held out of the training data. The checkpoint records a digest of every
  training file, so `amsnet evaluate` leaves them out of a test.

## How it was chosen (validation, not a test)
Each candidate trained on all of one corpus and scored on the other (the six classes both have), at the
adaptation with its best mean (`results/tables/two_corpus_model_choice.md`):

| network | adapt | UA EmoDB → RAVDESS | UA RAVDESS → EmoDB | mean UA |
|---|---|---|---|---|
{loco_lines}

Default or not: {decision.get('why', '?')}.

## Accuracy on speakers it never heard
The model saw every utterance of both corpora, so it has no test part. The figures below are the same
configuration's speaker-independent cross-validation with the other corpus always in training
(`amsnet train --corpus emodb+ravdess --protocol corpus_folds`; EmoDB leave one speaker out, RAVDESS EmoBox's
six folds), scored over the classes of the corpus tested:

{per_corpus_text}

For comparison, the EmoDB-only shipped AMSNet on new EmoDB speakers (leave one speaker out): {_acc_text(shipped)}; on
RAVDESS, which it never heard: {shipped_on_ravdess} (the six classes both corpora have, `--adapt {adapt}`,
results/tables/cross_corpus.md). On a corpus neither model heard, nothing is measured here: the only two
corpora at hand are both in training.

## Where not to use it
{chr(10).join(_wrap(x) for x in LIMITS)}
"""


#: The card's limits, also carried in the ONNX file's metadata.
LIMITS = [
    "Acted speech only, of 34 speakers reading fixed sentences in studios, in German and in English. Expect it "
    "to be weaker on spontaneous speech, on other languages, on children and on telephone or noisy channels.",
    "Boredom exists only in EmoDB (German) and calm and surprise only in RAVDESS (English): the model may tie "
    "those classes to the language or the recording rather than to the emotion. Restrict the scored classes "
    "(`--classes`) to those your audio can have.",
    "The choice among networks rests on two corpora; with no third corpus here, its advantage on a corpus "
    "neither model heard is not measured.",
    "Emotion recognition from voice is uncertain and culture-dependent: do not use its output for decisions "
    "about people.",
]


def _subset(table, limit: int):
    """A subset of about ``limit`` utterances, at least 2 per corpus and class (smoke runs only)."""
    per_cell = max(2, limit // max(1, table.groupby(["corpus", "label"]).ngroups))
    sub = table.groupby(["corpus", "label"], sort=False, group_keys=False).head(per_cell).reset_index(drop=True)
    sub.attrs = dict(table.attrs)
    return sub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT), help="checkpoint to write (default: the shipped emodb+ravdess model)")
    ap.add_argument("--cross-corpus", default=str(TABLES / "cross_corpus.csv"), help="the leave-one-corpus-out table")
    ap.add_argument("--tables", default=str(TABLES), help="where the choice table is written and the joint table read")
    ap.add_argument("--summary", default=str(TABLES / "summary.csv"), help="the EmoDB-only model's figures")
    ap.add_argument("--run-dir", default=None, help="run store (default: $AMSNET_RUN_DIR or ./runs)")
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: $AMSNET_CACHE_DIR or ./.cache/features)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="quick profile (tiny networks, one epoch): a smoke test")
    ap.add_argument("--limit", type=int, default=None, help="train on about N utterances (smoke tests only)")
    ap.add_argument("--card-only", action="store_true", help="do not train: refresh the meta and rewrite the card")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training")
    args = ap.parse_args(argv)

    import amsnet_lib as ams
    from amsnet_lib.report.tables import write_table
    from amsnet_lib.serve.checkpoint import config_to_dict, describe_training_data, load_checkpoint, save_checkpoint

    cross = pd.read_csv(args.cross_corpus)
    loco = leave_one_corpus_out(cross)
    chosen = choose(loco)
    adapt = str(loco.set_index("key").loc[chosen, "adapt"])
    decision = replaces_shipped(cross, chosen, adapt)
    tables = Path(args.tables)
    write_table(loco.drop(columns="key").round(2), tables / "two_corpus_model_choice",
                caption="The two-corpus model's network, chosen by leaving one corpus out (UA %, six shared classes)",
                notes=choice_notes(loco, chosen, decision))
    print(f"chosen: {CANDIDATES[chosen]} (--adapt {adapt}); default: "
          f"{'this model' if decision['replaces'] else 'the EmoDB-only model'} ({decision['why']})")
    joint = per_corpus(chosen, tables)
    figures = {"choice": loco.to_dict("records"), "chosen": chosen, "recommended_adapt": adapt,
               "replaces_shipped": decision, "per_corpus": None if joint is None else joint.to_dict("records"),
               "shipped_loso_accuracy": read_accuracy(Path(args.summary), "loso", recipe="tuned") or NOT_MEASURED}
    out = Path(args.out)
    card = out.parent / f"MODEL_CARD_{out.stem}.md"

    if args.card_only:
        model, info = load_checkpoint(out)
        meta = {**info.meta, **figures}
        save_checkpoint(out, model, info.experiment, info.classes, info.normaliser, meta)
    else:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        profile = "quick" if args.quick else "full"
        table = ams.load_corpus(CORPORA)
        n_corpus = len(table)
        if args.limit:
            table = _subset(table, args.limit)
        exp = joint_experiment(chosen, profile)
        feats = ams.extract_features(table, exp.features, cache_dir=args.cache_dir)
        exp = joint_experiment(chosen, profile, feats.config)
        model, normaliser = ams.fit_final(exp, feats, store=args.run_dir, device=args.device)
        meta = {
            "data": f"{CORPORA}: {len(feats)} utterances of {len(feats.classes)} classes",
            "corpus": CORPORA, "profile": profile, "recipe": "tuned", "seed": exp.seeds[0],
            "configuration": f'studies.with_balance(studies.experiment("{CORPORA}", "{exp.model}", "corpus_folds", '
                             f'"{profile}", recipe="tuned"), "corpus_class")',
            "protocol": "trained on all given utterances (training.fit_final); whole training speakers held out "
                        "select the epoch",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "amsnet_version": ams.__version__, "git_commit": _git_commit(),
            "features": config_to_dict(exp.features), "corpus_utterances": n_corpus, **figures,
        }
        meta.update(describe_training_data(feats.table, feats.classes))
        save_checkpoint(out, model, exp, feats.classes, normaliser, meta)
    model, info = load_checkpoint(out)
    from amsnet_lib.serve.export import card_facts, export_onnx

    facts = {"name": f"{CANDIDATES[chosen]} trained on EmoDB and RAVDESS", **card_facts(info), "limits": LIMITS,
             "model_card": f"{card.name} beside the file (amsnet_lib/pretrained/)"}
    onnx_path = export_onnx((model, info), out.with_suffix(".onnx"), card=facts)
    from amsnet_lib.atomic import atomic_write_text

    atomic_write_text(card, render_card({**info.meta, "classes": list(info.classes)}, out.name))
    print(f"wrote {out}, {onnx_path} and {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
